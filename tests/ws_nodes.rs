//! Two `winzo serve` processes sharing Postgres and Redis: a price moved on one reaches a
//! WebSocket client of the other through the Redis bridge.
mod common;
mod stream_support;

use std::time::Duration;

use common::engine::{free_port, spawn_engine, wait_ready, Engine};
use redis::AsyncCommands;
use serde_json::json;
use stream_support::*;

/// Starts a `winzo serve` node on the database and waits until it is ready.
async fn start_node(db_url: &str) -> (Engine, u16) {
    let port = free_port();
    let node = spawn_engine(db_url, port, &[]);
    wait_ready(&reqwest::Client::new(), &format!("http://127.0.0.1:{port}")).await;
    (node, port)
}

/// Topic messages the node at `base` sent to (`"out"`) or relayed from (`"in"`) other
/// nodes through Redis (`winzo_bridge_messages_total{direction}`).
async fn bridged(http: &reqwest::Client, base: &str, direction: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("winzo_bridge_messages_total{{direction=\"{direction}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_price_moved_on_one_node_reaches_a_websocket_client_of_the_other() {
    // The in-process app only prepares the database (sport) and helpers; the two nodes
    // are real processes.
    let app = common::spawn_app().await;
    let sport = sport(&app).await;
    let (a, a_port) = start_node(&app.db.url).await;
    let on_a = format!("http://127.0.0.1:{a_port}");
    let sent_before = bridged(&app.http, &on_a, "out").await;
    push_at(&app.http, &on_a, fixture(1, "nodes-1", &sport)).await;
    let id = event_id(&app, "nodes-1").await;
    // Node B starts once A has sent the fixture's messages to Redis: relayed by a running
    // B, they could reach B's client after its snapshot, ahead of the odds.
    common::wait_until(
        "node A to send the fixture to Redis",
        Duration::from_secs(10),
        || async { bridged(&app.http, &on_a, "out").await > sent_before },
    )
    .await;
    let (b, b_port) = start_node(&app.db.url).await;

    let client_b = format!("ws://127.0.0.1:{b_port}/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(client_b).await.unwrap();
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "topics": [format!("event:{id}")]}),
    )
    .await;
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    // Node B's Redis subscription starts in the background: wait until B relays a probe
    // published on a topic nobody subscribes to (its relayed-message count moves).
    let on_b = format!("http://127.0.0.1:{b_port}");
    let redis = redis::Client::open(app.settings.redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let channel = format!("{}probe:ws_nodes", app.settings.bridge.channel_prefix);
    let probe = "probe-node\n{\"type\": \"odds\", \"topic\": \"probe:ws_nodes\", \"data\": {}}";
    let before = bridged(&app.http, &on_b, "in").await;
    common::wait_until(
        "node B to relay messages from Redis",
        Duration::from_secs(10),
        || {
            let (redis, channel) = (redis.clone(), channel.clone());
            let (http, on_b) = (&app.http, &on_b);
            async move {
                let mut redis = redis;
                let _: i64 = redis.publish(channel, probe).await.unwrap();
                bridged(http, on_b, "in").await > before
            }
        },
    )
    .await;
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

/// The in-process node's bridge: (`winzo_bridge_sending`, `winzo_bridge_peers`).
async fn bridge_state(app: &common::TestApp) -> (u64, u64) {
    (
        common::metric(app, "winzo_bridge_sending ").await,
        common::metric(app, "winzo_bridge_peers ").await,
    )
}

#[tokio::test]
async fn a_node_alone_sends_nothing_to_redis_until_another_node_says_hello() {
    let app = common::spawn_app().await;
    let sport = sport(&app).await;
    let prefix = app.settings.bridge.channel_prefix.clone();
    let redis_client = redis::Client::open(app.settings.redis.url.as_str()).unwrap();
    // What reaches Redis on the topics' channels (a plain listener: not a node).
    let mut watcher = redis_client.get_async_pubsub().await.unwrap();
    watcher.psubscribe(format!("{prefix}*")).await.unwrap();
    let mut seen = watcher.into_on_message();
    common::wait_until(
        "the node to find itself alone",
        Duration::from_secs(10),
        || async { bridge_state(&app).await == (0, 0) },
    )
    .await;
    // Alone: a fixture is published to the node's own hub only.
    push(&app, fixture(1, "alone-1", &sport)).await;
    let id = event_id(&app, "alone-1").await;

    // Another node joins the presence channel and says hello.
    let presence = winzo::bridge::presence_channel(&prefix);
    let mut other = redis_client.get_async_pubsub().await.unwrap();
    other.subscribe(&presence).await.unwrap();
    let mut conn = redis_client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = conn.publish(&presence, "other-node").await.unwrap();
    common::wait_until(
        "the node to send for the other",
        Duration::from_secs(10),
        || async { bridge_state(&app).await == (1, 1) },
    )
    .await;
    let answer = push(
        &app,
        json!({"seq": 2, "event_ref": "alone-1", "type": "odds", "market": {"type": "moneyline"},
               "prices": [{"name": "home", "odds": "2.05"}]}),
    )
    .await;
    assert_eq!(answer["applied"], 1, "{answer}");
    // The first message on Redis is the price move: the fixture's messages, published
    // while the node was alone, never went out.
    use futures::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(10), seen.next())
        .await
        .expect("a message on Redis")
        .expect("the subscription is open");
    let payload = first.get_payload_bytes();
    let body = &payload[payload.iter().position(|b| *b == b'\n').unwrap() + 1..];
    let envelope: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(envelope["type"], "odds", "{envelope}");
    let topic = envelope["topic"].as_str().unwrap_or_default().to_string();
    assert!(
        [format!("event:{id}"), format!("sport:{sport}")].contains(&topic),
        "{envelope}"
    );
    // The other node leaves: the node counts itself alone again.
    drop(other);
    common::wait_until(
        "the node to stop sending",
        Duration::from_secs(10),
        || async { bridge_state(&app).await == (0, 0) },
    )
    .await;
}
