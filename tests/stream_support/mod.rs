//! Helpers shared by the feed and WebSocket tests: signed pushes, a sport, a WS client.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::common::TestApp;

pub const PROVIDER: &str = "demo";
pub const SECRET: &str = "dev-only-demo-feed-secret";

/// A new sport with a unique slug; returns the slug.
pub async fn sport(app: &TestApp) -> String {
    let slug = format!("s{}", &Uuid::new_v4().simple().to_string()[..10]);
    app.db
        .client
        .execute(
            "INSERT INTO sports (name, display_name, slug) VALUES ($1, $1, $1)",
            &[&slug],
        )
        .await
        .unwrap();
    slug
}

/// Pushes a body signed with `secret` at `ts`.
pub async fn push_raw(
    app: &TestApp,
    provider: &str,
    secret: &str,
    ts: i64,
    body: &str,
) -> reqwest::Response {
    push_raw_at(&app.http, &app.address, provider, secret, ts, body).await
}

/// Pushes a signed body to the engine at `address` (`http://127.0.0.1:port`).
pub async fn push_raw_at(
    http: &reqwest::Client,
    address: &str,
    provider: &str,
    secret: &str,
    ts: i64,
    body: &str,
) -> reqwest::Response {
    let sig = winzo::feed::auth::sign(secret, ts, body.as_bytes());
    http.post(format!("{address}/api/v1/feed/{provider}/messages"))
        .header("X-Feed-Timestamp", ts.to_string())
        .header("X-Feed-Signature", sig)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Pushes correctly signed messages; returns the JSON answer (asserting 200).
pub async fn push(app: &TestApp, body: Value) -> Value {
    push_at(&app.http, &app.address, body).await
}

pub async fn push_at(http: &reqwest::Client, address: &str, body: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let res = push_raw_at(http, address, PROVIDER, SECRET, now, &body.to_string()).await;
    let status = res.status();
    let answer: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "push answered {answer}");
    answer
}

/// A fixture message for `event_ref` in `sport` with a moneyline and a total market.
pub fn fixture(seq: i64, event_ref: &str, sport: &str) -> Value {
    json!({"seq": seq, "event_ref": event_ref, "type": "fixture", "sport": sport,
    "home": format!("Home {event_ref}"), "away": format!("Away {event_ref}"),
    "start_time": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
    "markets": [
      {"type": "moneyline", "title": "Match winner",
       "selections": [{"name": "home", "odds": "2.10"}, {"name": "away", "odds": "1.80"}]},
      {"type": "total_points", "line": "2.5",
       "selections": [{"name": "over", "odds": "1.90"}, {"name": "under", "odds": "1.90"}]}
    ]})
}

pub async fn event_id(app: &TestApp, event_ref: &str) -> Uuid {
    app.db
        .client
        .query_one(
            "SELECT id FROM events WHERE provider = $1 AND provider_event_ref = $2",
            &[&PROVIDER, &event_ref],
        )
        .await
        .unwrap()
        .get(0)
}

/// `(type, status, feed_suspended)` of every market of an event, by type.
pub async fn markets(app: &TestApp, event_id: Uuid) -> Vec<(String, String, bool)> {
    app.db
        .client
        .query(
            "SELECT type::text, status::text, feed_suspended FROM markets WHERE event_id = $1 ORDER BY type",
            &[&event_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(app: &TestApp, query: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{}/ws{query}", app.port);
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connects");
    ws
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string())).await.unwrap();
}

/// The next text message as JSON (skipping pings), within 5 s.
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("stream open")
            .expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next message of type `kind`, skipping others (each within `next_json`'s 5 s).
pub async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let m = next_json(ws).await;
        if m["type"] == kind {
            return m;
        }
    }
}

/// Waits for the close frame and returns its code.
pub async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("closed within 10 s");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("error before close: {e}"),
        }
    }
}
