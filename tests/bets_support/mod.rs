//! Helpers of the bet-path tests: a funded bettor with a session, bet bodies, and reads
//! of what a bet changed (balance, bets, liability).
#![allow(dead_code)]

use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio_postgres::Client;
use uuid::Uuid;
use winzo::auth::Role;

/// A bettor with `funds` (backed by a deposit) and a session: (user id, token).
pub async fn bettor(db: &Client, funds: Decimal) -> (Uuid, String) {
    let id = crate::common::fixtures::funded_user(db, funds).await;
    let settings = winzo::config::load_for("test").expect("settings");
    let redis = winzo::redis_client::connect(&settings.redis).expect("redis");
    let (token, _) = winzo::auth::session::create(&redis, id.into(), Role::User, 3600)
        .await
        .expect("session");
    (id, token)
}

pub fn single(selection: Uuid, odds: &str, stake: &str, key: &str) -> Value {
    json!({"type": "single", "stake": stake, "legs": [{"selection_id": selection, "odds": odds}],
           "idempotency_key": key})
}

pub async fn place(app: &crate::common::TestApp, token: &str, body: &Value) -> (u16, Value) {
    let r = app
        .http
        .post(app.url("/api/v1/bets"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET path` with the bettor's token: the JSON body.
pub async fn get_json(app: &crate::common::TestApp, token: &str, path: &str) -> Value {
    let r = app.http.get(app.url(path)).bearer_auth(token).send().await;
    r.expect("request").json().await.expect("json")
}

/// The bet as `GET /api/v1/bets` lists it (among the bettor's last 50).
pub async fn listed(app: &crate::common::TestApp, token: &str, bet: Uuid) -> Value {
    let page = get_json(app, token, "/api/v1/bets?limit=50").await;
    page["bets"]
        .as_array()
        .expect("bets")
        .iter()
        .find(|b| b["id"] == bet.to_string().as_str())
        .unwrap_or_else(|| panic!("bet {bet} not listed: {page}"))
        .clone()
}

/// What a refused bet must leave untouched for a user and a market.
#[derive(Debug, PartialEq)]
pub struct Footprint {
    pub balance: Decimal,
    pub bets: i64,
    pub transactions: i64,
    pub liability: Value,
}

pub async fn footprint(
    app: &crate::common::TestApp,
    trader: &str,
    user: Uuid,
    market: Uuid,
) -> Footprint {
    let row = app
        .db
        .client
        .query_one(
            "SELECT (SELECT balance FROM user_balances WHERE user_id = $1),
                    (SELECT count(*) FROM bets WHERE user_id = $1),
                    (SELECT count(*) FROM transactions WHERE user_id = $1)",
            &[&user],
        )
        .await
        .unwrap();
    let liability = app
        .http
        .get(app.url(&format!("/api/v1/trading/markets/{market}/liability")))
        .bearer_auth(trader)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    Footprint {
        balance: row.get(0),
        bets: row.get(1),
        transactions: row.get(2),
        liability: liability["selections"].clone(),
    }
}

/// Sets `market`'s bet delay and puts `event` in play (the market follows it).
pub async fn go_live(
    app: &crate::common::TestApp,
    trader: &str,
    event: Uuid,
    market: Uuid,
    delay_ms: u64,
) {
    let r = app
        .http
        .patch(app.url(&format!("/api/v1/trading/markets/{market}/settings")))
        .bearer_auth(trader)
        .json(&json!({"bet_delay_ms": delay_ms}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .post(app.url(&format!("/api/v1/trading/events/{event}/status")))
        .bearer_auth(trader)
        .json(&json!({"status": "live"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
