//! A TCP relay a test puts between one engine and Postgres, and cuts: a network partition
//! at the TCP level, for a test process without a firewall (no iptables here, and a network
//! namespace cannot reach the shared Postgres on the host's loopback).
//!
//! Before the cut it relays bytes both ways. [`NetCut::cut`] stops every byte, both ways,
//! on every connection, as a link that drops packets would: the connections stay open, the
//! engine's queries hang until its own timeouts give up, and a new connection is accepted
//! but reaches nothing. [`NetCut::heal`] lets the bytes flow again, as TCP would after a
//! partition shorter than its timeouts: what was written meanwhile arrives late (Postgres
//! may have ended a session in between, as it would across a real partition).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct NetCut {
    /// `host:port` the engine connects to instead of Postgres.
    pub addr: String,
    cut: watch::Sender<bool>,
    /// Connections that met a cut.
    stalled: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

impl NetCut {
    /// Relays `127.0.0.1:<free port>` to `target` (`host:port`).
    pub async fn start(target: &str) -> NetCut {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (cut, cut_rx) = watch::channel(false);
        let stalled = Arc::new(AtomicUsize::new(0));
        let target = target.to_string();
        let counted = stalled.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (target, rx, counted) = (target.clone(), cut_rx.clone(), counted.clone());
                tokio::spawn(relay(inbound, target, rx, counted));
            }
        });
        NetCut {
            addr,
            cut,
            stalled,
            accept,
        }
    }

    /// `url` (a `postgres://user@host:port/db` URL) with its host and port replaced by the
    /// relay's.
    pub fn url_through(&self, url: &str) -> String {
        let (scheme_user, rest) = url.split_once('@').expect("a URL with user@host");
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        format!("{scheme_user}@{}{path}", self.addr)
    }

    /// The partition starts: nothing crosses any more, either way.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    /// The partition ends: bytes flow again on every connection.
    pub fn heal(&self) {
        let _ = self.cut.send(false);
    }

    /// Connections that met the cut so far.
    pub fn stalled(&self) -> usize {
        self.stalled.load(Ordering::Relaxed)
    }
}

impl Drop for NetCut {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Waits while the link is cut (false: the relay is gone).
async fn wait_open(cut: &mut watch::Receiver<bool>) -> bool {
    cut.wait_for(|c| !*c).await.is_ok()
}

/// Copies both ways until either side closes; while the link is cut, reads nothing and
/// writes nothing (the bytes wait in the sockets' buffers, as in a retransmitting peer's).
async fn relay(
    inbound: TcpStream,
    target: String,
    mut cut: watch::Receiver<bool>,
    stalled: Arc<AtomicUsize>,
) {
    if *cut.borrow() {
        stalled.fetch_add(1, Ordering::Relaxed);
    }
    if !wait_open(&mut cut).await {
        return;
    }
    let Ok(outbound) = TcpStream::connect(&target).await else {
        return;
    };
    let (mut a, mut b) = (inbound, outbound);
    let (mut ar, mut aw) = a.split();
    let (mut br, mut bw) = b.split();
    let mut buf_a = vec![0u8; 16 * 1024];
    let mut buf_b = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            changed = cut.changed() => {
                if changed.is_err() {
                    return;
                }
                if *cut.borrow() {
                    stalled.fetch_add(1, Ordering::Relaxed);
                    if !wait_open(&mut cut).await {
                        return;
                    }
                }
            }
            n = ar.read(&mut buf_a) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    // A read that raced the cut is held until the link is back.
                    if !wait_open(&mut cut).await || bw.write_all(&buf_a[..n]).await.is_err() {
                        return;
                    }
                }
            },
            n = br.read(&mut buf_b) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if !wait_open(&mut cut).await || aw.write_all(&buf_b[..n]).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}
