//! WebSocket streaming (`GET /ws`), the HTTP adapter's other door: the only module that
//! uses `actix-web-actors`, so a later move to `actix-ws` stays local. [`upgrade`] is the
//! route, [`session`] the per-connection actor, [`protocol`] the frames clients and the
//! server exchange, [`snapshot`] the state sent on subscribe. Its settings are
//! `config::ws`, its node-wide connection counts `state::ws_slots`. The protocol, its close
//! codes and error codes are documented in `docs/websocket.md`.
pub mod protocol;
pub mod session;
pub mod snapshot;
pub mod upgrade;

pub use crate::broadcast::{user_topic, TRADING_TOPIC};
pub use upgrade::{configure, WsDoc};

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
