//! The bet path end to end: acceptance, every refusal code leaving nothing behind,
//! idempotency, odds policies, parlays and system bets.
mod bets_support;
mod common;
mod markets_support;

use bets_support::{bettor, footprint, place, single};
use markets_support::{account, create_book, post, Book};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use winzo::auth::Role;

struct Fixture {
    app: common::TestApp,
    trader: String,
    book: Book,
}

async fn setup() -> Fixture {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &trader).await;
    Fixture { app, trader, book }
}

impl Fixture {
    async fn trade(&self, path: &str, body: Value) -> Value {
        let (s, b) = if path.ends_with("/settings") {
            let r = self
                .app
                .http
                .patch(self.app.url(path))
                .bearer_auth(&self.trader)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        } else {
            post(&self.app.http, self.app.url(path), &self.trader, body).await
        };
        assert!(s == 200 || s == 201, "{path}: {s} {b}");
        b
    }
}

#[tokio::test]
async fn an_accepted_single_is_durable_with_its_debit_and_counts_in_liability() {
    let f = setup().await;
    let (user, token) = bettor(&f.app.db.client, dec!(100.00)).await;
    let sel = f.book.selections[1][0]; // Over at 2.5000
    let (s, bet) = place(&f.app, &token, &single(sel, "2.5000", "10.00", "k1")).await;
    assert_eq!(s, 201, "{bet}");
    assert_eq!(bet["status"], "accepted");
    assert_eq!(bet["stake"], "10.00");
    assert_eq!(bet["potential_win"], "25.00");
    assert_eq!(bet["legs"][0]["odds"], "2.5000");
    let row = f
        .app
        .db
        .client
        .query_one(
            "SELECT (SELECT balance FROM user_balances WHERE user_id = $1),
                    (SELECT count(*) FROM transactions WHERE user_id = $1 AND type = 'bet_debit' AND amount = -10),
                    (SELECT status::text FROM bets WHERE user_id = $1)",
            &[&user],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Decimal>(0), dec!(90.00));
    assert_eq!(row.get::<_, i64>(1), 1);
    assert_eq!(row.get::<_, String>(2), "accepted");
    let fp = footprint(&f.app, &f.trader, user, f.book.markets[1]).await;
    let over = fp
        .liability
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["selection_id"] == sel.to_string())
        .unwrap();
    assert_eq!(over["stake"], "10.00", "{over}");
    // History shows it with its leg.
    let hist: Value = f
        .app
        .http
        .get(f.app.url("/api/v1/bets"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hist["bets"][0]["id"], bet["id"]);
    assert_eq!(hist["bets"][0]["legs"][0]["selection_name"], "Over");
    let one = f
        .app
        .http
        .get(
            f.app
                .url(&format!("/api/v1/bets/{}", bet["id"].as_str().unwrap())),
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
}

/// Places a refused bet and proves it changed nothing.
async fn refused(
    f: &Fixture,
    user: uuid::Uuid,
    token: &str,
    body: Value,
    market: uuid::Uuid,
    code: &str,
) {
    let before = footprint(&f.app, &f.trader, user, market).await;
    let (s, b) = place(&f.app, token, &body).await;
    assert!(s >= 400, "{code}: {s} {b}");
    assert_eq!(b["error"]["code"], code, "{b}");
    let after = footprint(&f.app, &f.trader, user, market).await;
    assert_eq!(before, after, "{code} changed something");
}

#[tokio::test]
async fn every_refusal_code_changes_nothing() {
    let f = setup().await;
    let (user, token) = bettor(&f.app.db.client, dec!(50.00)).await;
    let (m0, m1) = (f.book.markets[0], f.book.markets[1]);
    let s0 = f.book.selections[0][0]; // 1.9091
    let s1 = f.book.selections[1][0]; // 2.5000
    refused(
        &f,
        user,
        &token,
        single(s1, "2.6000", "1.00", "a"),
        m1,
        "odds_changed",
    )
    .await;
    refused(
        &f,
        user,
        &token,
        single(s1, "2.5000", "60.00", "b"),
        m1,
        "insufficient_funds",
    )
    .await;
    refused(
        &f,
        user,
        &token,
        single(s1, "2.5000", "0.01", "c"),
        m1,
        "stake_too_low",
    )
    .await;
    refused(
        &f,
        user,
        &token,
        single(uuid::Uuid::new_v4(), "2.5000", "1.00", "d"),
        m1,
        "unknown_selection",
    )
    .await;
    let dup = json!({"type": "parlay", "stake": "1.00", "idempotency_key": "e",
        "legs": [{"selection_id": s1, "odds": "2.5"}, {"selection_id": f.book.selections[1][1], "odds": "1.5"}]});
    refused(&f, user, &token, dup, m1, "duplicate_leg").await;
    let corr = json!({"type": "parlay", "stake": "1.00", "idempotency_key": "f",
        "legs": [{"selection_id": s0, "odds": "1.9091"}, {"selection_id": s1, "odds": "2.5"}]});
    refused(&f, user, &token, corr, m1, "correlated_legs").await;
    // Limits on the market: max stake and liability.
    f.trade(
        &format!("/api/v1/trading/markets/{m1}/settings"),
        json!({"max_stake": "5.00", "max_liability_selection": "20.00"}),
    )
    .await;
    refused(
        &f,
        user,
        &token,
        single(s1, "2.5000", "6.00", "g"),
        m1,
        "stake_too_high",
    )
    .await;
    // 5.00 at 2.5 pays 12.50; a second 5.00 would take the selection's payout to 25 > 20.
    let (s, b) = place(&f.app, &token, &single(s1, "2.5000", "5.00", "h")).await;
    assert_eq!(s, 201, "{b}");
    refused(
        &f,
        user,
        &token,
        single(s1, "2.5000", "5.00", "i"),
        m1,
        "liability_exceeded",
    )
    .await;
    // Market status.
    f.trade(&format!("/api/v1/trading/markets/{m0}/suspend"), json!({}))
        .await;
    refused(
        &f,
        user,
        &token,
        single(s0, "1.9091", "1.00", "j"),
        m0,
        "market_suspended",
    )
    .await;
    f.trade(&format!("/api/v1/trading/markets/{m0}/close"), json!({}))
        .await;
    refused(
        &f,
        user,
        &token,
        single(s0, "1.9091", "1.00", "k"),
        m0,
        "market_closed",
    )
    .await;
}

/// Refusal figures keep two places also when the database answers a bare `0`: an empty
/// balance, and no stake yet this period (`coalesce(sum(stake), 0)`).
#[tokio::test]
async fn refusal_figures_read_from_the_database_print_two_places() {
    let f = setup().await;
    let s1 = f.book.selections[1][0];
    let (_, token) = bettor(&f.app.db.client, dec!(0)).await;
    let (s, b) = place(&f.app, &token, &single(s1, "2.5000", "1.00", "a")).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "insufficient_funds", "{b}");
    assert_eq!(b["error"]["details"]["available"], "0.00", "{b}");
    let (user, token) = bettor(&f.app.db.client, dec!(100.00)).await;
    f.app
        .db
        .client
        .execute(
            "UPDATE user_preferences SET betting_limits = '{\"daily\": \"5\"}' WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap();
    let (s, b) = place(&f.app, &token, &single(s1, "2.5000", "6.00", "b")).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "limit_exceeded", "{b}");
    assert_eq!(b["error"]["details"]["limit"], "5.00", "{b}");
    assert_eq!(b["error"]["details"]["staked"], "0.00", "{b}");
}

