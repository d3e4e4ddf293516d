//! A deliberately stalled WebSocket client among active ones (its own test binary, so the
//! process's memory is this test's alone): it is disconnected, the active client keeps
//! receiving every delta promptly, and memory stays bounded.
mod common;
mod stream_support;

use serde_json::json;
use stream_support::*;

async fn live_event(app: &common::TestApp, event_ref: &str) -> uuid::Uuid {
    let sport = sport(app).await;
    push(app, fixture(1, event_ref, &sport)).await;
    event_id(app, event_ref).await
}

fn odds(seq: i64, event_ref: &str, home: &str) -> serde_json::Value {
    json!({"seq": seq, "event_ref": event_ref, "type": "odds", "market": {"type": "moneyline"},
           "prices": [{"name": "home", "odds": home}]})
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn ws_connections(app: &common::TestApp) -> i64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("winzo_ws_connections "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(-1)
}

#[tokio::test]
async fn a_stalled_client_is_disconnected_while_the_others_keep_up_and_memory_stays_bounded() {
    let app = common::spawn_app_with(|s| {
        s.ws.session_send_queue_messages_max = 64;
        s.ws.tcp_user_timeout_ms = 500;
    })
    .await;
    let id = live_event(&app, "slow-1").await;
    let topic = format!("event:{id}");
    // The stalled client: a tiny receive buffer, and it never reads after subscribing.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(2048).unwrap();
    let stream = sock
        .connect(format!("127.0.0.1:{}", app.port).parse().unwrap())
        .await
        .unwrap();
    let (mut stalled, _) = tokio_tungstenite::client_async(
        format!("ws://127.0.0.1:{}/ws", app.port),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    send(
        &mut stalled,
        json!({"op": "subscribe", "id": 1, "topics": [&topic]}),
    )
    .await;
    assert_eq!(next_json(&mut stalled).await["type"], "snapshot");
    let mut active = connect(&app, "").await;
    send(
        &mut active,
        json!({"op": "subscribe", "id": 1, "topics": [&topic]}),
    )
    .await;
    let mut seq = next_json(&mut active).await["seq"].as_u64().unwrap();
    assert_eq!(ws_connections(&app).await, 2);
    let rss_before = rss_kib();

    let mut next_seq = 2;
    let mut worst = std::time::Duration::ZERO;
    for _round in 0..80 {
        let batch: Vec<_> = (0..50)
            .map(|i| {
                let price = format!("2.{:02}", (next_seq + i) % 30);
                odds(next_seq + i, "slow-1", &price)
            })
            .collect();
        next_seq += 50;
        let sent = std::time::Instant::now();
        let answer = push(&app, serde_json::Value::Array(batch)).await;
        assert_eq!(answer["applied"], 50, "{answer}");
        // The active client receives every delta, in order, promptly.
        for _ in 0..50 {
            let m = next_json(&mut active).await;
            if m["type"] == "odds" {
                assert_eq!(m["seq"].as_u64().unwrap(), seq + 1);
                seq += 1;
            } else {
                assert_eq!(m["type"], "market_status");
                seq = m["seq"].as_u64().unwrap();
            }
        }
        worst = worst.max(sent.elapsed());
        if ws_connections(&app).await == 1 {
            break;
        }
    }
    // Give the kernel's user timeout a moment if the last round filled the buffers.
    common::wait_until(
        "the stalled session to be closed",
        std::time::Duration::from_secs(10),
        || async { ws_connections(&app).await == 1 },
    )
    .await;
    assert_eq!(ws_connections(&app).await, 1, "the stalled session is gone");
    assert!(
        worst < std::time::Duration::from_secs(2),
        "active client latency stayed low: {worst:?}"
    );
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("winzo_ws_connections 1"));
}
