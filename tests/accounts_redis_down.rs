//! Redis unreachable: logins and authenticated requests are refused with 503 (fail
//! closed); nothing is let in without a checked session.
mod common;
mod support_accounts;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support_accounts::*;

/// A private redis-server on a free port, stopped by its own PID.
struct PrivateRedis {
    port: u16,
    child: Child,
}

impl PrivateRedis {
    async fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let redis = PrivateRedis { port, child };
        common::wait_until(
            "the private redis-server to accept connections",
            Duration::from_secs(10),
            || async {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await;
        redis
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn with_redis_stopped_login_and_authenticated_requests_are_503() {
    let mut redis = PrivateRedis::start().await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = spawn_with(move |s| s.redis.url = url).await;
    let (_, username) = register(&app).await;
    let token = login(&app, &username).await;
    let (s, _) = get(&app, "/api/v1/me/profile", Some(&token)).await;
    assert_eq!(s, 200);

    redis.stop();

    let (s, b) = post(
        &app,
        "/api/v1/auth/login",
        None,
        json!({"login": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 503, "{b}");
    assert_contract_error(&b, "unavailable");
    // A session verified a moment ago is served from the node's cache only while its
    // revocation subscription is up; once the node sees it drop, the token is checked in
    // Redis again and fails closed.
    common::wait_until(
        "the node to stop trusting its session cache",
        Duration::from_secs(10),
        || {
            let (app, token) = (&app, &token);
            async move { get(app, "/api/v1/me/profile", Some(token)).await.0 == 503 }
        },
    )
    .await;
    let (s, b) = get(&app, "/api/v1/me/profile", Some(&token)).await;
    assert_eq!(s, 503, "{b}");
    assert_contract_error(&b, "unavailable");
    let (s, _) = get(&app, "/api/v1/wallet", Some(&token)).await;
    assert_eq!(s, 503);
    let (s, _) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "5.00", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(s, 503);
    let (s, _) = get(&app, "/api/v1/trading/audit", Some(&token)).await;
    assert_eq!(s, 503);
    assert_eq!(count(&app, "SELECT count(*) FROM transactions").await, 0);
}
