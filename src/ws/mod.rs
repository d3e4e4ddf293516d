//! WebSocket streaming (`GET /ws`): the only module that uses `actix-web-actors`, so a later
//! move to `actix-ws` stays local. [`session`] is the per-connection actor, [`protocol`]
//! the frames clients and the server exchange, [`snapshot`] the state sent on subscribe.
//! The protocol, its close codes and error codes are documented in `docs/websocket.md`.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Deserialize;

pub mod protocol;
pub mod session;
pub mod snapshot;

/// The `[ws]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct WsSettings {
    /// Open sessions per node; the next upgrade is answered 503 `busy`.
    pub connections_max: usize,
    pub subscriptions_per_connection_max: usize,
    /// Largest incoming frame; larger closes the session with 1009.
    pub incoming_message_bytes_max: usize,
    /// More incoming messages in one second closes the session with 4029.
    pub incoming_messages_per_second_max: u32,
    /// Messages queued for one session; full closes it with 4008 (slow consumer).
    pub session_send_queue_messages_max: usize,
    /// Server ping period.
    pub heartbeat_interval_ms: u64,
    /// Silence (no frame, no pong) after which the session is closed with 4001.
    pub heartbeat_timeout_ms: u64,
    /// Kernel `TCP_USER_TIMEOUT` of accepted connections (0 leaves the kernel default).
    pub tcp_user_timeout_ms: u64,
    /// Origins allowed to upgrade (`*` for any); requests without `Origin` are allowed.
    pub allowed_origins: Vec<String>,
}

impl WsSettings {
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(o) => self
                .allowed_origins
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(o)),
        }
    }
}

/// Sets `TCP_USER_TIMEOUT` on an accepted connection (`HttpServer::on_connect`): a client
/// that stopped reading stalls its session actor (actix drives it from the socket writer),
/// and only the kernel can then end the connection.
pub fn on_connect(
    timeout_ms: u64,
) -> impl Fn(&dyn std::any::Any, &mut actix_web::dev::Extensions) + Send + Sync + 'static {
    move |conn, _ext| {
        if timeout_ms == 0 {
            return;
        }
        if let Some(stream) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let sock = socket2::SockRef::from(stream);
            if let Err(e) =
                sock.set_tcp_user_timeout(Some(std::time::Duration::from_millis(timeout_ms)))
            {
                tracing::debug!(error = %e, "setting TCP_USER_TIMEOUT");
            }
        }
    }
}

/// Node-wide WebSocket counters shared by every session.
#[derive(Debug, Default)]
pub struct WsShared {
    connections: AtomicUsize,
}

impl WsShared {
    /// Takes a connection slot, or `None` when the node is full. The slot is given back
    /// when the guard drops (the session stopped).
    pub fn try_connect(self: &Arc<Self>, max: usize) -> Option<ConnectionSlot> {
        let mut current = self.connections.load(Ordering::Relaxed);
        loop {
            if current >= max {
                return None;
            }
            match self.connections.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(ConnectionSlot(self.clone())),
                Err(now) => current = now,
            }
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// One open session's place in the connection limit.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<WsShared>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The private topic of a user (bets and balance). Bet path and wallet publish here.
pub fn user_topic(user_id: uuid::Uuid) -> String {
    format!("user:{user_id}")
}
