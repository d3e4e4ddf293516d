//! The WebSocket protocol against the real server: snapshots then contiguous deltas,
//! resubscribing, errors that keep the connection, frames that close it, the Origin check,
//! the private channel, and a stalled client among active ones.
mod bets_support;
mod common;
mod stream_support;

use futures::SinkExt;
use serde_json::json;
use stream_support::*;
use tokio_tungstenite::tungstenite::Message;

async fn live_event(app: &common::TestApp, event_ref: &str) -> uuid::Uuid {
    let sport = sport(app).await;
    push(app, fixture(1, event_ref, &sport)).await;
    event_id(app, event_ref).await
}

fn odds(seq: i64, event_ref: &str, home: &str) -> serde_json::Value {
    json!({"seq": seq, "event_ref": event_ref, "type": "odds", "market": {"type": "moneyline"},
           "prices": [{"name": "home", "odds": home}]})
}

/// The moneyline market of an event snapshot.
fn moneyline(snap: &serde_json::Value) -> serde_json::Value {
    snap["data"]["markets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == "moneyline")
        .cloned()
        .expect("a moneyline market")
}

#[tokio::test]
async fn subscribe_gets_a_snapshot_then_deltas_in_order_with_contiguous_seq() {
    let app = common::spawn_app().await;
    let id = live_event(&app, "ws-1").await;
    let mut ws = connect(&app, "").await;
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "topics": [format!("event:{id}")]}),
    )
    .await;
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["id"], 1);
    assert_eq!(snap["data"]["markets"].as_array().unwrap().len(), 2);
    assert_eq!(moneyline(&snap)["selections"][0]["odds"], "2.1000");
    assert_eq!(moneyline(&snap)["selections"][0]["american"], "+110");
    let mut seq = snap["seq"].as_u64().unwrap();
    for (i, price) in ["2.20", "2.30", "2.40"].iter().enumerate() {
        push(&app, odds(2 + i as i64, "ws-1", price)).await;
    }
    push(
        &app,
        json!({"seq": 5, "event_ref": "ws-1", "type": "score", "home": 1, "away": 0}),
    )
    .await;
    let mut kinds = Vec::new();
    for _ in 0..6 {
        let m = next_json(&mut ws).await;
        assert_eq!(m["seq"].as_u64().unwrap(), seq + 1, "contiguous seq: {m}");
        seq += 1;
        assert_eq!(m["topic"], format!("event:{id}"));
        kinds.push(m["type"].as_str().unwrap().to_string());
        if m["type"] == "odds" {
            assert!(m["data"]["selections"][0]["fractional"].is_string());
        }
    }
    // Three odds, then the goal: the score and both markets' feed suspensions (published
    // by the event actor and each market actor, so their relative order may vary).
    assert_eq!(kinds[..3], ["odds", "odds", "odds"]);
    let mut rest = kinds[3..].to_vec();
    rest.sort();
    assert_eq!(rest, ["market_status", "market_status", "score"]);

    // Resubscribing (what a client does after a gap) gives a fresh snapshot at the last seq.
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 2, "topics": [format!("event:{id}")]}),
    )
    .await;
    let again = next_json(&mut ws).await;
    assert_eq!(
        (again["type"].as_str(), again["seq"].as_u64()),
        (Some("snapshot"), Some(seq))
    );
    assert_eq!(again["data"]["home_score"], 1);
    assert_eq!(moneyline(&again)["feed_suspended"], true);
}

#[tokio::test]
async fn sport_topic_snapshot_lists_events_and_gets_their_deltas() {
    let app = common::spawn_app().await;
    let sport = sport(&app).await;
    push(&app, fixture(1, "sp-1", &sport)).await;
    let mut ws = connect(&app, "").await;
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 9, "topics": [format!("sport:{sport}")]}),
    )
    .await;
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["data"]["events"].as_array().unwrap().len(), 1);
    assert_eq!(snap["data"]["events"][0]["open_markets"], 2);
    push(
        &app,
        json!({"seq": 2, "event_ref": "sp-1", "type": "status", "status": "live"}),
    )
    .await;
    let m = next_json(&mut ws).await;
    assert_eq!(
        (m["type"].as_str(), m["data"]["status"].as_str()),
        (Some("event_status"), Some("live"))
    );
    assert_eq!(m["seq"].as_u64(), Some(snap["seq"].as_u64().unwrap() + 1));
}

