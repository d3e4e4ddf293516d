//! Corrections: resettle win→loss and loss→win, resettle to the same results (nothing
//! changes), void after settlement, a trader's void of one bet, a debt instead of an
//! overdraft, past-posting, and a cancelled event voiding its markets.
mod bets_support;
mod common;
mod markets_support;
mod settle_support;

use bets_support::{bettor, place, single};
use markets_support::account;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use settle_support::*;
use uuid::Uuid;
use winzo::auth::Role;

fn three(t: &[Uuid], r: [&'static str; 3]) -> serde_json::Value {
    results(&[
        (t[0], r[0], None, None),
        (t[1], r[1], None, None),
        (t[2], r[2], None, None),
    ])
}

async fn tx_count(app: &common::TestApp, user: Uuid) -> i64 {
    app.db
        .client
        .query_one(
            "SELECT count(*) FROM transactions WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn resettlement_reverses_and_rebooks_and_the_same_results_change_nothing() {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let (user, token) = bettor(&app.db.client, dec!(100.00)).await;
    let b = book(&app, &trader).await;
    let (m, t) = (b.markets[1], &b.selections[1]);
    let (_, over) = place(&app, &token, &single(t[0], "2.5000", "10.00", "o")).await;
    let (_, under) = place(&app, &token, &single(t[1], "1.5000", "10.00", "u")).await;
    let (over, under) = (bet_id(&over), bet_id(&under));
    settle_ok(
        &app,
        &trader,
        m,
        "settle",
        three(t, ["win", "loss", "loss"]),
    )
    .await;
    assert_eq!(balance(&app, user).await, dec!(105.00));
    // The same results again: no change, nothing booked.
    let txs = tx_count(&app, user).await;
    let again = settle_ok(
        &app,
        &trader,
        m,
        "settle",
        three(t, ["win", "loss", "loss"]),
    )
    .await;
    assert_eq!(again["changed"], false);
    let same = settle_ok(
        &app,
        &trader,
        m,
        "resettle",
        three(t, ["win", "loss", "loss"]),
    )
    .await;
    assert_eq!(same["changed"], false);
    assert_eq!(tx_count(&app, user).await, txs);
    // Different results with settle: use resettle.
    let (s, body) = trade(
        &app,
        &trader,
        m,
        "settle",
        three(t, ["loss", "win", "loss"]),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("already_settled"))
    );
    // win→loss for Over, loss→win for Under.
    let r = settle_ok(
        &app,
        &trader,
        m,
        "resettle",
        three(t, ["loss", "win", "loss"]),
    )
    .await;
    assert_eq!(r["settlement"]["version"], 2);
    assert_eq!(bet_row(&app, over).await, ("settled_loss".into(), dec!(0)));
    assert_eq!(
        bet_row(&app, under).await,
        ("settled_win".into(), dec!(15.00))
    );
    assert_eq!(balance(&app, user).await, dec!(95.00));
    // The history keeps both: the first credit, its reversal, the new credit.
    let kinds: Vec<String> = app
        .db
        .client
        .query(
            "SELECT type::text || ':' || amount::text FROM transactions
                WHERE related_bet_id = $1 ORDER BY created_at, reference",
            &[&over],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        kinds,
        ["bet_debit:-10.00", "bet_credit:25.00", "adjustment:-25.00"]
    );
    ledger_clean(&app).await;
}

#[tokio::test]
async fn void_after_settlement_refunds_every_stake_and_a_trader_can_void_one_bet() {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let (user, token) = bettor(&app.db.client, dec!(100.00)).await;
    let b = book(&app, &trader).await;
    let (m, t) = (b.markets[1], &b.selections[1]);
    let (_, over) = place(&app, &token, &single(t[0], "2.5000", "10.00", "o")).await;
    let (_, under) = place(&app, &token, &single(t[1], "1.5000", "10.00", "u")).await;
    let (over, under) = (bet_id(&over), bet_id(&under));
    settle_ok(
        &app,
        &trader,
        m,
        "settle",
        three(t, ["win", "loss", "loss"]),
    )
    .await;
    let (s, body) = trade(&app, &trader, m, "void", json!({"reason": "wrong fixture"})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(bet_row(&app, over).await, ("voided".into(), dec!(10.00)));
    assert_eq!(bet_row(&app, under).await, ("voided".into(), dec!(10.00)));
    assert_eq!(balance(&app, user).await, dec!(100.00));
    let (s, _) = trade(
        &app,
        &trader,
        m,
        "resettle",
        three(t, ["win", "loss", "loss"]),
    )
    .await;
    assert_eq!(s, 409);

    // A trader voids one open bet on another market.
    let b2 = book(&app, &trader).await;
    let (_, bet) = place(
        &app,
        &token,
        &single(b2.selections[0][0], "1.9091", "20.00", "x"),
    )
    .await;
    let bet = bet_id(&bet);
    assert_eq!(balance(&app, user).await, dec!(80.00));
    let (s, body) = markets_support::post(
        &app.http,
        app.url(&format!("/api/v1/trading/bets/{bet}/void")),
        &trader,
        json!({"reason": "palpable error"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(balance(&app, user).await, dec!(100.00));
    let reason: Option<String> = app
        .db
        .client
        .query_one("SELECT void_reason FROM bets WHERE id = $1", &[&bet])
        .await
        .unwrap()
        .get(0);
    assert_eq!(reason.as_deref(), Some("palpable error"));
    let (s, _) = markets_support::post(
        &app.http,
        app.url(&format!("/api/v1/trading/bets/{bet}/void")),
        &trader,
        json!({"reason": "again"}),
    )
    .await;
    assert_eq!(s, 409);
    // Settling that market later leaves the voided bet alone.
    let t2 = &b2.selections[0];
    settle_ok(
        &app,
        &trader,
        b2.markets[0],
        "settle",
        results(&[(t2[0], "win", None, None), (t2[1], "loss", None, None)]),
    )
    .await;
    assert_eq!(bet_row(&app, bet).await, ("voided".into(), dec!(20.00)));
    ledger_clean(&app).await;
}

#[tokio::test]
async fn a_resettlement_the_balance_cannot_cover_becomes_a_debt_not_an_overdraft() {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let (user, token) = bettor(&app.db.client, dec!(10.00)).await;
    let b = book(&app, &trader).await;
    let (m, t) = (b.markets[1], &b.selections[1]);
    let (_, over) = place(&app, &token, &single(t[0], "2.5000", "10.00", "o")).await;
    settle_ok(
        &app,
        &trader,
        m,
        "settle",
        three(t, ["win", "loss", "loss"]),
    )
    .await;
    assert_eq!(balance(&app, user).await, dec!(25.00));
    // The winnings are staked elsewhere (held money a correction cannot take).
    let b2 = book(&app, &trader).await;
    let (s, _) = place(
        &app,
        &token,
        &single(b2.selections[0][0], "1.9091", "20.00", "y"),
    )
    .await;
    assert_eq!(s, 201);
    settle_ok(
        &app,
        &trader,
        m,
        "resettle",
        three(t, ["loss", "win", "loss"]),
    )
    .await;
    assert_eq!(balance(&app, user).await, dec!(0.00));
    assert_eq!(
        bet_row(&app, bet_id(&over)).await,
        ("settled_loss".into(), dec!(0))
    );
    let row = app
        .db
        .client
        .query_one(
            "SELECT u.debt_flag, (SELECT sum(amount) FROM user_debts WHERE user_id = u.id)
                    FROM users u WHERE u.id = $1",
            &[&user],
        )
        .await
        .unwrap();
    let (flag, owed): (bool, Decimal) = (row.get(0), row.get(1));
    assert!(flag);
    assert_eq!(owed, dec!(20.00));
    ledger_clean(&app).await;
}

#[tokio::test]
async fn bets_placed_after_void_after_are_refunded_and_a_cancelled_event_voids_its_markets() {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let (user, token) = bettor(&app.db.client, dec!(100.00)).await;
    let b = book(&app, &trader).await;
    let (m, t) = (b.markets[1], &b.selections[1]);
    let (_, early) = place(&app, &token, &single(t[0], "2.5000", "10.00", "e")).await;
    // `void_after` splits bets by their stored `placed_at` (microseconds): note the time once
    // the clock is past the early bet's stamp, and place the late bet once it is past that.
    let micros = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
    let early_at: chrono::DateTime<chrono::Utc> = app
        .db
        .client
        .query_one(
            "SELECT placed_at FROM bets WHERE id = $1",
            &[&bet_id(&early)],
        )
        .await
        .unwrap()
        .get(0);
    let deadline = std::time::Duration::from_secs(10);
    common::wait_until(
        "the clock to pass the early bet's placed_at",
        deadline,
        || async { micros(chrono::Utc::now()) > micros(early_at) },
    )
    .await;
    let known = chrono::Utc::now();
    common::wait_until("the clock to pass the noted time", deadline, || async {
        micros(chrono::Utc::now()) > micros(known)
    })
    .await;
    let (_, late) = place(&app, &token, &single(t[0], "2.5000", "10.00", "l")).await;
    let mut body = three(t, ["win", "loss", "loss"]);
    body["void_after"] = json!(known);
    settle_ok(&app, &trader, m, "settle", body).await;
    assert_eq!(
        bet_row(&app, bet_id(&early)).await,
        ("settled_win".into(), dec!(25.00))
    );
    assert_eq!(
        bet_row(&app, bet_id(&late)).await,
        ("settled_push".into(), dec!(10.00))
    );
    assert_eq!(balance(&app, user).await, dec!(115.00));

    // Cancelling the event voids its other market (the moneyline) and refunds it.
    let (_, ml) = place(
        &app,
        &token,
        &single(b.selections[0][0], "1.9091", "10.00", "m"),
    )
    .await;
    let (s, body) = markets_support::post(
        &app.http,
        app.url(&format!("/api/v1/trading/events/{}/status", b.event_id)),
        &trader,
        json!({"status": "cancelled"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    // The void runs in the background: wait for it.
    common::wait_until(
        "the cancelled event's bet to be voided",
        std::time::Duration::from_secs(10),
        || async { bet_row(&app, bet_id(&ml)).await.0 == "voided" },
    )
    .await;
    assert_eq!(
        bet_row(&app, bet_id(&ml)).await,
        ("voided".into(), dec!(10.00))
    );
    let status: String = app
        .db
        .client
        .query_one(
            "SELECT status::text FROM markets WHERE id = $1",
            &[&b.markets[0]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "voided");
    ledger_clean(&app).await;
}

/// (stake, payout) of one selection in GET /trading/markets/{id}/liability.
async fn live_liability(
    app: &common::TestApp,
    trader: &str,
    market: Uuid,
    selection: Uuid,
) -> (Decimal, Decimal) {
    let r = app
        .http
        .get(app.url(&format!("/api/v1/trading/markets/{market}/liability")))
        .bearer_auth(trader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let sel = v["selections"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| x["selection_id"] == selection.to_string())
        })
        .unwrap_or_else(|| panic!("no selection {selection} in {v}"));
    let num = |k: &str| sel[k].as_str().unwrap().parse::<Decimal>().unwrap();
    (num("stake"), num("payout"))
}

#[tokio::test]
async fn voiding_one_open_bet_drops_it_from_the_live_liability_of_each_of_its_markets() {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let (_, token) = bettor(&app.db.client, dec!(100.00)).await;
    let (b1, b2) = (book(&app, &trader).await, book(&app, &trader).await);
    let (m1, over) = (b1.markets[1], b1.selections[1][0]);
    let (m2, home) = (b2.markets[0], b2.selections[0][0]);
    let (s, kept) = place(&app, &token, &single(over, "2.5000", "10.00", "kept")).await;
    assert_eq!(s, 201, "{kept}");
    let (s, gone) = place(&app, &token, &single(over, "2.5000", "4.00", "gone")).await;
    assert_eq!(s, 201, "{gone}");
    let parlay = json!({"type": "parlay", "stake": "2.00", "idempotency_key": "p",
        "legs": [{"selection_id": over, "odds": "2.5000"}, {"selection_id": home, "odds": "1.9091"}]});
    let (s, parlay) = place(&app, &token, &parlay).await;
    assert_eq!(s, 201, "{parlay}");
    let parlay_win: Decimal = parlay["potential_win"].as_str().unwrap().parse().unwrap();
    let expected_over = (dec!(16.00), dec!(35.00) + parlay_win);
    assert_eq!(live_liability(&app, &trader, m1, over).await, expected_over);
    assert_eq!(
        live_liability(&app, &trader, m2, home).await,
        (dec!(2.00), parlay_win)
    );
    for bet in [bet_id(&gone), bet_id(&parlay)] {
        let (s, body) = markets_support::post(
            &app.http,
            app.url(&format!("/api/v1/trading/bets/{bet}/void")),
            &trader,
            json!({"reason": "palpable error"}),
        )
        .await;
        assert_eq!(s, 200, "{body}");
    }
    // At once, without a restart: only the kept single remains.
    assert_eq!(
        live_liability(&app, &trader, m1, over).await,
        (dec!(10.00), dec!(25.00))
    );
    assert_eq!(
        live_liability(&app, &trader, m2, home).await,
        (dec!(0), dec!(0))
    );
    ledger_clean(&app).await;
}
