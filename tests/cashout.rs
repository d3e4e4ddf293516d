//! Cash-out through HTTP against a real server: offers at boundary prices, partial then full
//! cash-out, the in-play delay racing a price move and a suspension, automatic cash-out
//! firing once, settlement of a partly cashed-out bet. Each proves balances, liability and
//! rows, and that `check-ledger` stays clean.
mod bets_support;
mod common;
mod markets_support;
mod settle_support;

use std::sync::Arc;
use std::time::Duration;

use bets_support::{bettor, go_live, place, single};
use markets_support::{account, create_book, get_auth, post, Book};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use settle_support::{balance, bet_id, bet_row, ledger_clean, results, settle_ok};
use uuid::Uuid;
use winzo::auth::Role;

struct Setup {
    app: Arc<common::TestApp>,
    trader: String,
    book: Book,
    user: Uuid,
    token: String,
}

/// A book, a bettor with 50.00 and a single of 10.00 on Over at 2.5 (balance 40.00).
async fn with_bet(delay_ms: Option<u64>) -> (Setup, Uuid) {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &trader).await;
    let (user, token) = bettor(&app.db.client, dec!(50.00)).await;
    let (s, b) = place(
        &app,
        &token,
        &single(book.selections[1][0], "2.5000", "10.00", "b1"),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let bet = bet_id(&b);
    if let Some(ms) = delay_ms {
        go_live(&app, &trader, book.event_id, book.markets[1], ms).await;
    }
    let setup = Setup {
        app: Arc::new(app),
        trader,
        book,
        user,
        token,
    };
    (setup, bet)
}