#[tokio::test]
async fn bad_frames_get_an_error_with_their_id_and_the_connection_stays_up() {
    let app = common::spawn_app().await;
    let mut ws = connect(&app, "").await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["code"], "malformed");
    send(&mut ws, json!({"op": "dance", "id": 7})).await;
    let e = next_json(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str(), e["id"].as_i64()),
        (Some("error"), Some("unknown_op"), Some(7))
    );
    send(&mut ws, json!({"op": "subscribe", "id": 8, "topics": ["market:x", "user:00000000-0000-0000-0000-000000000000"]})).await;
    assert_eq!(next_json(&mut ws).await["code"], "bad_topic");
    assert_eq!(next_json(&mut ws).await["code"], "bad_topic");
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 10, "topics": [format!("event:{}", uuid::Uuid::new_v4())]}),
    )
    .await;
    let e = next_json(&mut ws).await;
    assert_eq!(
        (e["code"].as_str(), e["id"].as_i64()),
        (Some("unknown_topic"), Some(10))
    );
    send(
        &mut ws,
        json!({"op": "place_bet", "id": 11, "type": "single"}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["code"], "unauthorized");
    send(&mut ws, json!({"op": "ping", "id": 12})).await;
    let pong = next_json(&mut ws).await;
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_i64()),
        (Some("pong"), Some(12))
    );
}

#[tokio::test]
async fn binary_and_oversized_frames_close_the_connection_with_documented_codes() {
    let app = common::spawn_app_with(|s| s.ws.incoming_message_bytes_max = 1024).await;
    let mut ws = connect(&app, "").await;
    ws.send(Message::Binary(vec![0xde, 0xad, 0xbe, 0xef]))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, 1003);
    let mut ws = connect(&app, "").await;
    let big = json!({"op": "ping", "id": "x".repeat(4096)}).to_string();
    ws.send(Message::Text(big)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1009);
}

