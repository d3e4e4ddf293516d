//! Helpers of the settlement tests: books, bets, settle calls, and reads of what a
//! settlement booked.
#![allow(dead_code)]

use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::TestApp;
use crate::markets_support::{create_book, post, Book};

pub async fn book(app: &TestApp, trader: &str) -> Book {
    create_book(&app.http, &app.address, trader).await
}

/// `{"selection_id", "result", factors...}` for each (selection, result, dh, vf).
pub fn results(rs: &[(Uuid, &str, Option<&str>, Option<&str>)]) -> Value {
    let list: Vec<Value> = rs
        .iter()
        .map(|(id, r, dh, vf)| {
            let mut v = json!({"selection_id": id, "result": r});
            if let Some(dh) = dh {
                v["dead_heat_factor"] = json!(dh);
            }
            if let Some(vf) = vf {
                v["void_factor"] = json!(vf);
            }
            v
        })
        .collect();
    json!({ "results": list })
}

/// POST /trading/markets/{id}/{action} with the body; answers status and body.
pub async fn trade(
    app: &TestApp,
    trader: &str,
    market: Uuid,
    action: &str,
    body: Value,
) -> (u16, Value) {
    post(
        &app.http,
        app.url(&format!("/api/v1/trading/markets/{market}/{action}")),
        trader,
        body,
    )
    .await
}

/// Settles (or resettles) and insists on a completed answer.
pub async fn settle_ok(
    app: &TestApp,
    trader: &str,
    market: Uuid,
    action: &str,
    body: Value,
) -> Value {
    let (s, b) = trade(app, trader, market, action, body).await;
    assert_eq!(s, 200, "{action} {market}: {b}");
    assert!(!b["settlement"]["completed_at"].is_null(), "{b}");
    b
}

pub async fn bet_row(app: &TestApp, bet: Uuid) -> (String, Decimal) {
    let r = app
        .db
        .client
        .query_one(
            "SELECT status::text, actual_win FROM bets WHERE id = $1",
            &[&bet],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

pub async fn balance(app: &TestApp, user: Uuid) -> Decimal {
    app.db
        .client
        .query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0)
}

pub fn bet_id(v: &Value) -> Uuid {
    v["id"]
        .as_str()
        .or_else(|| v["bet_id"].as_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no bet id in {v}"))
}

pub async fn ledger_clean(app: &TestApp) {
    let violations = winzo::ledger_check::check_database(&app.settings.database)
        .await
        .expect("check-ledger runs");
    assert!(violations.is_empty(), "{violations:?}");
}
