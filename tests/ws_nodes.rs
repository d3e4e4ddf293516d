//! Two `winzo serve` processes sharing Postgres and Redis: a price moved on one reaches a
//! WebSocket client of the other through the Redis bridge.
mod common;
mod stream_support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use stream_support::*;

struct Node {
    child: Child,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_node(db_url: &str) -> Node {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_winzo"))
        .arg("serve")
        .env("WINZO_ENV", "test")
        .env("DATABASE_URL", db_url)
        .env("WINZO__SERVER__PORT", port.to_string())
        .env("WINZO__DATABASE__MIGRATE_ON_START", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("winzo binary starts");
    let node = Node { child, port };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if r.status().is_success() {
                return node;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node on port {port} did not become ready");
}

#[tokio::test]
async fn a_price_moved_on_one_node_reaches_a_websocket_client_of_the_other() {
    // The in-process app only prepares the database (sport) and helpers; the two nodes
    // are real processes.
    let app = common::spawn_app().await;
    let sport = sport(&app).await;
    let a = start_node(&app.db.url).await;
    let b = start_node(&app.db.url).await;
    let on_a = format!("http://127.0.0.1:{}", a.port);
    push_at(&app.http, &on_a, fixture(1, "nodes-1", &sport)).await;
    let id = event_id(&app, "nodes-1").await;

    let client_b = format!("ws://127.0.0.1:{}/ws", b.port);
    let (mut ws, _) = tokio_tungstenite::connect_async(client_b).await.unwrap();
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "topics": [format!("event:{id}")]}),
    )
    .await;
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    // Give node B's Redis subscription a moment after start (it is up before readiness in
    // practice; this only avoids a race in the test).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = push_at(
        &app.http,
        &on_a,
        json!({"seq": 2, "event_ref": "nodes-1", "type": "odds", "market": {"type": "moneyline"},
                       "prices": [{"name": "home", "odds": "2.05"}]}),
    )
    .await;
    assert_eq!(answer["applied"], 1, "{answer}");
    let m = next_json(&mut ws).await;
    assert_eq!(m["type"], "odds");
    assert_eq!(m["data"]["selections"][0]["odds"], "2.0500");
    assert_eq!(
        m["seq"].as_u64(),
        Some(snap["seq"].as_u64().unwrap() + 1),
        "node B's own contiguous seq"
    );
    drop(a);
    drop(b);
}
