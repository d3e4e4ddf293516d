//! Helpers of the settlement tests: books, bets, settle calls, and reads of what a
//! settlement booked.
#![allow(dead_code)]

use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::TestApp;
use crate::markets_support::{create_book, post, Book};

pub mod cases;

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
    crate::common::fixtures::balance(&app.db.client, user).await
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

/// Inserts `users` funded bettors with `per_user` accepted singles of 10.00 at 2.5 each,
/// alternating over `selections`, straight in SQL (one transaction: bets, legs, debits,
/// balances, as the ledger writer would). Answers the number of bets.
pub async fn bulk_bets(
    client: &tokio_postgres::Client,
    selections: &[Uuid],
    users: i64,
    per_user: i64,
) -> i64 {
    let tag = Uuid::new_v4().simple().to_string()[..8].to_string();
    let sql = format!(
        "BEGIN;
         CREATE TEMP TABLE bulk_users ON COMMIT DROP AS
           SELECT gen_random_uuid() AS id, g FROM generate_series(1, {users}) g;
         INSERT INTO users (id, username, email, password_hash, salt)
           SELECT id, 'b{tag}' || g, 'b{tag}' || g || '@bulk.test', 'x', 'x' FROM bulk_users;
         INSERT INTO user_balances (user_id, balance) SELECT id, 1000 FROM bulk_users;
         INSERT INTO transactions (user_id, type, amount, status)
           SELECT id, 'deposit', 1000, 'completed' FROM bulk_users;
         CREATE TEMP TABLE bulk_bets ON COMMIT DROP AS
           SELECT gen_random_uuid() AS id, u.id AS user_id, k FROM bulk_users u,
                  generate_series(1, {per_user}) k;
         INSERT INTO bets (id, user_id, type, status, stake, total_odds, potential_win, metadata)
           SELECT id, user_id, 'single', 'accepted', 10, 2.5, 25,
                  '{{\"unit_stake\": \"10.00\", \"lines\": 1}}' FROM bulk_bets;
         INSERT INTO transactions (user_id, type, amount, status, reference, related_bet_id, processed_at)
           SELECT user_id, 'bet_debit', -10, 'completed', 'bet:' || id, id, now() FROM bulk_bets;
         UPDATE user_balances b SET balance = balance - 10 * {per_user}
           FROM bulk_users u WHERE b.user_id = u.id;"
    );
    client
        .batch_execute(&sql)
        .await
        .expect("bulk users and bets");
    client
        .execute(
            "INSERT INTO bet_selections (bet_id, selection_id, odds)
             SELECT id, ($1::uuid[])[1 + (k % array_length($1::uuid[], 1))], 2.5 FROM bulk_bets",
            &[&selections],
        )
        .await
        .expect("bulk legs");
    client.batch_execute("COMMIT").await.expect("bulk commit");
    users * per_user
}
