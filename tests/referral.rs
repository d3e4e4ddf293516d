//! Trader referral through HTTP and WebSocket against a real server: a bet breaking a
//! referred limit answers 202 `referred` with its stake held and its liability counted;
//! the desk accepts, rejects or counters (the bettor accepts, declines, or lets it expire);
//! the desk's window passing rejects it. Each proves balances, liability, rows and a clean
//! `check-ledger`; refused actions change nothing.
mod bets_support;
mod common;
mod markets_support;
mod settle_support;
mod stream_support;

use std::time::Duration;

use bets_support::{bettor, place, single};
use markets_support::{account, create_book, patch_settings, post, selection_liability, Book};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use settle_support::{balance, bet_id, ledger_clean};
use uuid::Uuid;
use winzo::auth::Role;

struct Desk {
    app: common::TestApp,
    trader: String,
    book: Book,
    user: Uuid,
    token: String,
}

/// A book whose Over/Under market refers stakes above 20.00 (window `window_ms`), and a
/// bettor with 100.00.
async fn desk(window_ms: u64, counter_window_ms: u64) -> Desk {
    let app = common::spawn_app_with(|s| s.referral.counter_window_ms = counter_window_ms).await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &trader).await;
    let m = book.markets[1];
    let r = app
        .http
        .patch(app.url(&format!("/api/v1/trading/markets/{m}/settings")))
        .bearer_auth(&trader)
        .json(
            &json!({"max_stake": "20.00", "referral_window_ms": window_ms,
                      "referable": ["stake_too_high"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["settings"]["referral_window_ms"], window_ms, "{v}");
    assert_eq!(v["settings"]["referable"], json!(["stake_too_high"]), "{v}");
    let (user, token) = bettor(&app.db.client, dec!(100.00)).await;
    Desk {
        app,
        trader,
        book,
        user,
        token,
    }
}

impl Desk {
    fn over(&self) -> Uuid {
        self.book.selections[1][0]
    }

    /// A single of 50.00 at 2.5 on Over: referred.
    async fn refer(&self, key: &str) -> Uuid {
        let (s, b) = place(
            &self.app,
            &self.token,
            &single(self.over(), "2.5000", "50.00", key),
        )
        .await;
        assert_eq!(s, 202, "{b}");
        assert_eq!(b["status"], "referred", "{b}");
        assert_eq!(b["referral"]["reason"], "stake_too_high", "{b}");
        let bet = bet_id(&b);
        assert_eq!(
            balance(&self.app, self.user).await,
            dec!(50.00),
            "stake held"
        );
        assert_eq!(self.liability().await, (dec!(50.00), dec!(125.00)));
        assert_eq!(self.rows(bet).await.0, "referred");
        bet
    }

    async fn decide(&self, bet: Uuid, body: Value) -> (u16, Value) {
        post(
            &self.app.http,
            self.app.url(&format!("/api/v1/trading/referrals/{bet}")),
            &self.trader,
            body,
        )
        .await
    }

    async fn answer(&self, bet: Uuid, token: &str, accept: bool) -> (u16, Value) {
        post(
            &self.app.http,
            self.app.url(&format!("/api/v1/bets/{bet}/offer")),
            token,
            json!({ "accept": accept }),
        )
        .await
    }

    async fn queue(&self) -> Vec<Value> {
        let v: Value = self
            .app
            .http
            .get(self.app.url("/api/v1/trading/referrals"))
            .bearer_auth(&self.trader)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["referrals"].as_array().cloned().unwrap_or_default()
    }

    /// (stake, payout) the market counts on Over.
    async fn liability(&self) -> (Decimal, Decimal) {
        let (m, over) = (self.book.markets[1], self.over());
        selection_liability(&self.app.http, &self.app.address, &self.trader, m, over).await
    }

    async fn settings(&self, market: Uuid, body: Value) -> (u16, Value) {
        patch_settings(
            &self.app.http,
            &self.app.address,
            &self.trader,
            market,
            body,
        )
        .await
    }

    /// (bet status, stake, potential win, referral status, referral refunds booked).
    async fn rows(&self, bet: Uuid) -> (String, Decimal, Decimal, String, Decimal) {
        let r = self
            .app
            .db
            .client
            .query_one(
                "SELECT b.status::text, b.stake, b.potential_win, r.status,
                        (SELECT COALESCE(sum(amount), 0) FROM transactions
                         WHERE related_bet_id = b.id AND reference = 'referral:' || b.id::text)
                 FROM bets b JOIN bet_referrals r ON r.bet_id = b.id WHERE b.id = $1",
                &[&bet],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
    }

    /// A timer's ending commits first, then releases the book's liability (and only then
    /// tells anyone): nothing answers the test when it is done, so it waits for the book.
    async fn wait_book_released(&self) {
        common::wait_until(
            "the ended referral's liability to leave the book",
            Duration::from_secs(10),
            || async { self.liability().await == (dec!(0), dec!(0)) },
        )
        .await;
    }

    /// The bet was rejected with its referral ended as `ended`: the stake is back, the
    /// book no longer counts it, and the ledger is clean.
    async fn assert_rejected(&self, bet: Uuid, ended: &str) {
        assert_eq!(
            self.rows(bet).await,
            (
                "rejected".into(),
                dec!(50.00),
                dec!(125.00),
                ended.into(),
                dec!(50.00)
            )
        );
        assert_eq!(balance(&self.app, self.user).await, dec!(100.00));
        assert_eq!(self.liability().await, (dec!(0), dec!(0)));
        ledger_clean(&self.app).await;
    }

    /// The bet as `GET /api/v1/bets` lists it.
    async fn listed(&self, bet: Uuid) -> Value {
        bets_support::listed(&self.app, &self.token, bet).await
    }

    async fn bet(&self, bet: Uuid) -> Value {
        bets_support::get_json(&self.app, &self.token, &format!("/api/v1/bets/{bet}")).await
    }
}

#[tokio::test]
async fn accepted_by_the_desk_the_bet_stands_as_placed_and_everyone_hears_it() {
    let d = desk(30_000, 30_000).await;
    // The desk's topic and the bettor's private channel.
    let mut staff_ws = stream_support::connect(&d.app, "").await;
    stream_support::send(
        &mut staff_ws,
        json!({"op": "auth", "id": 1, "token": d.trader}),
    )
    .await;
    stream_support::next_of(&mut staff_ws, "authenticated").await;
    stream_support::send(
        &mut staff_ws,
        json!({"op": "subscribe", "id": 2, "topics": ["trading"]}),
    )
    .await;
    stream_support::next_of(&mut staff_ws, "snapshot").await;
    let mut bettor_ws = stream_support::connect(&d.app, "").await;
    stream_support::send(
        &mut bettor_ws,
        json!({"op": "auth", "id": 1, "token": d.token}),
    )
    .await;
    stream_support::next_of(&mut bettor_ws, "authenticated").await;

    let bet = d.refer("r1").await;
    let m = stream_support::next_of(&mut staff_ws, "referral").await;
    assert_eq!(m["data"]["bet_id"], bet.to_string(), "{m}");
    assert_eq!(m["data"]["status"], "pending", "{m}");
    assert_eq!(m["data"]["liability"], "75.00", "{m}");
    let m = stream_support::next_of(&mut bettor_ws, "bet").await;
    assert_eq!(m["data"]["status"], "referred", "{m}");

    let queue = d.queue().await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["bet"]["id"], bet.to_string());
    assert_eq!(queue[0]["customer"], d.user.to_string());
    assert!(queue[0]["expires_at"].is_string());
    let shown = d.bet(bet).await;
    assert_eq!(shown["status"], "referred", "{shown}");
    assert_eq!(shown["referral"]["status"], "pending", "{shown}");

    let (s, b) = d.decide(bet, json!({"decision": "accept"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "accepted", "{b}");
    assert_eq!(
        d.rows(bet).await,
        (
            "accepted".into(),
            dec!(50.00),
            dec!(125.00),
            "accepted".into(),
            dec!(0)
        )
    );
    assert_eq!(balance(&d.app, d.user).await, dec!(50.00));
    assert_eq!(d.liability().await, (dec!(50.00), dec!(125.00)));
    let m = stream_support::next_of(&mut staff_ws, "referral").await;
    assert_eq!(m["data"]["status"], "accepted", "{m}");
    let m = stream_support::next_of(&mut bettor_ws, "bet").await;
    assert_eq!(m["data"]["status"], "accepted", "{m}");
    assert!(d.queue().await.is_empty());
    let shown = d.bet(bet).await;
    assert_eq!(shown["status"], "accepted");
    assert_eq!(shown["remaining_stake"], "50.00", "{shown}");
    assert_eq!(shown["cashed_out_amount"], "0.00", "{shown}");

    // Decided once: a second decision changes nothing.
    let (s, b) = d.decide(bet, json!({"decision": "reject"})).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("referral_closed")),
        "{b}"
    );
    assert_eq!(balance(&d.app, d.user).await, dec!(50.00));
    assert_eq!(d.liability().await, (dec!(50.00), dec!(125.00)));
    ledger_clean(&d.app).await;
}

#[tokio::test]
async fn rejected_by_the_desk_the_stake_comes_back_and_the_book_forgets_it() {
    let d = desk(30_000, 30_000).await;
    let bet = d.refer("r1").await;
    let (s, b) = d.decide(bet, json!({"decision": "reject"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "rejected", "{b}");
    d.assert_rejected(bet, "rejected").await;
    assert_eq!(d.bet(bet).await["status"], "rejected");
    // A rejected bet cannot be accepted after all.
    let (s, _) = d.decide(bet, json!({"decision": "accept"})).await;
    assert_eq!(s, 409);
    assert_eq!(balance(&d.app, d.user).await, dec!(100.00));
    ledger_clean(&d.app).await;
}

#[tokio::test]
async fn a_counter_offer_taken_by_the_bettor_stands_on_its_terms() {
    let d = desk(30_000, 30_000).await;
    let mut bettor_ws = stream_support::connect(&d.app, "").await;
    stream_support::send(
        &mut bettor_ws,
        json!({"op": "auth", "id": 1, "token": d.token}),
    )
    .await;
    stream_support::next_of(&mut bettor_ws, "authenticated").await;
    let bet = d.refer("r1").await;
    let m = stream_support::next_of(&mut bettor_ws, "bet").await;
    assert_eq!(m["data"]["status"], "referred", "{m}");
    // Refusals change nothing: more than the stake asked, odds and stake on the wrong
    // decision, an unknown decision, an unknown bet, the bettor answering before a counter.
    for body in [
        json!({"decision": "counter", "stake": "60.00"}),
        json!({"decision": "counter"}),
        json!({"decision": "accept", "stake": "10.00"}),
        json!({"decision": "maybe"}),
    ] {
        let (s, b) = d.decide(bet, body.clone()).await;
        assert_eq!(s, 422, "{body}: {b}");
    }
    let (s, _) = d
        .decide(Uuid::new_v4(), json!({"decision": "accept"}))
        .await;
    assert_eq!(s, 404);
    let (s, b) = d.answer(bet, &d.token, true).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("referral_closed")),
        "{b}"
    );
    assert_eq!(d.rows(bet).await.3, "pending");
    assert_eq!(balance(&d.app, d.user).await, dec!(50.00));

    let (s, b) = d
        .decide(
            bet,
            json!({"decision": "counter", "stake": "20.00", "odds": "2.2000"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "countered", "{b}");
    assert_eq!(b["counter_stake"], "20.00", "{b}");
    assert!(b["counter_expires_at"].is_string(), "{b}");
    assert_eq!(
        d.liability().await,
        (dec!(50.00), dec!(125.00)),
        "held as asked meanwhile"
    );
    let shown = d.bet(bet).await;
    assert_eq!(shown["referral"]["status"], "countered", "{shown}");
    // The bettor hears of the counter-offer on their private channel, with its terms.
    let m = stream_support::next_of(&mut bettor_ws, "bet").await;
    assert_eq!(m["data"]["id"], bet.to_string(), "{m}");
    assert_eq!(m["data"]["referral"]["status"], "countered", "{m}");
    assert_eq!(m["data"]["referral"]["counter_stake"], "20.00", "{m}");
    // The list shows the same referral state as the bet itself.
    let listed = d.listed(bet).await;
    assert_eq!(listed["referral"], shown["referral"], "{listed}");
    assert_eq!(listed["referral"]["counter_stake"], "20.00", "{listed}");
    assert_eq!(
        listed["remaining_stake"], shown["remaining_stake"],
        "{listed}"
    );

    // Someone else's bet is not theirs to answer.
    let (_, other) = bettor(&d.app.db.client, dec!(1.00)).await;
    let (s, _) = d.answer(bet, &other, true).await;
    assert_eq!(s, 404);

    let (s, b) = d.answer(bet, &d.token, true).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "accepted", "{b}");
    assert_eq!(b["stake"], "20.00", "{b}");
    assert_eq!(b["potential_win"], "44.00", "{b}");
    assert_eq!(
        d.rows(bet).await,
        (
            "accepted".into(),
            dec!(20.00),
            dec!(44.00),
            "accepted".into(),
            dec!(30.00)
        )
    );
    let odds: Decimal = d
        .app
        .db
        .client
        .query_one("SELECT odds FROM bet_selections WHERE bet_id = $1", &[&bet])
        .await
        .unwrap()
        .get(0);
    assert_eq!(odds, dec!(2.2000));
    assert_eq!(balance(&d.app, d.user).await, dec!(80.00));
    assert_eq!(d.liability().await, (dec!(20.00), dec!(44.00)));
    // Answered once.
    let (s, _) = d.answer(bet, &d.token, false).await;
    assert_eq!(s, 409);
    assert_eq!(balance(&d.app, d.user).await, dec!(80.00));
    ledger_clean(&d.app).await;
}

#[tokio::test]
async fn a_counter_offer_declined_rejects_the_bet() {
    let d = desk(30_000, 30_000).await;
    let bet = d.refer("r1").await;
    let (s, b) = d
        .decide(bet, json!({"decision": "counter", "stake": "20.00"}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = d.answer(bet, &d.token, false).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "rejected", "{b}");
    d.assert_rejected(bet, "declined").await;
    ledger_clean(&d.app).await;
}

#[tokio::test]
async fn a_counter_offer_left_unanswered_expires_and_rejects_the_bet() {
    let d = desk(30_000, 500).await;
    let bet = d.refer("r1").await;
    let (s, b) = d
        .decide(bet, json!({"decision": "counter", "stake": "20.00"}))
        .await;
    assert_eq!(s, 200, "{b}");
    common::wait_until(
        "the counter-offer to expire",
        Duration::from_secs(10),
        || async { d.rows(bet).await.0 == "rejected" },
    )
    .await;
    d.wait_book_released().await;
    d.assert_rejected(bet, "counter_expired").await;
    // Too late to take it.
    let (s, _) = d.answer(bet, &d.token, true).await;
    assert_eq!(s, 409);
    assert_eq!(balance(&d.app, d.user).await, dec!(100.00));
    ledger_clean(&d.app).await;
}

#[tokio::test]
async fn no_answer_from_the_desk_in_its_window_rejects_the_bet() {
    let d = desk(500, 30_000).await;
    let bet = d.refer("r1").await;
    common::wait_until(
        "the desk's window to pass",
        Duration::from_secs(10),
        || async { d.rows(bet).await.0 == "rejected" },
    )
    .await;
    d.wait_book_released().await;
    d.assert_rejected(bet, "expired").await;
    let (s, _) = d.decide(bet, json!({"decision": "accept"})).await;
    assert_eq!(s, 409);
    assert!(d.queue().await.is_empty());
    ledger_clean(&d.app).await;
}

#[tokio::test]
async fn without_referral_or_for_a_refusal_not_referred_nothing_is_held() {
    let d = desk(30_000, 30_000).await;
    // Odds moved: refused as always, nothing written.
    let (s, b) = place(&d.app, &d.token, &single(d.over(), "9.0000", "50.00", "x1")).await;
    assert_eq!(s, 409, "{b}");
    // The other market does not refer: stake_too_high is answered.
    let m = d.book.markets[0];
    let (s, b) = d.settings(m, json!({"max_stake": "20.00"})).await;
    assert_eq!(s, 200, "{b}");
    let sel = d.book.selections[0][0];
    let odds: Decimal = d
        .app
        .db
        .client
        .query_one("SELECT odds FROM selections WHERE id = $1", &[&sel])
        .await
        .unwrap()
        .get(0);
    let (s, b) = place(
        &d.app,
        &d.token,
        &single(sel, &odds.to_string(), "50.00", "x2"),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("stake_too_high")),
        "{b}"
    );
    // A bad referral setting is refused.
    let (s, b) = d.settings(m, json!({"referable": ["odds_changed"]})).await;
    assert_eq!(s, 422, "{b}");
    // Bettors do not see the desk's queue.
    let r = d
        .app
        .http
        .get(d.app.url("/api/v1/trading/referrals"))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(balance(&d.app, d.user).await, dec!(100.00));
    let n: i64 = d
        .app
        .db
        .client
        .query_one("SELECT count(*) FROM bets WHERE user_id = $1", &[&d.user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    ledger_clean(&d.app).await;
}