impl Setup {
    async fn offer(&self, bet: Uuid) -> (u16, Value) {
        let r = self
            .app
            .http
            .get(self.app.url(&format!("/api/v1/bets/{bet}/cash-out")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn take(&self, bet: Uuid, body: Value) -> (u16, Value) {
        post(
            &self.app.http,
            self.app.url(&format!("/api/v1/bets/{bet}/cash-out")),
            &self.token,
            body,
        )
        .await
    }

    async fn price(&self, odds: &str) {
        let m = self.book.markets[1];
        let (s, b) = post(
            &self.app.http,
            self.app.url(&format!("/api/v1/trading/markets/{m}/prices")),
            &self.trader,
            json!({"prices": [{"selection_id": self.book.selections[1][0], "odds": odds}]}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
    }

    async fn market(&self, action: &str) {
        let m = self.book.markets[1];
        let (s, b) = post(
            &self.app.http,
            self.app
                .url(&format!("/api/v1/trading/markets/{m}/{action}")),
            &self.trader,
            json!({}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
    }

    /// (stake, payout) the market counts on Over.
    async fn liability(&self) -> (Decimal, Decimal) {
        let m = self.book.markets[1];
        let url = self
            .app
            .url(&format!("/api/v1/trading/markets/{m}/liability"));
        let (status, v) = get_auth(&self.app.http, url, &self.trader).await;
        assert_eq!(status, 200, "{v}");
        let over = self.book.selections[1][0].to_string();
        let s = v["selections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["selection_id"] == over.as_str())
            .unwrap()
            .clone();
        let d = |k: &str| -> Decimal {
            match &s[k] {
                Value::String(t) => t.parse().unwrap(),
                other => other.to_string().parse().unwrap(),
            }
        };
        (d("stake"), d("payout"))
    }

    /// `GET /api/v1/bets/{id}`.
    async fn shown(&self, bet: Uuid) -> Value {
        bets_support::get_json(&self.app, &self.token, &format!("/api/v1/bets/{bet}")).await
    }

    /// The bet as `GET /api/v1/bets` lists it.
    async fn listed(&self, bet: Uuid) -> Value {
        bets_support::listed(&self.app, &self.token, bet).await
    }

    /// Cash-out rows and `cashout:` credits of the bet.
    async fn rows(&self, bet: Uuid) -> (i64, i64, Decimal) {
        let r = self
            .app
            .db
            .client
            .query_one(
                "SELECT (SELECT count(*) FROM bet_cash_outs WHERE bet_id = $1),
                        (SELECT count(*) FROM transactions WHERE related_bet_id = $1
                           AND type = 'bet_credit' AND reference LIKE 'cashout:%'),
                        (SELECT cashed_out_amount FROM bets WHERE id = $1)",
                &[&bet],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    }
}

fn dec_of(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn offers_follow_the_price_and_stay_within_their_bounds() {
    let (t, bet) = with_bet(None).await;
    // Unchanged price: the stake less the 5 % margin.
    let (s, o) = t.offer(bet).await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(dec_of(&o["amount"]), dec!(9.50));
    assert_eq!(dec_of(&o["remaining_stake"]), dec!(10.00));
    assert!(o["quote_id"].as_str().is_some() && o["expires_at"].as_str().is_some());
    // Shortened to 1.3: 10 × 2.5 / 1.3 × 0.95 = 18.269.. rounded down.
    t.price("1.3000").await;
    assert_eq!(dec_of(&t.offer(bet).await.1["amount"]), dec!(18.26));
    // At the lowest price the value would pass the potential win: capped at it.
    t.price("1.0001").await;
    assert_eq!(dec_of(&t.offer(bet).await.1["amount"]), dec!(23.74));
    // Drifted far (Under shortened to keep the book's margin): a few cents, never below 0.
    let m = t.book.markets[1];
    let sel = &t.book.selections[1];
    let (s, b) = post(
        &t.app.http,
        t.app.url(&format!("/api/v1/trading/markets/{m}/prices")),
        &t.trader,
        json!({"prices": [{"selection_id": sel[0], "odds": "900.0000"},
                          {"selection_id": sel[1], "odds": "1.2000"}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(dec_of(&t.offer(bet).await.1["amount"]), dec!(0.02));
    // Suspended: unavailable with the reason; nothing changed.
    t.market("suspend").await;
    let (s, o) = t.offer(bet).await;
    assert_eq!(s, 409, "{o}");
    assert_eq!(o["error"]["code"], "cash_out_unavailable");
    assert_eq!(o["error"]["details"]["reason"], "market_suspended");
    t.market("resume").await;
    // Someone else's bet is not found.
    let (_, other) = bettor(&t.app.db.client, dec!(5.00)).await;
    let r = t
        .app
        .http
        .get(t.app.url(&format!("/api/v1/bets/{bet}/cash-out")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(balance(&t.app, t.user).await, dec!(40.00));
    assert_eq!(t.rows(bet).await, (0, 0, dec!(0)));
}

#[tokio::test]
async fn a_partial_then_a_full_cash_out_pay_once_each_and_release_the_liability() {
    let (t, bet) = with_bet(None).await;
    assert_eq!(t.liability().await, (dec!(10.00), dec!(25.00)));
    let (_, o) = t.offer(bet).await;
    let body = json!({"quote_id": o["quote_id"], "fraction": "0.5", "idempotency_key": "c1"});
    let (s, b) = t.take(bet, body.clone()).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["status"], "accepted");
    assert_eq!(dec_of(&b["cash_out_amount"]), dec!(4.75));
    assert_eq!(dec_of(&b["remaining_stake"]), dec!(5.00));
    assert_eq!(dec_of(&b["cashed_out_amount"]), dec!(4.75));
    assert_eq!(balance(&t.app, t.user).await, dec!(44.75));
    assert_eq!(t.liability().await, (dec!(5.00), dec!(12.50)));
    assert_eq!(t.rows(bet).await, (1, 1, dec!(4.75)));
    // The list shows the same cash-out fields as the bet itself.
    let (listed, shown) = (t.listed(bet).await, t.shown(bet).await);
    assert_eq!(dec_of(&listed["cashed_out_amount"]), dec!(4.75), "{listed}");
    assert_eq!(dec_of(&listed["remaining_stake"]), dec!(5.00), "{listed}");
    assert_eq!(listed["cashed_out_amount"], shown["cashed_out_amount"]);
    assert_eq!(listed["remaining_stake"], shown["remaining_stake"]);
    assert!(listed.get("referral").is_none(), "never referred: {listed}");
    // The same key answers the first cash-out again and pays nothing more.
    let (s, again) = t.take(bet, body).await;
    assert_eq!(s, 201, "{again}");
    assert_eq!(again["cash_out_amount"], b["cash_out_amount"]);
    assert_eq!(balance(&t.app, t.user).await, dec!(44.75));
    // The same key with another request is a conflict.
    let (s, e) = t
        .take(bet, json!({"amount": "4.75", "idempotency_key": "c1"}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("idempotency_key_reused"))
    );
    // The rest, by amount: the offer for the remaining 5.00 is 4.75.
    let (_, o) = t.offer(bet).await;
    assert_eq!(dec_of(&o["amount"]), dec!(4.75));
    let (s, b) = t
        .take(bet, json!({"amount": "4.75", "idempotency_key": "c2"}))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["status"], "cashed_out");
    assert_eq!(dec_of(&b["remaining_stake"]), dec!(0.00));
    assert_eq!(balance(&t.app, t.user).await, dec!(49.50));
    assert_eq!(t.liability().await, (dec!(0.00), dec!(0.00)));
    assert_eq!(t.rows(bet).await, (2, 2, dec!(9.50)));
    let listed = t.listed(bet).await;
    assert_eq!(listed["status"], "cashed_out", "{listed}");
    assert_eq!(dec_of(&listed["cashed_out_amount"]), dec!(9.50), "{listed}");
    assert_eq!(dec_of(&listed["remaining_stake"]), dec!(0.00), "{listed}");
    // Nothing more to cash out.
    let (s, o) = t.offer(bet).await;
    assert_eq!(
        (s, o["error"]["details"]["reason"].as_str()),
        (409, Some("bet_not_open"))
    );
    ledger_clean(&t.app).await;
}

#[tokio::test]
async fn a_remainder_worth_less_than_a_cent_is_not_offered() {
    let (t, bet) = with_bet(None).await;
    let (_, o) = t.offer(bet).await;
    let body = json!({"quote_id": o["quote_id"], "fraction": "0.999", "idempotency_key": "c1"});
    let (s, b) = t.take(bet, body).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(dec_of(&b["remaining_stake"]), dec!(0.01));
    let paid = balance(&t.app, t.user).await;
    // 0.01 at unchanged odds less the margin is 0.0095: rounded down, nothing to offer.
    let (s, o) = t.offer(bet).await;
    assert_eq!(
        (
            s,
            o["error"]["code"].as_str(),
            o["error"]["details"]["reason"].as_str()
        ),
        (409, Some("cash_out_unavailable"), Some("no_value")),
        "{o}"
    );
    let (s, e) = t
        .take(bet, json!({"amount": "0.00", "idempotency_key": "c2"}))
        .await;
    assert_eq!(
        (s, e["error"]["details"]["reason"].as_str()),
        (409, Some("no_value")),
        "{e}"
    );
    // The cent stays on the bet, which is still open; nothing was paid.
    assert_eq!(balance(&t.app, t.user).await, paid);
    assert_eq!(t.rows(bet).await.0, 1);
    ledger_clean(&t.app).await;
}

#[tokio::test]
async fn bad_requests_are_refused_and_change_nothing() {
    let (t, bet) = with_bet(None).await;
    let (_, o) = t.offer(bet).await;
    for body in [
        json!({"quote_id": o["quote_id"], "fraction": "0", "idempotency_key": "x"}),
        json!({"quote_id": o["quote_id"], "fraction": "1.5", "idempotency_key": "x"}),
        json!({"quote_id": o["quote_id"], "fraction": 0.5, "idempotency_key": "x"}),
        json!({"quote_id": o["quote_id"], "amount": "9.50", "idempotency_key": "x"}),
        json!({"fraction": "0.5", "idempotency_key": "x"}),
        json!({"quote_id": o["quote_id"], "idempotency_key": ""}),
        json!({"amount": 9.5, "idempotency_key": "x"}),
    ] {
        let (s, e) = t.take(bet, body.clone()).await;
        assert!(s == 422 || s == 400, "{body} → {s} {e}");
    }
    // An unknown quote answers the new offer.
    let (s, e) = t
        .take(
            bet,
            json!({"quote_id": Uuid::new_v4(), "idempotency_key": "y"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("cash_out_changed"))
    );
    assert_eq!(
        dec_of(&e["error"]["details"]["offer"]["amount"]),
        dec!(9.50)
    );
    // Asking more than the value is worth answers the new offer too.
    let (s, e) = t
        .take(bet, json!({"amount": "9.51", "idempotency_key": "z"}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("cash_out_changed"))
    );
    assert_eq!(balance(&t.app, t.user).await, dec!(40.00));
    assert_eq!(t.rows(bet).await, (0, 0, dec!(0)));
    assert_eq!(t.liability().await, (dec!(10.00), dec!(25.00)));
}

/// Starts a cash-out of the quoted value in the background and waits until it is held for
/// the bet delay.
async fn take_held(t: &Setup, bet: Uuid, key: &str) -> tokio::task::JoinHandle<(u16, Value)> {
    let (_, o) = t.offer(bet).await;
    let body = json!({"quote_id": o["quote_id"], "idempotency_key": key});
    let (app, token) = (t.app.clone(), t.token.clone());
    let task = tokio::spawn(async move {
        post(
            &app.http,
            app.url(&format!("/api/v1/bets/{bet}/cash-out")),
            &token,
            body,
        )
        .await
    });
    common::wait_until(
        "the cash-out to be held for the bet delay",
        Duration::from_secs(10),
        || async { common::metric(&t.app, "winzo_cash_outs_held ").await >= 1 },
    )
    .await;
    task
}

#[tokio::test]
async fn in_play_a_price_move_against_the_bettor_during_the_delay_answers_the_new_offer() {
    let (t, bet) = with_bet(Some(800)).await;
    let task = take_held(&t, bet, "k1").await;
    t.price("3.0000").await; // drifted: worth less (10 × 2.5 / 3 × 0.95 = 7.91)
    let (s, e) = task.await.unwrap();
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("cash_out_changed")),
        "{e}"
    );
    assert_eq!(
        dec_of(&e["error"]["details"]["offer"]["amount"]),
        dec!(7.91)
    );
    assert_eq!(balance(&t.app, t.user).await, dec!(40.00));
    assert_eq!(t.rows(bet).await, (0, 0, dec!(0)));
    assert_eq!(t.liability().await, (dec!(10.00), dec!(25.00)));
}

#[tokio::test]
async fn in_play_a_price_move_in_the_bettors_favour_is_paid_at_the_quoted_value() {
    let (t, bet) = with_bet(Some(800)).await;
    let task = take_held(&t, bet, "k1").await;
    t.price("2.0000").await; // shortened: worth more; the quote (9.50) is honoured
    let (s, b) = task.await.unwrap();
    assert_eq!(s, 201, "{b}");
    assert_eq!(dec_of(&b["cash_out_amount"]), dec!(9.50));
    assert_eq!(b["status"], "cashed_out");
    assert_eq!(balance(&t.app, t.user).await, dec!(49.50));
    assert_eq!(t.liability().await, (dec!(0.00), dec!(0.00)));
    ledger_clean(&t.app).await;
}

#[tokio::test]
async fn in_play_a_suspension_during_the_delay_refuses_the_cash_out() {
    let (t, bet) = with_bet(Some(800)).await;
    let task = take_held(&t, bet, "k1").await;
    t.market("suspend").await;
    let (s, e) = task.await.unwrap();
    assert_eq!(s, 409, "{e}");
    assert_eq!(e["error"]["code"], "cash_out_unavailable");
    assert_eq!(e["error"]["details"]["reason"], "market_suspended");
    assert_eq!(balance(&t.app, t.user).await, dec!(40.00));
    assert_eq!(t.rows(bet).await, (0, 0, dec!(0)));
    assert_eq!(t.liability().await, (dec!(10.00), dec!(25.00)));
}

#[tokio::test]
async fn automatic_cash_out_fires_once_at_the_threshold() {
    let (t, bet) = with_bet(None).await;
    let url = t.app.url(&format!("/api/v1/bets/{bet}/auto-cash-out"));
    for bad in [json!({"threshold": "0.00"}), json!({"threshold": 15})] {
        let r = t
            .app
            .http
            .put(&url)
            .bearer_auth(&t.token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert!(r.status() == 422 || r.status() == 400, "{bad}");
    }
    let r = t
        .app
        .http
        .put(&url)
        .bearer_auth(&t.token)
        .json(&json!({"threshold": "15.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Below the threshold (10 × 2.5 / 2 × 0.95 = 11.87): nothing happens.
    t.price("2.0000").await;
    // At 1.5 the offer is 15.83: the bet is cashed out once, in full.
    t.price("1.5000").await;
    common::wait_until(
        "the automatic cash-out",
        Duration::from_secs(10),
        || async { bet_row(&t.app, bet).await.0 == "cashed_out" },
    )
    .await;
    t.price("1.4000").await;
    t.price("1.3000").await;
    let trig: Vec<String> = t
        .app
        .db
        .client
        .query(
            "SELECT trigger FROM bet_cash_outs WHERE bet_id = $1",
            &[&bet],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(trig, vec!["auto".to_string()]);
    let (n, credits, paid) = t.rows(bet).await;
    assert_eq!((n, credits), (1, 1));
    assert!(paid >= dec!(15.00), "paid {paid}");
    assert_eq!(balance(&t.app, t.user).await, dec!(40.00) + paid);
    assert_eq!(t.liability().await, (dec!(0.00), dec!(0.00)));
    let armed: Option<Decimal> = t
        .app
        .db
        .client
        .query_one(
            "SELECT auto_cash_out_threshold FROM bets WHERE id = $1",
            &[&bet],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(armed, None);
    ledger_clean(&t.app).await;
}

#[tokio::test]
async fn a_manual_cash_out_disarms_the_automatic_one() {
    let (t, bet) = with_bet(None).await;
    let url = t.app.url(&format!("/api/v1/bets/{bet}/auto-cash-out"));
    let r = t
        .app
        .http
        .put(&url)
        .bearer_auth(&t.token)
        .json(&json!({"threshold": "15.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, o) = t.offer(bet).await;
    let (s, b) = t
        .take(
            bet,
            json!({"quote_id": o["quote_id"], "fraction": "0.5", "idempotency_key": "m"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert!(b["auto_cash_out_threshold"].is_null(), "{b}");
    t.price("1.2000").await;
    // Give the watcher a change to act on: no automatic cash-out may follow. The price
    // change is applied; the proof is a later read that still shows one row.
    common::wait_until(
        "the watcher to see the price",
        Duration::from_secs(5),
        || async { dec_of(&t.offer(bet).await.1["amount"]) > dec!(9.00) },
    )
    .await;
    assert_eq!(t.rows(bet).await.0, 1);
    assert_eq!(bet_row(&t.app, bet).await.0, "accepted");
}

#[tokio::test]
async fn a_partly_cashed_out_bet_settles_only_its_remaining_stake() {
    let (t, bet) = with_bet(None).await;
    let (_, o) = t.offer(bet).await;
    let (s, b) = t
        .take(
            bet,
            json!({"quote_id": o["quote_id"], "fraction": "0.4", "idempotency_key": "p"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(dec_of(&b["cash_out_amount"]), dec!(3.80)); // 9.50 × 0.4
    assert_eq!(balance(&t.app, t.user).await, dec!(43.80));
    let sel = &t.book.selections[1];
    settle_ok(
        &t.app,
        &t.trader,
        t.book.markets[1],
        "settle",
        results(&[
            (sel[0], "win", None, None),
            (sel[1], "loss", None, None),
            (sel[2], "loss", None, None),
        ]),
    )
    .await;
    // The remaining 6.00 at 2.5 wins 15.00.
    assert_eq!(
        bet_row(&t.app, bet).await,
        ("settled_win".into(), dec!(15.00))
    );
    assert_eq!(balance(&t.app, t.user).await, dec!(58.80));
    // Resettled to a loss: the win is taken back, the cash-out stays paid.
    settle_ok(
        &t.app,
        &t.trader,
        t.book.markets[1],
        "resettle",
        results(&[
            (sel[0], "loss", None, None),
            (sel[1], "win", None, None),
            (sel[2], "loss", None, None),
        ]),
    )
    .await;
    assert_eq!(bet_row(&t.app, bet).await, ("settled_loss".into(), dec!(0)));
    assert_eq!(balance(&t.app, t.user).await, dec!(43.80));
    assert_eq!(t.rows(bet).await, (1, 1, dec!(3.80)));
    ledger_clean(&t.app).await;
}

#[tokio::test]
async fn an_automatic_cash_out_that_meets_a_suspension_in_the_delay_stays_armed() {
    let (t, bet) = with_bet(Some(800)).await;
    let url = t.app.url(&format!("/api/v1/bets/{bet}/auto-cash-out"));
    let r = t
        .app
        .http
        .put(&url)
        .bearer_auth(&t.token)
        .json(&json!({"threshold": "15.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.price("1.5000").await;
    common::wait_until(
        "the automatic cash-out to be held",
        Duration::from_secs(10),
        || async { common::metric(&t.app, "winzo_cash_outs_held ").await >= 1 },
    )
    .await;
    t.market("suspend").await;
    let refused = "winzo_cash_outs_total{outcome=\"cash_out_unavailable\",trigger=\"auto\"} ";
    common::wait_until(
        "the automatic cash-out to fail",
        Duration::from_secs(10),
        || async { common::metric(&t.app, refused).await >= 1 },
    )
    .await;
    assert_eq!(bet_row(&t.app, bet).await.0, "accepted");
    assert_eq!(t.rows(bet).await, (0, 0, dec!(0)));
    assert_eq!(balance(&t.app, t.user).await, dec!(40.00));
    // Still armed: the next price change after the resume fires it.
    t.market("resume").await;
    t.price("1.4000").await;
    common::wait_until(
        "the automatic cash-out",
        Duration::from_secs(10),
        || async { bet_row(&t.app, bet).await.0 == "cashed_out" },
    )
    .await;
    assert_eq!(t.rows(bet).await.0, 1);
    assert_eq!(t.liability().await, (dec!(0.00), dec!(0.00)));
    ledger_clean(&t.app).await;
}

/// A cash-out's write does not hold its wallet shard: with one shard for everyone, the
/// bet's row locked by another transaction keeps the cash-out waiting, and meanwhile
/// another bettor's stake goes through the same shard. Once the lock goes, the cash-out
/// lands and the cached balance holds both moves exactly.
#[tokio::test]
async fn a_cash_out_waiting_on_the_database_does_not_hold_up_other_bettors() {
    let app = Arc::new(common::spawn_app_with(|s| s.wallet.shards = 1).await);
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &trader).await;
    let over = book.selections[1][0];
    let (user, token) = bettor(&app.db.client, dec!(50.00)).await;
    let (s, b) = place(&app, &token, &single(over, "2.5000", "10.00", "b1")).await;
    assert_eq!(s, 201, "{b}");
    let bet = bet_id(&b);
    let (other, other_token) = bettor(&app.db.client, dec!(20.00)).await;

    // Another session holds the bet's row: the cash-out's write waits for it.
    let (locker, conn) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    locker.batch_execute("BEGIN").await.unwrap();
    locker
        .execute("SELECT 1 FROM bets WHERE id = $1 FOR UPDATE", &[&bet])
        .await
        .unwrap();
    let taking = {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move {
            let url = app.url(&format!("/api/v1/bets/{bet}/cash-out"));
            let (status, offer) = get_auth(&app.http, url.clone(), &token).await;
            assert_eq!(status, 200, "{offer}");
            let body = json!({"quote_id": offer["quote_id"], "idempotency_key": "c1"});
            post(&app.http, url, &token, body).await
        })
    };
    common::wait_until(
        "the cash-out's write to wait on the locked row",
        Duration::from_secs(10),
        || {
            let app = app.clone();
            async move {
                app.db
                    .client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity
                          WHERE datname = current_database() AND wait_event_type = 'Lock'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get::<_, i64>(0)
                    > 0
            }
        },
    )
    .await;
    // The same (only) shard takes another bettor's stake while that write waits.
    let (s, b) = place(&app, &other_token, &single(over, "2.5000", "5.00", "o1")).await;
    assert_eq!(s, 201, "{b}");
    assert!(!taking.is_finished(), "the cash-out is still waiting");
    locker.batch_execute("COMMIT").await.unwrap();
    let (s, b) = taking.await.unwrap();
    assert_eq!(s, 201, "{b}");
    let paid = dec_of(&b["cashed_out_amount"]);
    assert!(paid > Decimal::ZERO, "{b}");
    assert_eq!(balance(&app, user).await, dec!(40.00) + paid);
    assert_eq!(balance(&app, other).await, dec!(15.00));
    // The shard's cached balance has the credit: a stake of all of it is accepted.
    let all = format!("{:.2}", dec!(40.00) + paid);
    let (s, b) = place(&app, &token, &single(over, "2.5000", &all, "b2")).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(balance(&app, user).await, dec!(0.00));
    ledger_clean(&app).await;
}
