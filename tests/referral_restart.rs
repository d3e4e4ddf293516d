//! Referrals across a `kill -9` of the real engine: a referral still in its window is
//! recovered (in the desk's queue, its liability counted, decidable), and one whose window
//! passed while the engine was down is rejected at start-up with its stake refunded.
mod bets_support;
mod common;
mod markets_support;

use std::time::Duration;

use common::engine::{free_port, spawn_engine as spawn, wait_ready};
use markets_support::{account, create_book, post};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use uuid::Uuid;
use winzo::auth::Role;

async fn liability(
    http: &reqwest::Client,
    base: &str,
    trader: &str,
    m: Uuid,
    sel: Uuid,
) -> (Decimal, Decimal) {
    markets_support::selection_liability(http, base, trader, m, sel).await
}

async fn status(db: &tokio_postgres::Client, bet: Uuid) -> (String, String) {
    let r = db
        .query_one(
            "SELECT b.status::text, r.status FROM bets b JOIN bet_referrals r ON r.bet_id = b.id
             WHERE b.id = $1",
            &[&bet],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

#[tokio::test]
async fn pending_referrals_survive_a_kill_9_and_expired_ones_are_rejected_at_start() {
    let db = common::TestDb::new().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut engine = spawn(&db.url, port, &[]);
    wait_ready(&http, &base).await;
    let (_, trader) = account(&db.client, Role::Moderator).await;
    let book = create_book(&http, &base, &trader).await;
    // Market 1 refers for a minute, market 0 for two seconds: both above 20.00.
    for (m, window) in [(book.markets[1], 60_000), (book.markets[0], 2_000)] {
        let (s, b) = markets_support::patch_settings(
            &http,
            &base,
            &trader,
            m,
            json!({"max_stake": "20.00", "referral_window_ms": window}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
    }
    let (user, token) = bets_support::bettor(&db.client, dec!(100.00)).await;
    let mut bets = Vec::new();
    for (i, m) in [1usize, 0].into_iter().enumerate() {
        let sel = book.selections[m][0];
        let odds: Decimal = db
            .client
            .query_one("SELECT odds FROM selections WHERE id = $1", &[&sel])
            .await
            .unwrap()
            .get(0);
        let (s, b) = post(
            &http,
            format!("{base}/api/v1/bets"),
            &token,
            bets_support::single(sel, &odds.to_string(), "40.00", &format!("b{i}")),
        )
        .await;
        assert_eq!(s, 202, "{b}");
        bets.push((b["id"].as_str().unwrap().parse::<Uuid>().unwrap(), odds));
    }
    let (long, short) = (bets[0].0, bets[1].0);
    let over = book.selections[1][0];
    let before = liability(&http, &base, &trader, book.markets[1], over).await;
    assert_eq!(before.0, dec!(40.00));

    engine.kill().unwrap();
    engine.wait().unwrap();
    // The short window passes while the engine is down (by the database's clock).
    common::wait_until(
        "the short window to pass",
        Duration::from_secs(10),
        || async {
            db.client
                .query_one(
                    "SELECT expires_at < now() FROM bet_referrals WHERE bet_id = $1",
                    &[&short],
                )
                .await
                .unwrap()
                .get::<_, bool>(0)
        },
    )
    .await;
    assert_eq!(status(&db.client, short).await.0, "referred");

    let _engine = spawn(&db.url, port, &[]);
    wait_ready(&http, &base).await;
    common::wait_until(
        "the expired referral to be rejected",
        Duration::from_secs(10),
        || async { status(&db.client, short).await == ("rejected".into(), "expired".into()) },
    )
    .await;
    // The one in its window is still there, counted and decidable.
    assert_eq!(
        status(&db.client, long).await,
        ("referred".into(), "pending".into())
    );
    assert_eq!(
        liability(&http, &base, &trader, book.markets[1], over).await,
        before
    );
    let q: Value = http
        .get(format!("{base}/api/v1/trading/referrals"))
        .bearer_auth(&trader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let queue = q["referrals"].as_array().unwrap();
    assert_eq!(queue.len(), 1, "{q}");
    assert_eq!(queue[0]["bet_id"], long.to_string());
    let (s, b) = post(
        &http,
        format!("{base}/api/v1/trading/referrals/{long}"),
        &trader,
        json!({"decision": "accept"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        status(&db.client, long).await,
        ("accepted".into(), "accepted".into())
    );
    assert_eq!(
        liability(&http, &base, &trader, book.markets[1], over).await,
        before
    );
    let balance: Decimal = db
        .client
        .query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    // 100 - 40 (accepted) - 40 (held, then refunded).
    assert_eq!(balance, dec!(60.00));
    let violations = winzo::ledger_check::check_database(&{
        let mut s = common::test_settings();
        s.database.url = db.url.clone();
        s.database
    })
    .await
    .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}
