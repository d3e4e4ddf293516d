//! WebSocket streaming (`GET /ws`): the only module that uses `actix-web-actors`, so a later
//! move to `actix-ws` stays local. [`session`] is the per-connection actor, [`protocol`]
//! the frames clients and the server exchange, [`snapshot`] the state sent on subscribe.
//! The protocol, its close codes and error codes are documented in `docs/websocket.md`.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::domain::ids::UserId;

use serde::Deserialize;

pub mod protocol;
pub mod session;
pub mod snapshot;

/// The `[ws]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct WsSettings {
    /// Open sessions per node; the next upgrade is answered 503 `busy`.
    pub connections_max: usize,
    /// Open sessions per client address (`auth::client`) on a node; the next is 429.
    pub connections_per_address_max: usize,
    pub subscriptions_per_connection_max: usize,
    /// Snapshots one connection may have loading at once (each is a Postgres read); more
    /// subscribe requests are answered `too_many_loads` until they finish.
    pub snapshot_loads_per_connection_max: usize,
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
    /// Is a socket from `origin` allowed? Requests without `Origin` are (non-browser
    /// clients), so are the listed origins, and so is the engine's own origin: a page it
    /// served (`GET /`, `/trading`) connecting back to the `host` it was loaded from, on
    /// whatever address and port the engine listens (a cross-site page's Origin never equals
    /// the Host it connects to).
    pub fn origin_allowed(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(o) = origin else { return true };
        let same_origin = host.is_some_and(|h| {
            !h.is_empty()
                && ["http://", "https://"].iter().any(|scheme| {
                    o.len() == scheme.len() + h.len()
                        && o[..scheme.len()].eq_ignore_ascii_case(scheme)
                        && o[scheme.len()..].eq_ignore_ascii_case(h)
                })
        });
        same_origin
            || self
                .allowed_origins
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(o))
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
    /// Open sessions per client address (entries go when they reach zero).
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused a slot.
#[derive(Debug, PartialEq, Eq)]
pub enum SlotRefused {
    /// The node holds `connections_max` sessions.
    NodeFull,
    /// This client address holds `connections_per_address_max` sessions.
    AddressFull,
}

impl WsShared {
    /// Takes a connection slot, or refuses when the node or the client's address is full.
    /// The slot is given back when the guard drops (the session stopped).
    pub fn try_connect(
        self: &Arc<Self>,
        max: usize,
        address: Option<IpAddr>,
        per_address_max: usize,
    ) -> Result<ConnectionSlot, SlotRefused> {
        let mut current = self.connections.load(Ordering::Relaxed);
        loop {
            if current >= max {
                return Err(SlotRefused::NodeFull);
            }
            match self.connections.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        let mut slot = ConnectionSlot {
            shared: self.clone(),
            address: None,
        };
        let Some(ip) = address else { return Ok(slot) };
        let mut map = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= per_address_max {
            if *n == 0 {
                map.remove(&ip);
            }
            return Err(SlotRefused::AddressFull); // `slot` drops: the node count goes back
        }
        *n += 1;
        drop(map);
        slot.address = Some(ip);
        Ok(slot)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// One open session's place in the connection limits.
#[derive(Debug)]
pub struct ConnectionSlot {
    shared: Arc<WsShared>,
    address: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.address {
            let mut map = self
                .shared
                .per_address
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

/// The staff-only topic of every placed bet (accepted or refused, with its risk): the
/// trading console's ticker. Subscribable by roles that may read trading routes.
pub const TRADING_TOPIC: &str = "trading";

/// The private topic of a user (bets and balance). Bet path and wallet publish here.
pub fn user_topic(user_id: UserId) -> String {
    format!("user:{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_own_origin_is_allowed_and_others_only_when_listed() {
        let s: WsSettings = serde_json::from_value(serde_json::json!({
            "connections_max": 1, "connections_per_address_max": 1,
            "subscriptions_per_connection_max": 1, "snapshot_loads_per_connection_max": 1,
            "incoming_message_bytes_max": 1, "incoming_messages_per_second_max": 1,
            "session_send_queue_messages_max": 1, "heartbeat_interval_ms": 1,
            "heartbeat_timeout_ms": 1, "tcp_user_timeout_ms": 0,
            "allowed_origins": ["http://listed.example"]
        }))
        .unwrap();
        let host = Some("127.0.0.1:9123");
        assert!(s.origin_allowed(Some("http://127.0.0.1:9123"), host));
        assert!(s.origin_allowed(Some("https://127.0.0.1:9123"), host));
        assert!(!s.origin_allowed(Some("http://127.0.0.1:9124"), host));
        assert!(!s.origin_allowed(Some("http://evil.example"), host));
        assert!(!s.origin_allowed(Some("http://127.0.0.1:9123"), None));
        assert!(s.origin_allowed(Some("http://listed.example"), host));
        assert!(s.origin_allowed(None, host));
    }

    #[test]
    fn a_full_address_is_refused_and_a_closed_session_frees_its_slot() {
        let shared = Arc::new(WsShared::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = shared.try_connect(10, Some(a), 2).unwrap();
        let _second = shared.try_connect(10, Some(a), 2).unwrap();
        assert_eq!(
            shared.try_connect(10, Some(a), 2).unwrap_err(),
            SlotRefused::AddressFull
        );
        assert_eq!(
            shared.connections(),
            2,
            "a refused address takes no node slot"
        );
        let _other = shared.try_connect(10, Some(b), 2).unwrap();
        drop(first);
        assert!(shared.try_connect(10, Some(a), 2).is_ok());
        assert_eq!(
            shared.try_connect(2, Some(b), 2).unwrap_err(),
            SlotRefused::NodeFull
        );
    }
}