#[tokio::test]
async fn account_state_and_caps_refuse_bets() {
    let f = setup().await;
    let s1 = f.book.selections[1][0];
    let m1 = f.book.markets[1];
    // A daily cap of 10.00.
    let (user, token) = bettor(&f.app.db.client, dec!(100.00)).await;
    f.app.db.client.execute(
        "UPDATE user_preferences SET betting_limits = '{\"daily\": \"10.00\"}' WHERE user_id = $1", &[&user]).await.unwrap();
    let (s, b) = place(&f.app, &token, &single(s1, "2.5000", "6.00", "a")).await;
    assert_eq!(s, 201, "{b}");
    refused(
        &f,
        user,
        &token,
        single(s1, "2.5000", "6.00", "b"),
        m1,
        "limit_exceeded",
    )
    .await;
    // A suspended account.
    let (user2, token2) = bettor(&f.app.db.client, dec!(100.00)).await;
    f.app
        .db
        .client
        .execute(
            "UPDATE users SET status = 'suspended' WHERE id = $1",
            &[&user2],
        )
        .await
        .unwrap();
    refused(
        &f,
        user2,
        &token2,
        single(s1, "2.5000", "1.00", "c"),
        m1,
        "account_restricted",
    )
    .await;
}

#[tokio::test]
async fn a_pre_match_market_refuses_bets_once_the_event_started() {
    let f = setup().await;
    let (user, token) = bettor(&f.app.db.client, dec!(100.00)).await;
    // Move the start into the past behind the engine's back, then restart the market's actor
    // by asking through a fresh engine: the registry loads the event as it is now.
    f.app
        .db
        .client
        .execute(
            "UPDATE events SET start_time = now() - interval '1 minute' WHERE id = $1",
            &[&f.book.event_id],
        )
        .await
        .unwrap();
    let app2 = restart(&f).await;
    refused_on(
        &app2,
        &f,
        user,
        &token,
        single(f.book.selections[1][0], "2.5000", "1.00", "a"),
        f.book.markets[1],
        "event_started",
    )
    .await;
}

