//! Feed ingest against the real server: signatures, timestamps, sequencing, restarts and
//! the effect of every message type on live state.
mod common;
mod markets_support;
mod stream_support;

use serde_json::json;
use stream_support::*;

#[tokio::test]
async fn unsigned_badly_signed_stale_and_unknown_provider_pushes_are_401_and_change_nothing() {
    let app = common::spawn_app().await;
    let sport = sport(&app).await;
    let body = json!([fixture(1, "auth-1", &sport)]).to_string();
    let now = chrono::Utc::now().timestamp();
    let unsigned = app
        .http
        .post(app.url("/api/v1/feed/demo/messages"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let err: serde_json::Value = unsigned.json().await.unwrap();
    assert_eq!(err["error"]["code"], "unauthorized");
    assert_eq!(
        push_raw(&app, PROVIDER, "wrong-secret", now, &body)
            .await
            .status(),
        401
    );
    assert_eq!(
        push_raw(&app, PROVIDER, SECRET, now - 330, &body)
            .await
            .status(),
        401
    );
    // Well past the window either way: a loaded machine may take a second or two between
    // this test's clock and the server's.
    assert_eq!(
        push_raw(&app, PROVIDER, SECRET, now + 330, &body)
            .await
            .status(),
        401
    );
    assert_eq!(
        push_raw(&app, "nobody", SECRET, now, &body).await.status(),
        401
    );
    // The signature covers the exact bytes: one byte changed is refused.
    let sig = winzo::feed::auth::sign(SECRET, now, body.as_bytes());
    let tampered = app
        .http
        .post(app.url("/api/v1/feed/demo/messages"))
        .header("X-Feed-Timestamp", now.to_string())
        .header("X-Feed-Signature", sig)
        .body(body.replace("auth-1", "auth-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);
    let n: i64 = app
        .db
        .client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing applied");
    let seqs: i64 = app
        .db
        .client
        .query_one("SELECT count(*) FROM feed_sequences", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(seqs, 0);
    // And a correct push within the window is taken.
    assert_eq!(
        push_raw(&app, PROVIDER, SECRET, now - 299, &body)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn oversized_and_malformed_pushes_are_refused() {
    let app = common::spawn_app_with(|s| s.feed.body_max_bytes = 1000).await;
    let now = chrono::Utc::now().timestamp();
    let big = format!("[{}]", vec![r#"{"type":"heartbeat"}"#; 100].join(","));
    assert_eq!(
        push_raw(&app, PROVIDER, SECRET, now, &big).await.status(),
        413
    );
    assert_eq!(
        push_raw(&app, PROVIDER, SECRET, now, "{not json")
            .await
            .status(),
        400
    );
    let shape = r#"{"seq":1,"event_ref":"x","type":"score","home":"one"}"#;
    assert_eq!(
        push_raw(&app, PROVIDER, SECRET, now, shape).await.status(),
        422
    );
}

#[tokio::test]
async fn duplicates_are_acknowledged_and_ignored_and_gaps_are_reported() {
    let app = common::spawn_app().await;
    let sport = sport(&app).await;
    push(&app, fixture(1, "seq-1", &sport)).await;
    let dup = push(
        &app,
        json!({"seq": 1, "event_ref": "seq-1", "type": "score", "home": 1, "away": 0}),
    )
    .await;
    assert_eq!(dup["results"][0]["outcome"], "duplicate");
    assert_eq!(dup["duplicates"], 1);
    let id = event_id(&app, "seq-1").await;
    let score: i32 = app
        .db
        .client
        .query_one("SELECT home_score FROM events WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(score, 0, "a duplicate changes nothing");
    let gap = push(
        &app,
        json!({"seq": 5, "event_ref": "seq-1", "type": "score", "home": 2, "away": 0}),
    )
    .await;
    assert_eq!(gap["results"][0]["outcome"], "gap");
    assert_eq!(gap["results"][0]["expected_seq"], 2);
    assert_eq!(gap["gaps"], 1);
    let score: i32 = app
        .db
        .client
        .query_one("SELECT home_score FROM events WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(score, 2, "a gap is applied");
    // An older seq after the gap is a duplicate too.
    let old = push(
        &app,
        json!({"seq": 3, "event_ref": "seq-1", "type": "score", "home": 9, "away": 9}),
    )
    .await;
    assert_eq!(old["results"][0]["outcome"], "duplicate");
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"winzo_feed_gap_messages_total{provider="demo"} 3"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"winzo_feed_messages_total{outcome="duplicate",provider="demo"} 2"#));
}

#[tokio::test]
async fn after_a_restart_applied_messages_are_not_reapplied_and_none_is_skipped() {
    let app = common::spawn_app().await;
    let sport = sport(&app).await;
    push(
        &app,
        json!([fixture(1, "rs-1", &sport),
                      {"seq": 2, "event_ref": "rs-1", "type": "score", "home": 1, "away": 0}]),
    )
    .await;
    let url = app.db.url.clone();
    app.stop().await;
    let again = common::spawn_app_with(move |s| s.database.url = url).await;
    let answer = push(
        &again,
        json!([
        {"seq": 2, "event_ref": "rs-1", "type": "score", "home": 5, "away": 5},
        {"seq": 3, "event_ref": "rs-1", "type": "score", "home": 2, "away": 0}]),
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "duplicate");
    assert_eq!(
        answer["results"][1]["outcome"], "applied",
        "seq 3 follows 2: no gap"
    );
    let row = app
        .db
        .client
        .query_one(
            "SELECT e.home_score, f.last_seq FROM events e JOIN feed_sequences f
           ON f.provider = e.provider AND f.event_ref = e.provider_event_ref
          WHERE e.provider_event_ref = 'rs-1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i64>(1)), (2, 3));
}

#[tokio::test]
async fn every_message_type_changes_live_state() {
    let app = common::spawn_app().await;
    let sport = sport(&app).await;
    let a = push(&app, fixture(1, "m-1", &sport)).await;
    assert_eq!(a["applied"], 1, "{a}");
    let id = event_id(&app, "m-1").await;
    let teams: i64 = app
        .db
        .client
        .query_one(
            "SELECT count(*) FROM teams t JOIN sports s ON s.id = t.sport_id WHERE s.slug = $1",
            &[&sport],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(teams, 2, "teams created under the sport");
    assert_eq!(
        markets(&app, id).await,
        vec![
            ("moneyline".into(), "open".into(), false),
            ("total_points".into(), "open".into(), false)
        ]
    );

    push(&app, json!({"seq": 2, "event_ref": "m-1", "type": "status", "status": "live", "period": "1H", "clock": "00:00"})).await;
    let (status, in_play): (String, bool) = {
        let r = app.db.client.query_one("SELECT e.status::text, bool_and(m.in_play) FROM events e JOIN markets m ON m.event_id = e.id WHERE e.id = $1 GROUP BY e.status", &[&id]).await.unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((status.as_str(), in_play), ("live", true));

    // A goal suspends every market (default rule) for the feed, before the score applies;
    // the trader's status is untouched.
    push(&app, json!({"seq": 3, "event_ref": "m-1", "type": "score", "home": 1, "away": 0, "clock": "23:00"})).await;
    assert!(
        markets(&app, id).await.iter().all(|m| m.1 == "open" && m.2),
        "{:?}",
        markets(&app, id).await
    );
    let (home, clock): (i32, Option<String>) = {
        let r = app
            .db
            .client
            .query_one("SELECT home_score, clock FROM events WHERE id = $1", &[&id])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((home, clock.as_deref()), (1, Some("23:00")));

    // Odds reopen a market the feed suspended...
    push(&app, json!({"seq": 4, "event_ref": "m-1", "type": "odds", "market": {"type": "moneyline"},
                      "prices": [{"name": "home", "odds": "1.50"}, {"name": "away", "odds": "2.60"}]})).await;
    let ml = &markets(&app, id).await[0];
    assert_eq!((ml.1.as_str(), ml.2), ("open", false));
    let price: rust_decimal::Decimal = app.db.client.query_one("SELECT s.odds FROM selections s JOIN markets m ON m.id = s.market_id WHERE m.event_id = $1 AND s.name = 'home' AND m.type = 'moneyline'", &[&id]).await.unwrap().get(0);
    assert_eq!(price.to_string(), "1.5000");

    // ...but never one a trader suspended: its prices are refused, it stays suspended.
    let ml_id: uuid::Uuid = app
        .db
        .client
        .query_one(
            "SELECT id FROM markets WHERE event_id = $1 AND type = 'moneyline'",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    let (_, trader) = markets_support::account(&app.db.client, winzo::auth::Role::Moderator).await;
    let (st, _) = markets_support::post(
        &app.http,
        app.url(&format!("/api/v1/trading/markets/{ml_id}/suspend")),
        &trader,
        json!({}),
    )
    .await;
    assert_eq!(st, 200);
    let r = push(
        &app,
        json!({"seq": 5, "event_ref": "m-1", "type": "odds", "market": {"type": "moneyline"},
                              "prices": [{"name": "home", "odds": "1.55"}]}),
    )
    .await;
    assert_eq!(r["results"][0]["outcome"], "rejected", "{r}");
    assert_eq!(markets(&app, id).await[0].1, "suspended");
    let (st, _) = markets_support::post(
        &app.http,
        app.url(&format!("/api/v1/trading/markets/{ml_id}/resume")),
        &trader,
        json!({}),
    )
    .await;
    assert_eq!(st, 200);

    // bet_stop on a named market suspends only that one (after odds reopened it).
    push(&app, json!({"seq": 6, "event_ref": "m-1", "type": "odds", "market": {"type": "total_points", "line": "2.5"},
                      "prices": [{"name": "over", "odds": "1.70"}, {"name": "under", "odds": "2.10"}]})).await;
    assert!(markets(&app, id).await.iter().all(|m| !m.2));
    push(&app, json!({"seq": 7, "event_ref": "m-1", "type": "bet_stop", "markets": [{"type": "total_points", "line": "2.5"}]})).await;
    let ms = markets(&app, id).await;
    assert_eq!((ms[0].2, ms[1].2), (false, true));
    // bet_stop without markets suspends all.
    push(
        &app,
        json!({"seq": 8, "event_ref": "m-1", "type": "bet_stop"}),
    )
    .await;
    assert!(markets(&app, id).await.iter().all(|m| m.2));

    // An unknown market is rejected, its seq consumed, nothing changed.
    let r = push(&app, json!({"seq": 9, "event_ref": "m-1", "type": "odds", "market": {"type": "point_spread", "line": "-1.5"},
                              "prices": [{"name": "home", "odds": "1.90"}]})).await;
    assert_eq!(r["results"][0]["outcome"], "rejected");

    push(&app, json!({"seq": 10, "event_ref": "m-1", "type": "status", "status": "finished", "period": "FT"})).await;
    assert!(markets(&app, id).await.iter().all(|m| m.1 == "closed"));
    let hb = push(&app, json!({"type": "heartbeat"})).await;
    assert_eq!(hb["applied"], 1);
}

#[tokio::test]
async fn a_silent_provider_gets_its_markets_suspended_until_it_sends_odds() {
    let app = common::spawn_app_with(|s| {
        s.feed.providers[0].heartbeat_window_ms = 400;
        s.feed.watchdog_interval_ms = 50;
    })
    .await;
    let sport = sport(&app).await;
    push(&app, fixture(1, "wd-1", &sport)).await;
    let id = event_id(&app, "wd-1").await;
    let silent_events = || async {
        app.db
            .client
            .query_one(
                "SELECT count(*) FROM system_events WHERE event_type = 'feed_provider_silent'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    // The watchdog feed-suspends the markets, then records the silence.
    common::wait_until(
        "the silent provider's markets to be feed-suspended",
        std::time::Duration::from_secs(10),
        || async { markets(&app, id).await.iter().all(|m| m.1 == "open" && m.2) },
    )
    .await;
    common::wait_until(
        "the watchdog to record the silent provider",
        std::time::Duration::from_secs(10),
        || async { silent_events().await >= 1 },
    )
    .await;
    assert!(
        markets(&app, id).await.iter().all(|m| m.1 == "open" && m.2),
        "feed-suspended for silence"
    );
    let n = silent_events().await;
    assert!(n >= 1);
    push(
        &app,
        json!({"seq": 2, "event_ref": "wd-1", "type": "odds", "market": {"type": "moneyline"},
                      "prices": [{"name": "home", "odds": "2.00"}]}),
    )
    .await;
    let ms = markets(&app, id).await;
    assert!(!ms[0].2, "reopened by odds");
    assert!(ms[1].2, "no odds for it yet");
}
