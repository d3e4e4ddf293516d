//! Restart recovery: build a book, move prices, suspend markets, change settings, put an
//! event in play, `kill -9` the real engine process, start it again and compare the whole
//! live state with what was acknowledged before the kill.
mod bets_support;
mod common;

use common::engine::{free_port, spawn_engine as spawn, wait_ready};
mod markets_support;

use std::time::Duration;

use markets_support::{account, create_book, get, post};
use serde_json::{json, Value};
use winzo::auth::Role;

/// Everything live about the book: each event with markets, odds, statuses, settings and
/// liability.
async fn live_state(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    events: &[uuid::Uuid],
    markets: &[uuid::Uuid],
) -> Value {
    let mut out = json!({});
    for e in events {
        let (s, ev) = get(http, format!("{base}/api/v1/events/{e}")).await;
        assert_eq!(s, 200, "{ev}");
        out[e.to_string()] = ev;
    }
    for m in markets {
        let r = http
            .get(format!("{base}/api/v1/trading/markets/{m}/liability"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        out[format!("liability:{m}")] = r.json().await.unwrap();
    }
    out
}

#[tokio::test]
async fn every_acknowledged_change_survives_kill_9() {
    let db = common::TestDb::new().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut engine = spawn(&db.url, port, &[]);
    wait_ready(&http, &base).await;
    let (_, token) = account(&db.client, Role::Moderator).await;
    let a = create_book(&http, &base, &token).await;
    let b = create_book(&http, &base, &token).await;
    // Open bets on both events, one of them a parlay over both: the liabilities are
    // rebuilt from them.
    let (_, bettor) = bets_support::bettor(&db.client, rust_decimal_macros::dec!(100.00)).await;
    for (key, legs) in [
        (
            "single-a",
            json!([{"selection_id": a.selections[0][0], "odds": "1.9091"}]),
        ),
        (
            "single-b",
            json!([{"selection_id": b.selections[1][0], "odds": "2.5000"}]),
        ),
        (
            "parlay-ab",
            json!([{"selection_id": a.selections[0][1], "odds": "1.9091"},
                              {"selection_id": b.selections[1][2], "odds": "9.0000"}]),
        ),
    ] {
        let kind = if key.starts_with("parlay") {
            "parlay"
        } else {
            "single"
        };
        let (s, bet) = post(
            &http,
            format!("{base}/api/v1/bets"),
            &bettor,
            json!({"type": kind, "stake": "3.00", "idempotency_key": key, "legs": legs}),
        )
        .await;
        assert_eq!(s, 201, "{bet}");
    }
    // Many acknowledged price moves, the last of which must survive.
    for i in 0..25u32 {
        let odds = format!("{}.{:04}", 1 + (i % 3), 1000 + i);
        let (s, body) = post(
            &http,
            format!("{base}/api/v1/trading/markets/{}/prices", a.markets[1]),
            &token,
            json!({"prices": [{"selection_id": a.selections[1][0], "odds": odds}]}),
        )
        .await;
        assert_eq!(s, 200, "{body}");
    }
    let (s, _) = post(
        &http,
        format!("{base}/api/v1/trading/markets/{}/suspend", a.markets[0]),
        &token,
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = post(
        &http,
        format!("{base}/api/v1/trading/events/{}/status", b.event_id),
        &token,
        json!({"status": "live"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = post(
        &http,
        format!("{base}/api/v1/trading/markets/{}/close", b.markets[1]),
        &token,
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let r = http
        .patch(format!(
            "{base}/api/v1/trading/markets/{}/settings",
            b.markets[0]
        ))
        .bearer_auth(&token)
        .json(&json!({"bet_delay_ms": 700, "min_stake": "1.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let events = [a.event_id, b.event_id];
    let markets: Vec<uuid::Uuid> = a.markets.iter().chain(&b.markets).copied().collect();
    let before = live_state(&http, &base, &token, &events, &markets).await;

    engine.kill().expect("SIGKILL");
    engine.wait().expect("reaped");
    // One event per recovery query: the liabilities come from several reads.
    let mut engine = spawn(
        &db.url,
        port,
        &[("WINZO__MARKETS__RECOVER_BATCH_MARKETS", "1")],
    );
    wait_ready(&http, &base).await;
    let after = live_state(&http, &base, &token, &events, &markets).await;
    engine.kill().ok();
    engine.wait().ok();
    assert_eq!(before, after, "live state after kill -9 and restart");
    let stake_on = |m: &uuid::Uuid, sel: &uuid::Uuid| {
        after[format!("liability:{m}")]["selections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["selection_id"] == sel.to_string())
            .map(|s| s["stake"].as_str().unwrap().to_string())
    };
    assert_eq!(
        stake_on(&a.markets[0], &a.selections[0][1]).as_deref(),
        Some("3.00"),
        "the parlay's leg on event a: {after}"
    );
    assert_eq!(
        stake_on(&b.markets[1], &b.selections[1][2]).as_deref(),
        Some("3.00"),
        "the parlay's leg on event b: {after}"
    );
    assert_eq!(
        after[a.event_id.to_string()]["markets"][0]["status"],
        "suspended"
    );
    assert_eq!(after[b.event_id.to_string()]["status"], "live");
}
