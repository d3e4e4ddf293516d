//! Currencies, issue 17: a book in EUR with USD (rate 0.5) and JPY (0 places, rate 0.01)
//! accounts. Through HTTP: a stake limit set in the base currency binds a USD bet after
//! conversion; a market's liability counts both currencies in the base (and its limit
//! binds after conversion), shown with the base named, released at the converted amount
//! by a cash-out and rebuilt the same by a restart; a JPY account refuses fractions of a
//! yen (deposits and stakes, changing nothing) and its payouts and offers are whole yen;
//! its own caps and the desk's maximum stake are whole yen too, and the book's maxima in
//! the base (potential win, grant amount, conversion cap) bind it after conversion.
mod bets_support;
mod common;
mod markets_support;
mod settle_support;
mod support_accounts;

use std::collections::HashMap;

use bets_support::{footprint, place, single};
use markets_support::{account, create_book, patch_settings, post, Book};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use settle_support::{balance, bet_id, ledger_clean};
use support_accounts::patch;
use uuid::Uuid;
use winzo::accounts::currencies::CurrencyEntry;
use winzo::auth::Role;

fn entry(scale: u32, rate: &str) -> CurrencyEntry {
    CurrencyEntry {
        scale,
        rate: rate.into(),
    }
}

fn euro_book(s: &mut winzo::config::Settings) {
    s.currencies.base = "EUR".into();
    s.currencies.supported = HashMap::from([
        ("EUR".to_string(), entry(2, "1")),
        ("USD".to_string(), entry(2, "0.5")),
        ("JPY".to_string(), entry(0, "0.01")),
    ]);
    s.accounts.currencies = vec!["EUR".into(), "USD".into(), "JPY".into()];
}

struct Desk {
    app: common::TestApp,
    trader: String,
    book: Book,
}

impl Desk {
    async fn open() -> Desk {
        let app = common::spawn_app_with(euro_book).await;
        let (_, trader) = account(&app.db.client, Role::Moderator).await;
        let book = create_book(&app.http, &app.address, &trader).await;
        Desk { app, trader, book }
    }

    fn over(&self) -> Uuid {
        self.book.selections[1][0]
    }

    async fn settings(&self, body: Value) {
        let (s, b) = patch_settings(
            &self.app.http,
            &self.app.address,
            &self.trader,
            self.book.markets[1],
            body,
        )
        .await;
        assert_eq!(s, 200, "{b}");
    }

    /// A bettor whose account is in `currency`, with `funds` of it: (id, token).
    async fn bettor(&self, currency: &str, funds: Decimal) -> (Uuid, String) {
        let (id, token) = bets_support::bettor(&self.app.db.client, funds).await;
        for table in ["user_profiles", "user_balances", "transactions"] {
            self.app
                .db
                .client
                .execute(
                    &format!("UPDATE {table} SET currency_code = $2 WHERE user_id = $1"),
                    &[&id, &currency],
                )
                .await
                .unwrap();
        }
        (id, token)
    }

    async fn liability_at(&self, app: &common::TestApp) -> Value {
        let m = self.book.markets[1];
        let path = format!("/api/v1/trading/markets/{m}/liability");
        bets_support::get_json(app, &self.trader, &path).await
    }

    /// The market's view: (currency, Over's stake, Over's payout, Over's liability).
    async fn liability(&self) -> (String, Decimal, Decimal, Decimal) {
        over_of(&self.liability_at(&self.app).await, self.over())
    }
}

fn over_of(v: &Value, over: Uuid) -> (String, Decimal, Decimal, Decimal) {
    let s = v["selections"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .find(|s| s["selection_id"] == over.to_string().as_str())
        .unwrap()
        .clone();
    let d = |k: &str| -> Decimal {
        s[k].as_str()
            .unwrap_or_else(|| panic!("{k}: {s}"))
            .parse()
            .unwrap()
    };
    (
        v["currency_code"].as_str().unwrap_or_default().to_string(),
        d("stake"),
        d("payout"),
        d("liability"),
    )
}

fn code(b: &Value) -> &str {
    b["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_stake_limit_in_the_base_currency_binds_a_bet_in_another_after_conversion() {
    let d = Desk::open().await;
    // 50.00 EUR is 100.00 USD at 0.5.
    d.settings(json!({"max_stake": "50.00"})).await;
    let (eur, eur_token) = d.bettor("EUR", dec!(500.00)).await;
    let (usd, usd_token) = d.bettor("USD", dec!(500.00)).await;

    let (s, b) = place(
        &d.app,
        &eur_token,
        &single(d.over(), "2.5000", "50.01", "e1"),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "stake_too_high"), "{b}");
    let before = footprint(&d.app, &d.trader, usd, d.book.markets[1]).await;
    let (s, b) = place(
        &d.app,
        &usd_token,
        &single(d.over(), "2.5000", "100.01", "u1"),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "stake_too_high"), "{b}");
    assert_eq!(
        b["error"]["details"]["max_stake"], "100.00",
        "the limit shown in the bettor's currency: {b}"
    );
    assert_eq!(
        footprint(&d.app, &d.trader, usd, d.book.markets[1]).await,
        before,
        "nothing changed"
    );

    // At the converted limit both are taken: 100.00 USD is 50.00 EUR.
    let (s, b) = place(
        &d.app,
        &usd_token,
        &single(d.over(), "2.5000", "100.00", "u2"),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["currency_code"], "USD");
    let (s, b) = place(
        &d.app,
        &eur_token,
        &single(d.over(), "2.5000", "50.00", "e2"),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(balance(&d.app, usd).await, dec!(400.00));
    assert_eq!(balance(&d.app, eur).await, dec!(450.00));
    // 50 EUR + 100 USD × 0.5 = 100 EUR staked; 125 + 250 × 0.5 = 250 EUR to pay.
    assert_eq!(
        d.liability().await,
        ("EUR".to_string(), dec!(100.00), dec!(250.00), dec!(150.00))
    );
    // The minimum converts the other way, rounded up: 0.10 EUR is 0.20 USD.
    let (s, b) = place(
        &d.app,
        &usd_token,
        &single(d.over(), "2.5000", "0.19", "u3"),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "stake_too_low"), "{b}");
    ledger_clean(&d.app).await;
}