#[tokio::test]
async fn flooding_past_the_message_rate_closes_with_4029() {
    let app = common::spawn_app_with(|s| s.ws.incoming_messages_per_second_max = 5).await;
    let mut ws = connect(&app, "").await;
    for i in 0..20 {
        if ws
            .send(Message::Text(json!({"op": "ping", "id": i}).to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(close_code(&mut ws).await, 4029);
}

#[tokio::test]
async fn origins_outside_the_allowlist_are_refused_and_bad_tokens_are_401() {
    let app = common::spawn_app().await;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://127.0.0.1:{}/ws", app.port)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let mut req = format!("ws://127.0.0.1:{}/ws", app.port)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", "http://localhost:8080".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    let err =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws?token=nope", app.port))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn the_connection_limit_answers_503() {
    let app = common::spawn_app_with(|s| s.ws.connections_max = 2).await;
    let _a = connect(&app, "").await;
    let _b = connect(&app, "").await;
    let err = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", app.port))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn the_private_channel_sees_its_own_bets_and_no_one_elses() {
    let app = common::spawn_app().await;
    let redis = winzo::redis_client::connect(&app.settings.redis).unwrap();
    let (alice, bob) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let (alice_token, _) =
        winzo::auth::session::create(&redis, alice.into(), winzo::auth::roles::Role::User, 60)
            .await
            .unwrap();
    let (bob_token, _) =
        winzo::auth::session::create(&redis, bob.into(), winzo::auth::roles::Role::User, 60)
            .await
            .unwrap();
    // Alice authenticates in the query, Bob with a first message.
    let mut a = connect(&app, &format!("?token={alice_token}")).await;
    let mut b = connect(&app, "").await;
    send(&mut b, json!({"op": "auth", "id": 1, "token": bob_token})).await;
    let ok = next_json(&mut b).await;
    assert_eq!(
        (ok["type"].as_str(), ok["user_id"].as_str()),
        (Some("authenticated"), Some(bob.to_string().as_str()))
    );
    send(&mut a, json!({"op": "ping", "id": 0})).await;
    assert_eq!(next_json(&mut a).await["type"], "pong"); // the session is up and attached
                                                         // The bet path publishes `bet` on `user:<id>`; here another node does, through Redis.
    let mut conn = redis.clone();
    for (user, bet) in [(alice, "bet-of-alice"), (bob, "bet-of-bob")] {
        let envelope = json!({"type": "bet", "topic": format!("user:{user}"), "seq": 1,
                              "data": {"bet_id": bet, "status": "accepted"}});
        let payload = format!("other-node\n{envelope}");
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{}user:{user}", app.settings.bridge.channel_prefix))
            .arg(payload)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let got_a = next_json(&mut a).await;
    assert_eq!(
        (got_a["type"].as_str(), got_a["data"]["bet_id"].as_str()),
        (Some("bet"), Some("bet-of-alice"))
    );
    let got_b = next_json(&mut b).await;
    assert_eq!(
        got_b["data"]["bet_id"], "bet-of-bob",
        "Bob's first private message is his own"
    );
    // Nobody may subscribe to someone else's private topic.
    send(
        &mut b,
        json!({"op": "subscribe", "id": 2, "topics": [format!("user:{alice}")]}),
    )
    .await;
    assert_eq!(next_json(&mut b).await["code"], "bad_topic");
    send(
        &mut a,
        json!({"op": "place_bet", "id": 3, "type": "single"}),
    )
    .await;
    let e = next_json(&mut a).await;
    assert_eq!(
        (e["code"].as_str(), e["id"].as_i64()),
        (Some("validation_failed"), Some(3))
    );
}

#[tokio::test]
async fn place_bet_over_the_socket_answers_like_rest_and_reaches_the_private_channel() {
    let app = common::spawn_app().await;
    let id = live_event(&app, "wsbet-1").await;
    let selection: uuid::Uuid = app
        .db
        .client
        .query_one(
            "SELECT s.id FROM selections s JOIN markets m ON m.id = s.market_id
              WHERE m.event_id = $1 AND m.type = 'moneyline' AND s.name = 'home'",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    let (user, token) =
        bets_support::bettor(&app.db.client, rust_decimal::Decimal::from(100)).await;
    let mut ws = connect(&app, &format!("?token={token}")).await;
    let mut bet = bets_support::single(selection, "2.1000", "5.00", "ws-bet-1");
    bet["op"] = json!("place_bet");
    bet["id"] = json!(21);
    send(&mut ws, bet.clone()).await;
    // The answer, the private `bet` message and the new `balance` arrive (in any order).
    let (mut answer, mut private, mut balance) = (None, None, None);
    for _ in 0..3 {
        let m = next_json(&mut ws).await;
        match m["type"].as_str() {
            Some("bet_result") => answer = Some(m),
            Some("bet") => private = Some(m),
            Some("balance") => balance = Some(m),
            _ => panic!("unexpected {m}"),
        }
    }
    assert_eq!(balance.expect("balance")["data"]["balance"], "95.00");
    let answer = answer.expect("bet_result");
    assert_eq!(
        (answer["id"].as_i64(), answer["status"].as_i64()),
        (Some(21), Some(201))
    );
    assert_eq!(answer["bet"]["status"], "accepted");
    let private = private.expect("private bet message");
    assert_eq!(private["topic"], format!("user:{user}"));
    assert_eq!(private["data"]["id"], answer["bet"]["id"]);
    // A price that moved is refused as REST would: odds_changed with the current price.
    bet["idempotency_key"] = json!("ws-bet-2");
    bet["legs"][0]["odds"] = json!("3.0000");
    bet["id"] = json!(22);
    send(&mut ws, bet).await;
    let e = next_json(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["id"].as_i64(), e["code"].as_str()),
        (Some("error"), Some(22), Some("odds_changed"))
    );
    assert_eq!(e["status"], 409);
    // A malformed bet is 422-like, the connection stays.
    send(
        &mut ws,
        json!({"op": "place_bet", "id": 23, "type": "single", "stake": 5.0}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["code"], "validation_failed");
}

/// Subscribers who arrive together share snapshot loads (`state::snapshot_loads`): each must
/// still get a snapshot read after it subscribed, so that the snapshot plus the deltas after
/// its seq end at the last price, with no gap, while prices move throughout.
#[tokio::test]
async fn subscribers_arriving_together_while_prices_move_all_end_at_the_last_price() {
    let app = common::spawn_app().await;
    let id = live_event(&app, "ws-herd").await;
    let topic = format!("event:{id}");
    let prices: Vec<String> = (1..=30).map(|k| format!("2.{:02}", k + 10)).collect();
    let last = format!("{}00", prices.last().unwrap());
    let mover = {
        let (prices, app) = (prices.clone(), &app);
        async move {
            for (k, price) in prices.iter().enumerate() {
                push(app, odds(2 + k as i64, "ws-herd", price)).await;
            }
        }
    };
    let subscriber = |n: usize| {
        let (topic, last, app) = (topic.clone(), last.clone(), &app);
        async move {
            let mut ws = connect(app, "").await;
            send(
                &mut ws,
                json!({"op": "subscribe", "id": n, "topics": [topic]}),
            )
            .await;
            let snap = next_of(&mut ws, "snapshot").await;
            let home = moneyline(&snap)["selections"][0].clone();
            let (home_id, mut price) = (home["id"].clone(), home["odds"].clone());
            let mut seq = snap["seq"].as_u64().unwrap();
            while price != last.as_str() {
                let m = next_json(&mut ws).await;
                assert_eq!(
                    m["seq"].as_u64().unwrap(),
                    seq + 1,
                    "no gap after the snapshot"
                );
                seq += 1;
                if m["type"] != "odds" {
                    continue;
                }
                let changed = m["data"]["selections"].as_array().unwrap();
                if let Some(s) = changed.iter().find(|s| s["id"] == home_id) {
                    price = s["odds"].clone();
                }
            }
        }
    };
    let herd = futures::future::join_all((0..40).map(subscriber));
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        futures::future::join(mover, herd),
    )
    .await
    .expect("every subscriber reaches the last price");
}

/// `TCP_NODELAY` and `TCP_USER_TIMEOUT` of the engine's side of the connection from
/// `client` (the in-process engine runs in this test's process, so its sockets are among
/// this process's file descriptors); `None` until it is accepted.
fn server_side_options(
    server_port: u16,
    client: std::net::SocketAddr,
) -> Option<(bool, Option<std::time::Duration>)> {
    use std::os::fd::BorrowedFd;
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .map(|l| l.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // Only read through while this loop looks at it; a descriptor closed meanwhile
        // answers an error, and one reused matches no address.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let local = sock.local_addr().ok().and_then(|a| a.as_socket());
        let peer = sock.peer_addr().ok().and_then(|a| a.as_socket());
        if local.map(|a| a.port()) == Some(server_port) && peer == Some(client) {
            return Some((sock.tcp_nodelay().ok()?, sock.tcp_user_timeout().ok()?));
        }
    }
    None
}

#[tokio::test]
async fn accepted_connections_get_nodelay_and_the_user_timeout_from_the_config() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for (nodelay, timeout_ms) in [(true, 1500u64), (false, 0)] {
        let app = common::spawn_app_with(|s| {
            s.server.tcp_nodelay = nodelay;
            s.ws.tcp_user_timeout_ms = timeout_ms;
        })
        .await;
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: engine\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 12];
        conn.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        let client = conn.local_addr().unwrap();
        let options = server_side_options(app.port, client).expect("the accepted socket");
        assert_eq!(
            options,
            (
                nodelay,
                (timeout_ms > 0).then(|| std::time::Duration::from_millis(timeout_ms))
            ),
            "server.tcp_nodelay = {nodelay}, ws.tcp_user_timeout_ms = {timeout_ms}"
        );
    }
}
