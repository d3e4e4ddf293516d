//! Cash-out across a `kill -9` of the real engine: a partly cashed-out bet's liability is
//! recovered at its remaining stake, and an armed automatic cash-out still fires.
mod bets_support;
mod common;
mod markets_support;

use std::time::Duration;

use common::engine::{free_port, spawn_engine as spawn, wait_ready};
use markets_support::{account, create_book, post};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use winzo::auth::Role;

async fn over_liability(
    http: &reqwest::Client,
    base: &str,
    trader: &str,
    m: uuid::Uuid,
    sel: uuid::Uuid,
) -> (Decimal, Decimal) {
    let v: Value = http
        .get(format!("{base}/api/v1/trading/markets/{m}/liability"))
        .bearer_auth(trader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let s = v["selections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["selection_id"] == sel.to_string().as_str())
        .unwrap()
        .clone();
    let d = |k: &str| -> Decimal { s[k].as_str().unwrap().parse().unwrap() };
    (d("stake"), d("payout"))
}

#[tokio::test]
async fn a_partly_cashed_out_and_armed_bet_survives_kill_9() {
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
    let (m, over) = (book.markets[1], book.selections[1][0]);
    let (user, token) = bets_support::bettor(&db.client, dec!(50.00)).await;
    let (s, b) = post(
        &http,
        format!("{base}/api/v1/bets"),
        &token,
        bets_support::single(over, "2.5000", "10.00", "b"),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let bet = b["id"].as_str().unwrap().to_string();
    let (s, b) = post(
        &http,
        format!("{base}/api/v1/bets/{bet}/cash-out"),
        &token,
        json!({"amount": "9.50", "fraction": "0.5", "idempotency_key": "c"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let r = http
        .put(format!("{base}/api/v1/bets/{bet}/auto-cash-out"))
        .bearer_auth(&token)
        .json(&json!({"threshold": "7.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let before = over_liability(&http, &base, &trader, m, over).await;
    assert_eq!(before, (dec!(5.00), dec!(12.50)));

    engine.kill().unwrap();
    engine.wait().unwrap();
    let _engine = spawn(&db.url, port, &[]);
    wait_ready(&http, &base).await;
    assert_eq!(over_liability(&http, &base, &trader, m, over).await, before);
    // The remaining 5.00 at 2.5 is worth 5 × 2.5 / 1.6 × 0.95 = 7.42 at 1.6: armed at 7.00.
    let (s, b) = post(
        &http,
        format!("{base}/api/v1/trading/markets/{m}/prices"),
        &trader,
        json!({"prices": [{"selection_id": over, "odds": "1.6000"}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let bet_id: uuid::Uuid = bet.parse().unwrap();
    common::wait_until(
        "the automatic cash-out after the restart",
        Duration::from_secs(10),
        || async {
            let st: String = db
                .client
                .query_one("SELECT status::text FROM bets WHERE id = $1", &[&bet_id])
                .await
                .unwrap()
                .get(0);
            st == "cashed_out"
        },
    )
    .await;
    let r = db
        .client
        .query_one(
            "SELECT count(*), sum(amount) FROM bet_cash_outs WHERE bet_id = $1",
            &[&bet_id],
        )
        .await
        .unwrap();
    let (n, paid): (i64, Decimal) = (r.get(0), r.get(1));
    assert_eq!((n, paid), (2, dec!(4.75) + dec!(7.42)));
    let balance: Decimal = db
        .client
        .query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, dec!(40.00) + paid);
    assert_eq!(
        over_liability(&http, &base, &trader, m, over).await,
        (dec!(0), dec!(0))
    );
    let violations = winzo::ledger_check::check_database(&{
        let mut s = common::test_settings();
        s.database.url = db.url.clone();
        s.database
    })
    .await
    .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}