async fn restart(f: &Fixture) -> common::TestApp {
    f.app.stop().await;
    common::spawn_app_on(&f.app.db).await
}

async fn refused_on(
    app: &common::TestApp,
    f: &Fixture,
    user: uuid::Uuid,
    token: &str,
    body: Value,
    market: uuid::Uuid,
    code: &str,
) {
    let before = footprint(app, &f.trader, user, market).await;
    let (s, b) = place(app, token, &body).await;
    assert!(s >= 400, "{code}: {s} {b}");
    assert_eq!(b["error"]["code"], code, "{b}");
    assert_eq!(before, footprint(app, &f.trader, user, market).await);
}

#[tokio::test]
async fn the_same_key_answers_the_first_bet_and_another_payload_is_a_conflict() {
    let f = setup().await;
    let (user, token) = bettor(&f.app.db.client, dec!(100.00)).await;
    let sel = f.book.selections[1][1]; // 1.5000
    let body = single(sel, "1.5000", "2.00", "same-key");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let http = f.app.http.clone();
        let url = f.app.url("/api/v1/bets");
        let (token, body) = (token.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (s, b) = t.await.unwrap();
        assert_eq!(s, 201, "{b}");
        ids.insert(b["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "one bet for one key");
    let n: i64 = f
        .app
        .db
        .client
        .query_one("SELECT count(*) FROM bets WHERE user_id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let bal: Decimal = f
        .app
        .db
        .client
        .query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(bal, dec!(98.00));
    let (s, b) = place(&f.app, &token, &single(sel, "1.5000", "3.00", "same-key")).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "idempotency_key_reused");
}

#[tokio::test]
async fn odds_change_policies_hold_at_the_boundary() {
    let f = setup().await;
    let (_, token) = bettor(&f.app.db.client, dec!(100.00)).await;
    let sel = f.book.selections[1][0]; // 2.5000
    let with = |odds: &str, policy: &str, key: &str| {
        json!({"type": "single", "stake": "1.00", "odds_change": policy, "idempotency_key": key,
               "legs": [{"selection_id": sel, "odds": odds}]})
    };
    assert_eq!(
        place(&f.app, &token, &with("2.5000", "none", "a")).await.0,
        201
    );
    assert_eq!(
        place(&f.app, &token, &with("2.4999", "none", "b")).await.0,
        409
    );
    // higher: the current price must be at least the requested one.
    assert_eq!(
        place(&f.app, &token, &with("2.5000", "higher", "c"))
            .await
            .0,
        201
    );
    let (s, b) = place(&f.app, &token, &with("2.5001", "higher", "d")).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("odds_changed")),
        "{b}"
    );
    assert_eq!(b["error"]["details"]["current_odds"], "2.5000");
    let (s, b) = place(&f.app, &token, &with("2.4000", "higher", "e")).await;
    assert_eq!(s, 201);
    assert_eq!(
        b["legs"][0]["odds"], "2.5000",
        "taken at the better current price"
    );
    let (s, b) = place(&f.app, &token, &with("9.0000", "any", "f")).await;
    assert_eq!(s, 201);
    assert_eq!(b["legs"][0]["odds"], "2.5000");
}

#[tokio::test]
async fn parlays_multiply_and_system_bets_stake_every_line() {
    let f = setup().await;
    let (user, token) = bettor(&f.app.db.client, dec!(100.00)).await;
    // A second book: legs on different events.
    let book2 = create_book(&f.app.http, &f.app.address, &f.trader).await;
    let book3 = create_book(&f.app.http, &f.app.address, &f.trader).await;
    let a = f.book.selections[1][0]; // 2.5
    let b = book2.selections[1][1]; // 1.5
    let c = book3.selections[0][0]; // 1.9091
    let parlay = json!({"type": "parlay", "stake": "10.00", "idempotency_key": "p",
        "legs": [{"selection_id": a, "odds": "2.5"}, {"selection_id": b, "odds": "1.5"}]});
    let (s, bet) = place(&f.app, &token, &parlay).await;
    assert_eq!(s, 201, "{bet}");
    assert_eq!(bet["total_odds"], "3.7500");
    assert_eq!(bet["potential_win"], "37.50");
    // 2 of 3: lines ab, ac, bc at 1.00 each = 3.00 staked.
    let system = json!({"type": "system", "stake": "1.00", "system_size": 2, "idempotency_key": "s",
        "legs": [{"selection_id": a, "odds": "2.5"}, {"selection_id": b, "odds": "1.5"},
                 {"selection_id": c, "odds": "1.9091"}]});
    let (s, bet) = place(&f.app, &token, &system).await;
    assert_eq!(s, 201, "{bet}");
    assert_eq!(bet["stake"], "3.00");
    assert_eq!(bet["metadata"]["lines"], 3);
    // 2.5*1.5 + 2.5*1.9091 + 1.5*1.9091 = 3.75 + 4.77275 + 2.86365 = 11.3864
    assert_eq!(bet["potential_win"], "11.38");
    let bal: Decimal = f
        .app
        .db
        .client
        .query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(bal, dec!(87.00));
    let legs: i64 = f.app.db.client.query_one(
        "SELECT count(*) FROM bet_selections bs JOIN bets b ON b.id = bs.bet_id WHERE b.user_id = $1", &[&user]).await.unwrap().get(0);
    assert_eq!(legs, 5);
}

#[tokio::test]
async fn stake_factor_scales_the_markets_max_stake() {
    let f = setup().await;
    let m1 = f.book.markets[1];
    let s1 = f.book.selections[1][0];
    f.trade(
        &format!("/api/v1/trading/markets/{m1}/settings"),
        json!({"max_stake": "10.00"}),
    )
    .await;
    let (user, token) = bettor(&f.app.db.client, dec!(100.00)).await;
    f.app
        .db
        .client
        .execute(
            "UPDATE users SET stake_factor = 0.5 WHERE id = $1",
            &[&user],
        )
        .await
        .unwrap();
    refused(
        &f,
        user,
        &token,
        single(s1, "2.5000", "6.00", "a"),
        m1,
        "stake_too_high",
    )
    .await;
    let (s, b) = place(&f.app, &token, &single(s1, "2.5000", "5.00", "b")).await;
    assert_eq!(s, 201, "{b}");
}

#[tokio::test]
async fn two_concurrent_bets_crossing_a_cap_let_only_one_through() {
    let f = setup().await;
    let s1 = f.book.selections[1][0];
    let (user, token) = bettor(&f.app.db.client, dec!(100.00)).await;
    f.app.db.client.execute(
        "UPDATE user_preferences SET betting_limits = '{\"weekly\": \"15.00\"}' WHERE user_id = $1", &[&user]).await.unwrap();
    let (x, y) = (
        single(s1, "2.5000", "10.00", "x"),
        single(s1, "2.5000", "10.00", "y"),
    );
    let (a, b) = tokio::join!(place(&f.app, &token, &x), place(&f.app, &token, &y));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let refusal = if a.0 == 409 { a.1 } else { b.1 };
    assert_eq!(refusal["error"]["code"], "limit_exceeded");
}

#[tokio::test]
async fn a_retry_after_the_market_changed_or_the_money_ran_out_still_answers_the_first_bet() {
    let f = setup().await;
    let (user, token) = bettor(&f.app.db.client, dec!(10.00)).await;
    let market = f.book.markets[1];
    let sel = f.book.selections[1][1]; // 1.5000
    let body = single(sel, "1.5000", "10.00", "retry-key");
    let (s, first) = place(&f.app, &token, &body).await;
    assert_eq!(s, 201, "{first}");

    // The whole balance is staked now: a retry cannot pass the funds check, yet it is the
    // same bet, so it gets the first answer, not insufficient_funds.
    let (s, again) = place(&f.app, &token, &body).await;
    assert_eq!(s, 201, "{again}");
    assert_eq!(again["id"], first["id"]);

    // Same after the market was suspended (not market_suspended), and after a restart.
    f.trade(
        &format!("/api/v1/trading/markets/{market}/suspend"),
        json!({}),
    )
    .await;
    let (s, again) = place(&f.app, &token, &body).await;
    assert_eq!(s, 201, "{again}");
    assert_eq!(again["id"], first["id"]);
    let app = restart(&f).await;
    let (s, again) = place(&app, &token, &body).await;
    assert_eq!(s, 201, "{again}");
    assert_eq!(again["id"], first["id"]);

    // A different bet under that key is still a conflict, even when it would be refused.
    let (s, b) = place(&app, &token, &single(sel, "1.5000", "5.00", "retry-key")).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "idempotency_key_reused");
    let n: i64 = app
        .db
        .client
        .query_one("SELECT count(*) FROM bets WHERE user_id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}
