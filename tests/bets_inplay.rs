//! In-play bets: held for the market's bet delay with the stake pending, re-checked at
//! expiry; a suspension or a price move against the policy during the delay refuses them.
mod bets_support;
mod common;
mod markets_support;
mod stream_support;

use std::time::{Duration, Instant};

use bets_support::{bettor, go_live, place, single};
use markets_support::{account, create_book, post};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use winzo::auth::Role;

const DELAY_MS: u64 = 600;

async fn live_market() -> (common::TestApp, String, markets_support::Book) {
    live_market_with(false).await
}

/// A live market on an engine with or without its book thread (`bets.book_thread`).
async fn live_market_with(book_thread: bool) -> (common::TestApp, String, markets_support::Book) {
    let app = common::spawn_app_with(|s| s.bets.book_thread = book_thread).await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &trader).await;
    go_live(&app, &trader, book.event_id, book.markets[1], DELAY_MS).await;
    (app, trader, book)
}

async fn wallet(app: &common::TestApp, token: &str) -> Value {
    app.http
        .get(app.url("/api/v1/wallet"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the market holds a reservation on `selection`: the bet's leg is in its
/// bet delay (the reservation counts at once, the stake is already pending).
async fn wait_held(app: &common::TestApp, trader: &str, market: uuid::Uuid, selection: uuid::Uuid) {
    let url = app.url(&format!("/api/v1/trading/markets/{market}/liability"));
    common::wait_until(
        "the bet's leg to be held for the bet delay",
        Duration::from_secs(10),
        || async {
            let live: Value = app
                .http
                .get(&url)
                .bearer_auth(trader)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            live["selections"].as_array().unwrap().iter().any(|s| {
                s["selection_id"] == selection.to_string()
                    && s["reserved_stake"]
                        .as_str()
                        .and_then(|v| v.parse::<Decimal>().ok())
                        .is_some_and(|v| v > Decimal::ZERO)
            })
        },
    )
    .await;
}

#[tokio::test]
async fn an_undisturbed_in_play_bet_waits_the_delay_with_its_stake_pending() {
    let (app, trader, book) = live_market().await;
    let (_, token) = bettor(&app.db.client, dec!(50.00)).await;
    let body = single(book.selections[1][0], "2.5000", "10.00", "a");
    let started = Instant::now();
    let app = std::sync::Arc::new(app);
    let (a2, t2) = (app.clone(), token.clone());
    let bet = tokio::spawn(async move { place(&a2, &t2, &body).await });
    wait_held(&app, &trader, book.markets[1], book.selections[1][0]).await;
    let w = wallet(&app, &token).await;
    assert_eq!(w["pending_balance"], "10.00", "{w}");
    assert_eq!(w["balance"], "50.00", "{w}");
    let (s, b) = bet.await.unwrap();
    assert_eq!(s, 201, "{b}");
    assert!(
        started.elapsed() >= Duration::from_millis(DELAY_MS),
        "answered before the delay"
    );
    assert_eq!(b["metadata"]["in_play"], true);
    let w = wallet(&app, &token).await;
    assert_eq!(
        (w["balance"].as_str(), w["pending_balance"].as_str()),
        (Some("40.00"), Some("0.00")),
        "{w}"
    );
}

#[tokio::test]
async fn a_suspension_during_the_delay_refuses_the_bet_and_returns_the_stake() {
    let (app, trader, book) = live_market().await;
    let (user, token) = bettor(&app.db.client, dec!(50.00)).await;
    let m = book.markets[1];
    let body = single(book.selections[1][0], "2.5000", "10.00", "a");
    let app = std::sync::Arc::new(app);
    let (a2, t2) = (app.clone(), token.clone());
    let bet = tokio::spawn(async move { place(&a2, &t2, &body).await });
    wait_held(&app, &trader, m, book.selections[1][0]).await;
    let (s, b) = post(
        &app.http,
        app.url(&format!("/api/v1/trading/markets/{m}/suspend")),
        &trader,
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = bet.await.unwrap();
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("market_suspended")),
        "{b}"
    );
    let w = wallet(&app, &token).await;
    assert_eq!(
        (w["balance"].as_str(), w["pending_balance"].as_str()),
        (Some("50.00"), Some("0.00")),
        "{w}"
    );
    let n: i64 = app
        .db
        .client
        .query_one("SELECT count(*) FROM bets WHERE user_id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_price_move_against_the_policy_during_the_delay_refuses_the_bet() {
    let (app, trader, book) = live_market().await;
    let (user, token) = bettor(&app.db.client, dec!(50.00)).await;
    let (m, sels) = (book.markets[1], book.selections[1].clone());
    let app = std::sync::Arc::new(app);
    let (a2, t2) = (app.clone(), token.clone());
    let body = single(sels[0], "2.5000", "10.00", "a");
    let bet = tokio::spawn(async move { place(&a2, &t2, &body).await });
    wait_held(&app, &trader, m, sels[0]).await;
    let (s, b) = post(
        &app.http,
        app.url(&format!("/api/v1/trading/markets/{m}/prices")),
        &trader,
        json!({"prices": [{"selection_id": sels[0], "odds": "2.2000"}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = bet.await.unwrap();
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("odds_changed")),
        "{b}"
    );
    assert_eq!(b["error"]["details"]["current_odds"], "2.2000");
    let bal: Decimal = app
        .db
        .client
        .query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(bal, dec!(50.00));
    // The same move is fine for a bettor who accepts any price.
    let body = json!({"type": "single", "stake": "10.00", "odds_change": "any", "idempotency_key": "b",
        "legs": [{"selection_id": sels[0], "odds": "2.2000"}]});
    let (a2, t2) = (app.clone(), token.clone());
    let bet = tokio::spawn(async move { place(&a2, &t2, &body).await });
    wait_held(&app, &trader, m, sels[0]).await;
    post(
        &app.http,
        app.url(&format!("/api/v1/trading/markets/{m}/prices")),
        &trader,
        json!({"prices": [{"selection_id": sels[0], "odds": "2.1000"}]}),
    )
    .await;
    let (s, b) = bet.await.unwrap();
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["legs"][0]["odds"], "2.1000",
        "taken at the price at expiry"
    );
}

/// The door a bettor leaves by while its bet's leg is held for the bet delay.
#[derive(Clone, Copy)]
enum Leave {
    /// `POST /api/v1/bets`, the connection dropped mid-request.
    Rest,
    /// `place_bet` on a WebSocket, the socket closed.
    Socket,
}

/// A bettor who gives up while the leg is held for the bet delay (closes the connection or
/// the socket): the bet runs to its end anyway, with or without the book thread (the
/// socket's bet runs on a task of its own, not in its session). Taken after the delay, the
/// stake debited once, nothing left pending or reserved, and a retry with the same key
/// answers that bet.
async fn a_bet_whose_client_went_away_during_the_delay(leave: Leave, book_thread: bool) {
    let (app, trader, book) = live_market_with(book_thread).await;
    let (_, token) = bettor(&app.db.client, dec!(50.00)).await;
    let (market, selection) = (book.markets[1], book.selections[1][0]);
    let body = single(selection, "2.5000", "10.00", "gone");
    let app = std::sync::Arc::new(app);
    match leave {
        Leave::Rest => {
            let (a2, t2, b2) = (app.clone(), token.clone(), body.clone());
            let request = tokio::spawn(async move {
                a2.http
                    .post(a2.url("/api/v1/bets"))
                    .bearer_auth(&t2)
                    .json(&b2)
                    .send()
                    .await
            });
            wait_held(&app, &trader, market, selection).await;
            // Dropping the request closes its connection mid-flight.
            request.abort();
            assert!(request.await.is_err_and(|e| e.is_cancelled()));
        }
        Leave::Socket => {
            let mut ws = stream_support::connect(&app, &format!("?token={token}")).await;
            let mut op = body.clone();
            op["op"] = json!("place_bet");
            op["id"] = json!(1);
            stream_support::send(&mut ws, op).await;
            wait_held(&app, &trader, market, selection).await;
            ws.close(None).await.unwrap();
            drop(ws);
        }
    }
    common::wait_until(
        "the bet to be committed and its stake no longer pending",
        Duration::from_secs(10),
        || async {
            let w = wallet(&app, &token).await;
            w["balance"] == "40.00" && w["pending_balance"] == "0.00"
        },
    )
    .await;
    let url = app.url(&format!("/api/v1/trading/markets/{market}/liability"));
    let (status, live) = markets_support::get_auth(&app.http, url, &trader).await;
    assert_eq!(status, 200, "{live}");
    let leg = live["selections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["selection_id"] == selection.to_string())
        .unwrap()
        .clone();
    let amount = |k: &str| leg[k].as_str().unwrap().parse::<Decimal>().unwrap();
    assert_eq!(amount("reserved_stake"), Decimal::ZERO, "{live}");
    assert_eq!(amount("stake"), dec!(10), "{live}");
    let (s, again) = place(&app, &token, &body).await;
    assert_eq!(s, 201, "{again}");
    assert_eq!(again["stake"], "10.00", "{again}");
    let w = wallet(&app, &token).await;
    assert_eq!(w["balance"], "40.00", "the retry took nothing more: {w}");
}

#[tokio::test]
async fn a_bet_whose_connection_dropped_during_the_delay_still_runs_to_its_end() {
    a_bet_whose_client_went_away_during_the_delay(Leave::Rest, false).await;
    a_bet_whose_client_went_away_during_the_delay(Leave::Rest, true).await;
}

#[tokio::test]
async fn a_bet_whose_socket_closed_during_the_delay_still_runs_to_its_end() {
    a_bet_whose_client_went_away_during_the_delay(Leave::Socket, false).await;
    a_bet_whose_client_went_away_during_the_delay(Leave::Socket, true).await;
}