#[tokio::test]
async fn liability_counts_every_currency_in_the_base_and_its_limit_binds_after_conversion() {
    let d = Desk::open().await;
    d.settings(json!({"max_liability_selection": "100.00"}))
        .await;
    let (_, eur_token) = d.bettor("EUR", dec!(500.00)).await;
    let (usd, usd_token) = d.bettor("USD", dec!(500.00)).await;
    // 50 EUR and 100 USD (= 50 EUR) to pay if Over wins: exactly the limit.
    let (s, b) = place(
        &d.app,
        &eur_token,
        &single(d.over(), "2.5000", "20.00", "e1"),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = place(
        &d.app,
        &usd_token,
        &single(d.over(), "2.5000", "40.00", "u1"),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let usd_bet = bet_id(&b);
    let view = d.liability_at(&d.app).await;
    assert_eq!(view["currency_code"], "EUR", "{view}");
    assert_eq!(view["max_liability_selection"], "100.00", "{view}");
    assert_eq!(
        over_of(&view, d.over()),
        ("EUR".to_string(), dec!(40.00), dec!(100.00), dec!(60.00))
    );
    // The smallest USD stake more (0.20, the 0.10 EUR minimum) would pay 0.25 EUR above it.
    let before = footprint(&d.app, &d.trader, usd, d.book.markets[1]).await;
    let (s, b) = place(
        &d.app,
        &usd_token,
        &single(d.over(), "2.5000", "0.20", "u2"),
    )
    .await;
    assert_eq!((s, code(&b)), (409, "liability_exceeded"), "{b}");
    assert_eq!(
        footprint(&d.app, &d.trader, usd, d.book.markets[1]).await,
        before,
        "nothing changed"
    );

    // A restart rebuilds the same figures from the bets (each converted at its rate).
    let again = common::spawn_app_at(&d.app.settings.database.url, euro_book).await;
    assert_eq!(
        over_of(&d.liability_at(&again).await, d.over()),
        ("EUR".to_string(), dec!(40.00), dec!(100.00), dec!(60.00))
    );
    drop(again);

    // Half of the USD bet cashed out leaves the book at its converted amounts: 20 USD of
    // stake and 50 USD of payout are 10 and 25 EUR.
    let o = bets_support::get_json(
        &d.app,
        &usd_token,
        &format!("/api/v1/bets/{usd_bet}/cash-out"),
    )
    .await;
    assert!(o["quote_id"].is_string(), "an offer: {o}");
    let (s, b) = post(
        &d.app.http,
        d.app.url(&format!("/api/v1/bets/{usd_bet}/cash-out")),
        &usd_token,
        json!({"quote_id": o["quote_id"], "fraction": "0.5", "idempotency_key": "c1"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        d.liability().await,
        ("EUR".to_string(), dec!(30.00), dec!(75.00), dec!(45.00))
    );
    ledger_clean(&d.app).await;
}

#[tokio::test]
async fn a_zero_place_currency_refuses_fractions_and_pays_whole_units() {
    let d = Desk::open().await;
    let (jpy, token) = d.bettor("JPY", dec!(0)).await;
    let deposit = |amount: &str, key: &str| json!({"amount": amount, "idempotency_key": key});
    let before = footprint(&d.app, &d.trader, jpy, d.book.markets[1]).await;
    let (s, b) = post(
        &d.app.http,
        d.app.url("/api/v1/wallet/deposits"),
        &token,
        deposit("1.50", "d1"),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "validation_failed"), "{b}");
    assert_eq!(
        b["error"]["details"]["reason"], "too_many_decimal_places",
        "{b}"
    );
    assert_eq!(
        footprint(&d.app, &d.trader, jpy, d.book.markets[1]).await,
        before,
        "nothing changed"
    );
    let (s, b) = post(
        &d.app.http,
        d.app.url("/api/v1/wallet/deposits"),
        &token,
        deposit("10000", "d2"),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["currency_code"], "JPY");
    assert_eq!(balance(&d.app, jpy).await, dec!(10000));

    let before = footprint(&d.app, &d.trader, jpy, d.book.markets[1]).await;
    let (s, b) = place(&d.app, &token, &single(d.over(), "2.5000", "10.50", "b1")).await;
    assert_eq!((s, code(&b)), (422, "validation_failed"), "{b}");
    assert_eq!(
        footprint(&d.app, &d.trader, jpy, d.book.markets[1]).await,
        before,
        "nothing changed"
    );

    // 333 × 2.5 = 832.5: the potential win is rounded down to the yen.
    let (s, b) = place(&d.app, &token, &single(d.over(), "2.5000", "333", "b2")).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["potential_win"], "832.00", "{b}");
    let bet = bet_id(&b);
    // The book counts it in EUR at 0.01: 3.33 staked, 8.32 to pay.
    assert_eq!(
        d.liability().await,
        ("EUR".to_string(), dec!(3.33), dec!(8.32), dec!(4.99))
    );
    let o = bets_support::get_json(&d.app, &token, &format!("/api/v1/bets/{bet}/cash-out")).await;
    assert!(o["quote_id"].is_string(), "an offer: {o}");
    let amount: Decimal = o["amount"].as_str().unwrap().parse().unwrap();
    assert!(amount > Decimal::ZERO, "{o}");
    assert_eq!(amount, amount.trunc(), "an offer in whole yen: {o}");
    ledger_clean(&d.app).await;
}

#[tokio::test]
async fn an_accounts_caps_and_the_books_maxima_are_money_of_its_currency() {
    let app = common::spawn_app_with(|s| {
        euro_book(s);
        s.bets.potential_win_max = dec!(10.00);
        s.bonus.grant_amount_max = dec!(50);
        s.bonus.conversion_max = dec!(20);
    })
    .await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &trader).await;
    let d = Desk { app, trader, book };
    let (jpy, token) = d.bettor("JPY", dec!(100000)).await;
    let unchanged = || async {
        d.app
            .db
            .client
            .query_one(
                "SELECT p.betting_limits::text, u.max_stake::text FROM user_preferences p
                   JOIN users u ON u.id = p.user_id WHERE p.user_id = $1",
                &[&jpy],
            )
            .await
            .map(|r| (r.get::<_, Option<String>>(0), r.get::<_, Option<String>>(1)))
            .unwrap()
    };
    let before = unchanged().await;

    // The bettor's own cap and the desk's maximum stake: whole yen only, refused unchanged.
    let body = json!({"betting_limits": {"daily": "1000.50"}});
    let (s, b) = patch(&d.app, "/api/v1/me/preferences", Some(&token), body).await;
    assert_eq!((s, code(&b)), (422, "validation_failed"), "{b}");
    assert_eq!(
        b["error"]["details"]["reason"], "too_many_decimal_places",
        "{b}"
    );
    assert_eq!(
        b["error"]["details"]["field"], "betting_limits.daily",
        "{b}"
    );
    let path = format!("/api/v1/trading/users/{jpy}");
    let (s, b) = patch(
        &d.app,
        &path,
        Some(&d.trader),
        json!({"max_stake": "500.50"}),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "validation_failed"), "{b}");
    assert_eq!(b["error"]["details"]["field"], "max_stake", "{b}");
    assert_eq!(unchanged().await, before, "nothing changed");
    let body = json!({"betting_limits": {"daily": "900"}});
    let (s, b) = patch(&d.app, "/api/v1/me/preferences", Some(&token), body).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = patch(&d.app, &path, Some(&d.trader), json!({"max_stake": "500"})).await;
    assert_eq!(s, 200, "{b}");

    // bets.potential_win_max is 10 EUR: 1 000 yen. 401 × 2.5 = 1 002 is over it.
    let (s, b) = place(&d.app, &token, &single(d.over(), "2.5000", "401", "w1")).await;
    assert_eq!((s, code(&b)), (422, "potential_win_too_high"), "{b}");
    let (s, b) = place(&d.app, &token, &single(d.over(), "2.5000", "400", "w2")).await;
    assert_eq!(s, 201, "{b}");

    // A grant is at most 50 EUR (5 000 yen) and keeps a cap of 20 EUR (2 000 yen).
    let expires = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let grant = |amount: &str, key: &str| {
        json!({"amount": amount, "wagering_multiplier": 1, "min_odds": "1.5000",
               "expires_at": expires, "idempotency_key": key})
    };
    let url = d.app.url(&format!("/api/v1/trading/users/{jpy}/bonuses"));
    let (s, b) = post(&d.app.http, url.clone(), &d.trader, grant("5001", "g1")).await;
    assert_eq!((s, code(&b)), (422, "validation_failed"), "{b}");
    let (s, b) = post(&d.app.http, url, &d.trader, grant("5000", "g2")).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["conversion_cap"], "2000.00", "{b}");
    ledger_clean(&d.app).await;
}
