//! The `[ws]` section: the WebSocket adapter's limits and its Origin rule.
use serde::Deserialize;

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
}
