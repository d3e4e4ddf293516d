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

/// Sets `TCP_NODELAY` (when `nodelay`) and `TCP_USER_TIMEOUT` (when `timeout_ms` is not 0)
/// on an accepted connection (`HttpServer::on_connect`). Without `TCP_NODELAY`, a session's
/// frame written while its previous one is unacknowledged waits for the client's delayed ACK.
/// A client that stopped reading stalls its session actor (actix drives it from the socket
/// writer), and only the kernel can then end the connection.
pub fn on_connect(
    nodelay: bool,
    timeout_ms: u64,
) -> impl Fn(&dyn std::any::Any, &mut actix_web::dev::Extensions) + Send + Sync + 'static {
    move |conn, _ext| {
        let Some(stream) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        if nodelay {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "setting TCP_NODELAY");
            }
        }
        if timeout_ms == 0 {
            return;
        }
        let sock = socket2::SockRef::from(stream);
        if let Err(e) =
            sock.set_tcp_user_timeout(Some(std::time::Duration::from_millis(timeout_ms)))
        {
            tracing::debug!(error = %e, "setting TCP_USER_TIMEOUT");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An accepted connection of a real listener gets both options (and neither when
    /// configured off).
    #[tokio::test]
    async fn accepted_connections_get_nodelay_and_the_user_timeout() {
        for (nodelay, timeout_ms) in [(true, 1500), (false, 0)] {
            let listener = actix_web::rt::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let _client = actix_web::rt::net::TcpStream::connect(addr).await.unwrap();
            let (accepted, _) = listener.accept().await.unwrap();
            accepted.set_nodelay(false).unwrap();
            on_connect(nodelay, timeout_ms)(&accepted, &mut actix_web::dev::Extensions::new());
            assert_eq!(accepted.nodelay().unwrap(), nodelay);
            let timeout = socket2::SockRef::from(&accepted)
                .tcp_user_timeout()
                .unwrap();
            assert_eq!(
                timeout,
                (timeout_ms > 0).then(|| std::time::Duration::from_millis(timeout_ms))
            );
        }
    }
}
