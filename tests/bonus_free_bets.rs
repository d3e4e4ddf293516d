//! Bonus money and free bets, issue 17, through the HTTP API against real Postgres and
//! Redis: grants, stakes funded cash first or bonus first (the bet records the split),
//! winnings of bonus stakes back to bonus money, wagering counted at settlement for
//! qualifying bets only, conversion to cash when met, retraction at expiry, free bets
//! spent whole and paid winnings only, restored by a void, resettlement exact, every
//! refusal changing nothing, and `winzo check-ledger` clean afterwards.
mod bets_support;
mod common;
mod markets_support;
mod settle_support;

use std::time::Duration;

use bets_support::{bettor, place, single};
use markets_support::account;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use settle_support::*;
use uuid::Uuid;
use winzo::auth::Role;

fn three(sels: &[Uuid], r: [&str; 3]) -> Value {
    results(&[
        (sels[0], r[0], None, None),
        (sels[1], r[1], None, None),
        (sels[2], r[2], None, None),
    ])
}

fn in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339()
}

async fn get_auth(app: &common::TestApp, path: &str, token: &str) -> (u16, Value) {
    let r = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn grant_bonus(app: &common::TestApp, trader: &str, user: Uuid, body: Value) -> (u16, Value) {
    markets_support::post(
        &app.http,
        app.url(&format!("/api/v1/trading/users/{user}/bonuses")),
        trader,
        body,
    )
    .await
}

async fn grant_free_bet(
    app: &common::TestApp,
    trader: &str,
    user: Uuid,
    stake: &str,
    min_odds: &str,
    expires_at: &str,
) -> Uuid {
    let (s, b) = markets_support::post(
        &app.http,
        app.url(&format!("/api/v1/trading/users/{user}/free-bets")),
        trader,
        json!({"stake": stake, "min_odds": min_odds, "expires_at": expires_at,
               "idempotency_key": Uuid::new_v4().to_string()}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_str().unwrap().parse().unwrap()
}

fn bonus_body(amount: &str, multiplier: i32, min_odds: &str, expires_at: &str) -> Value {
    json!({"amount": amount, "wagering_multiplier": multiplier, "min_odds": min_odds,
           "expires_at": expires_at, "idempotency_key": Uuid::new_v4().to_string()})
}

/// Cash, bonus money, bets, transactions, bonuses and free bets available: what a refusal
/// must leave as it was.
async fn footprint(app: &common::TestApp, user: Uuid) -> Vec<String> {
    let r = app
        .db
        .client
        .query_one(
            "SELECT (SELECT balance::text || '/' || bonus_balance::text FROM user_balances
                     WHERE user_id = $1),
                    (SELECT count(*) FROM bets WHERE user_id = $1)::text,
                    (SELECT count(*) FROM transactions WHERE user_id = $1)::text,
                    (SELECT count(*) FROM bonuses WHERE user_id = $1)::text,
                    (SELECT string_agg(status || ':' || COALESCE(bet_id::text, ''), ',' ORDER BY id)
                     FROM free_bets WHERE user_id = $1)",
            &[&user],
        )
        .await
        .unwrap();
    (0..5)
        .map(|i| r.get::<_, Option<String>>(i).unwrap_or_default())
        .collect()
}

async fn balances(app: &common::TestApp, user: Uuid) -> (Decimal, Decimal) {
    let r = app
        .db
        .client
        .query_one(
            "SELECT balance, bonus_balance FROM user_balances WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

async fn bet_funding(app: &common::TestApp, bet: Uuid) -> (Decimal, Option<Uuid>, Decimal) {
    let r = app
        .db
        .client
        .query_one(
            "SELECT bonus_stake, free_bet_id, bonus_win FROM bets WHERE id = $1",
            &[&bet],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

async fn bonus_state(app: &common::TestApp, user: Uuid) -> (String, Decimal) {
    let r = app
        .db
        .client
        .query_one(
            "SELECT status, wagering_progress FROM bonuses WHERE user_id = $1
             ORDER BY created_at DESC LIMIT 1",
            &[&user],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

async fn free_bet_status(app: &common::TestApp, token: Uuid) -> String {
    app.db
        .client
        .query_one("SELECT status FROM free_bets WHERE id = $1", &[&token])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn cash_first_then_bonus_a_win_returns_bonus_money_and_a_met_requirement_converts() {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let (user, token) = bettor(&app.db.client, dec!(10.00)).await;
    let grant = bonus_body("20.00", 1, "2.0000", &in_days(7));
    let (s, b) = grant_bonus(&app, &trader, user, grant.clone()).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["status"], "active");
    assert_eq!(b["wagering_required"], "20.00");
    assert_eq!(balances(&app, user).await, (dec!(10.00), dec!(20.00)));
    // The same key and payload answers the first grant (nothing credited twice); the same
    // key with another payload is refused.
    let (s, first) = grant_bonus(&app, &trader, user, grant.clone()).await;
    assert_eq!((s, &first["id"]), (200, &b["id"]), "{first}");
    let mut other = grant.clone();
    other["amount"] = json!("30.00");
    let (s, r) = grant_bonus(&app, &trader, user, other).await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (409, Some("idempotency_key_reused")),
        "{r}"
    );
    assert_eq!(balances(&app, user).await, (dec!(10.00), dec!(20.00)));

    let (s, me) = get_auth(&app, "/api/v1/me/bonuses", &token).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["bonus_balance"], "20.00");
    assert_eq!(me["bonuses"][0]["wagering_progress"], "0.00");

    let bk = book(&app, &trader).await;
    let (m, t) = (bk.markets[1], &bk.selections[1]);
    // 25.00 at 2.5: 10.00 cash, then 15.00 bonus.
    let (s, bet) = place(&app, &token, &single(t[0], "2.5000", "25.00", "b1")).await;
    assert_eq!(s, 201, "{bet}");
    let bet = bet_id(&bet);
    assert_eq!(bet_funding(&app, bet).await, (dec!(15.00), None, dec!(0)));
    assert_eq!(balances(&app, user).await, (dec!(0.00), dec!(5.00)));
    settle_ok(
        &app,
        &trader,
        m,
        "settle",
        three(t, ["win", "loss", "loss"]),
    )
    .await;
    // 62.50 paid: 15/25 of it (37.50) to bonus money, 25.00 to cash; 25.00 wagered of
    // 20.00 required: the bonus money (5.00 + 37.50) moves to cash.
    assert_eq!(
        bet_row(&app, bet).await,
        ("settled_win".into(), dec!(62.50))
    );
    assert_eq!(bet_funding(&app, bet).await.2, dec!(37.50));
    assert_eq!(
        bonus_state(&app, user).await,
        ("completed".into(), dec!(25.00))
    );
    assert_eq!(balances(&app, user).await, (dec!(67.50), dec!(0.00)));
    let refs = support_refs(&app, user).await;
    for r in [
        "bonus:grant:",
        "bonus:stake:",
        "bonus:settle:",
        "bonus:convert:",
        "bonus-cash:",
    ] {
        assert!(refs.iter().any(|x| x.starts_with(r)), "{r} in {refs:?}");
    }
    // A resettlement to a loss takes the payout back exactly (the bonus part from cash now
    // that the bonus money was converted; nothing goes negative).
    settle_ok(
        &app,
        &trader,
        m,
        "resettle",
        three(t, ["loss", "win", "loss"]),
    )
    .await;
    assert_eq!(bet_row(&app, bet).await, ("settled_loss".into(), dec!(0)));
    assert_eq!(balances(&app, user).await, (dec!(5.00), dec!(0.00)));
    ledger_clean(&app).await;
}

async fn support_refs(app: &common::TestApp, user: Uuid) -> Vec<String> {
    app.db
        .client
        .query(
            "SELECT reference FROM transactions WHERE user_id = $1 AND reference IS NOT NULL",
            &[&user],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn bonus_funding_wagering_counts_only_qualifying_settled_bets_and_expiry_retracts() {
    let app = common::spawn_app_with(|s| s.bonus.expiry_interval_ms = 100).await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let (user, token) = bettor(&app.db.client, dec!(100.00)).await;
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(6)).to_rfc3339();
    let (s, b) = grant_bonus(
        &app,
        &trader,
        user,
        bonus_body("20.00", 10, "2.0000", &expires),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let bk = book(&app, &trader).await;
    let (m, t) = (bk.markets[1], &bk.selections[1]);
    // Bonus first: 10.00 all from bonus money.
    let mut body = single(t[0], "2.5000", "10.00", "q1");
    body["funding"] = json!("bonus");
    let (s, q1) = place(&app, &token, &body).await;
    assert_eq!(s, 201, "{q1}");
    let q1 = bet_id(&q1);
    assert_eq!(bet_funding(&app, q1).await.0, dec!(10.00));
    // A cash bet below the minimum odds is taken but does not count.
    let (s, low) = place(&app, &token, &single(t[1], "1.5000", "10.00", "q2")).await;
    assert_eq!(s, 201, "{low}");
    // Another qualifying cash bet, voided before settlement: never counts.
    let b2 = book(&app, &trader).await;
    let (s, v) = place(
        &app,
        &token,
        &single(b2.selections[1][0], "2.5000", "5.00", "q3"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let v = bet_id(&v);
    assert_eq!(balances(&app, user).await, (dec!(85.00), dec!(10.00)));
    let (s, body) = markets_support::post(
        &app.http,
        app.url(&format!("/api/v1/trading/bets/{v}/void")),
        &trader,
        json!({"reason": "palpable error"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    settle_ok(
        &app,
        &trader,
        m,
        "settle",
        three(t, ["win", "loss", "loss"]),
    )
    .await;
    // The bonus-funded win (25.00) goes back to bonus money; 10.00 wagered of 200.00.
    assert_eq!(balances(&app, user).await, (dec!(90.00), dec!(35.00)));
    assert_eq!(
        bonus_state(&app, user).await,
        ("active".into(), dec!(10.00))
    );
    ledger_clean(&app).await;
    // At expiry the remainder is retracted by the maintenance timer.
    common::wait_until("bonus expired", Duration::from_secs(20), || async {
        bonus_state(&app, user).await.0 == "expired"
    })
    .await;
    assert_eq!(balances(&app, user).await, (dec!(90.00), dec!(0.00)));
    assert!(support_refs(&app, user)
        .await
        .iter()
        .any(|r| r.starts_with("bonus:expire:")));
    ledger_clean(&app).await;
}

#[tokio::test]
async fn a_free_bet_is_spent_whole_pays_only_winnings_and_a_void_restores_it() {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let (user, token) = bettor(&app.db.client, dec!(50.00)).await;
    let fb = grant_free_bet(&app, &trader, user, "10.00", "2.0000", &in_days(3)).await;
    let (_, me) = get_auth(&app, "/api/v1/me/bonuses", &token).await;
    assert_eq!(me["free_bets"][0]["status"], "available", "{me}");
    let bk = book(&app, &trader).await;
    let (m, t) = (bk.markets[1], &bk.selections[1]);
    let mut body = single(t[0], "2.5000", "10.00", "f1");
    body["free_bet_id"] = json!(fb);
    let (s, bet) = place(&app, &token, &body).await;
    assert_eq!(s, 201, "{bet}");
    let bet = bet_id(&bet);
    assert_eq!(balances(&app, user).await, (dec!(50.00), dec!(0.00)));
    assert_eq!(free_bet_status(&app, fb).await, "spent");
    assert_eq!(bet_funding(&app, bet).await.1, Some(fb));
    settle_ok(
        &app,
        &trader,
        m,
        "settle",
        three(t, ["win", "loss", "loss"]),
    )
    .await;
    // 25.00 gross: only the 15.00 of winnings is paid.
    assert_eq!(
        bet_row(&app, bet).await,
        ("settled_win".into(), dec!(15.00))
    );
    assert_eq!(balances(&app, user).await, (dec!(65.00), dec!(0.00)));
    // Resettled to a loss: the 15.00 comes back, never a stake that was not paid.
    settle_ok(
        &app,
        &trader,
        m,
        "resettle",
        three(t, ["loss", "win", "loss"]),
    )
    .await;
    assert_eq!(balances(&app, user).await, (dec!(50.00), dec!(0.00)));
    ledger_clean(&app).await;

    // A voided free bet gives the token back, which can be spent again.
    let fb2 = grant_free_bet(&app, &trader, user, "5.00", "1.5000", &in_days(3)).await;
    let b2 = book(&app, &trader).await;
    let mut body = single(b2.selections[0][0], "1.9091", "5.00", "f2");
    body["free_bet_id"] = json!(fb2);
    let (s, v) = place(&app, &token, &body).await;
    assert_eq!(s, 201, "{v}");
    let v = bet_id(&v);
    let (s, r) = markets_support::post(
        &app.http,
        app.url(&format!("/api/v1/trading/bets/{v}/void")),
        &trader,
        json!({"reason": "palpable error"}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(bet_row(&app, v).await, ("voided".into(), dec!(0)));
    assert_eq!(free_bet_status(&app, fb2).await, "available");
    assert_eq!(balances(&app, user).await, (dec!(50.00), dec!(0.00)));
    body["idempotency_key"] = json!("f3");
    let (s, again) = place(&app, &token, &body).await;
    assert_eq!(s, 201, "{again}");
    ledger_clean(&app).await;
}

#[tokio::test]
async fn every_refusal_changes_nothing() {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let (user, token) = bettor(&app.db.client, dec!(50.00)).await;
    let (other, other_token) = bettor(&app.db.client, dec!(50.00)).await;
    let bk = book(&app, &trader).await;
    let t = &bk.selections[1];

    // bonus_not_eligible: bonus funding without a bonus.
    let before = footprint(&app, user).await;
    let mut body = single(t[0], "2.5000", "5.00", "r1");
    body["funding"] = json!("bonus");
    let (s, r) = place(&app, &token, &body).await;
    assert_eq!(s, 409, "{r}");
    assert_eq!(r["error"]["code"], "bonus_not_eligible");
    assert_eq!(footprint(&app, user).await, before);

    // bonus_not_eligible: a leg below the bonus's minimum odds.
    let (s, b) = grant_bonus(
        &app,
        &trader,
        user,
        bonus_body("10.00", 5, "2.0000", &in_days(7)),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let before = footprint(&app, user).await;
    let mut body = single(t[1], "1.5000", "5.00", "r2");
    body["funding"] = json!("bonus");
    let (s, r) = place(&app, &token, &body).await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (409, Some("bonus_not_eligible")),
        "{r}"
    );
    assert_eq!(footprint(&app, user).await, before);

    // bonus_not_eligible: a second grant while one is active.
    let (s, r) = grant_bonus(
        &app,
        &trader,
        user,
        bonus_body("10.00", 5, "2.0000", &in_days(7)),
    )
    .await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (409, Some("bonus_not_eligible")),
        "{r}"
    );
    assert_eq!(footprint(&app, user).await, before);

    // free_bet_not_eligible: another user's, below its minimum odds, the wrong stake,
    // expired, spent.
    let fb = grant_free_bet(&app, &trader, user, "10.00", "2.0000", &in_days(3)).await;
    let cases = [
        (other, other_token.as_str(), t[0], "2.5000", "10.00"),
        (user, token.as_str(), t[1], "1.5000", "10.00"),
        (user, token.as_str(), t[0], "2.5000", "9.00"),
    ];
    for (i, (who, tok, sel, odds, stake)) in cases.into_iter().enumerate() {
        let before = footprint(&app, who).await;
        let mut body = single(sel, odds, stake, &format!("fb{i}"));
        body["free_bet_id"] = json!(fb);
        let (s, r) = place(&app, tok, &body).await;
        assert_eq!(
            (s, r["error"]["code"].as_str()),
            (409, Some("free_bet_not_eligible")),
            "{r}"
        );
        assert_eq!(footprint(&app, who).await, before, "case {i}");
    }
    let mut body = single(t[0], "2.5000", "10.00", "spend");
    body["free_bet_id"] = json!(fb);
    let (s, r) = place(&app, &token, &body).await;
    assert_eq!(s, 201, "{r}");
    let before = footprint(&app, user).await;
    body["idempotency_key"] = json!("spend-again");
    let (s, r) = place(&app, &token, &body).await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (409, Some("free_bet_not_eligible")),
        "{r}"
    );
    assert_eq!(footprint(&app, user).await, before);
    // Expired: the expiry is past (set in the database, as time passing would).
    let fb2 = grant_free_bet(&app, &trader, user, "10.00", "2.0000", &in_days(3)).await;
    app.db
        .client
        .execute(
            "UPDATE free_bets SET expires_at = now() - interval '1 second' WHERE id = $1",
            &[&fb2],
        )
        .await
        .unwrap();
    let before = footprint(&app, user).await;
    let mut body = single(t[0], "2.5000", "10.00", "exp");
    body["free_bet_id"] = json!(fb2);
    let (s, r) = place(&app, &token, &body).await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (409, Some("free_bet_not_eligible")),
        "{r}"
    );
    assert_eq!(footprint(&app, user).await, before);
    ledger_clean(&app).await;
}
