//! The smaller items of issue 21, each as the contract states it: a precise `odds_changed`
//! message, a malformed id in a path named in the 404, every failing registration field
//! reported at once, a settled market's liability, and the audit view of people's actions
//! with usernames.
mod bets_support;
mod common;
mod markets_support;
mod support_accounts;

use rust_decimal_macros::dec;
use serde_json::json;
use support_accounts::{get, post, PASSWORD};

#[tokio::test]
async fn odds_changed_says_the_price_and_a_bad_id_is_named() {
    let app = support_accounts::spawn().await;
    let (_, trader) = support_accounts::staff(&app, "moderator").await;
    let book = markets_support::create_book(&app.http, &app.address, &trader).await;
    let (_, token) = bets_support::bettor(&app.db.client, dec!(50.00)).await;
    let body = bets_support::single(book.selections[1][0], "3.0000", "5.00", "k1");
    let (s, b) = bets_support::place(&app, &token, &body).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "odds_changed");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(message.contains("the price is 2.5000"), "{message}");
    assert!(!message.contains("changed to"), "{message}");

    let (s, b) = get(&app, "/api/v1/events/not-a-uuid", None).await;
    assert_eq!(s, 404);
    let message = b["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"not-a-uuid\" is not a valid id"),
        "{message}"
    );
}

#[tokio::test]
async fn registration_reports_every_failing_field_at_once() {
    let app = support_accounts::spawn().await;
    let (s, b) = post(
        &app,
        "/api/v1/auth/register",
        None,
        json!({"username": "x", "email": "nope", "password": "short", "date_of_birth": "1990-01-01"}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    let fields: Vec<&str> = b["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["username", "email", "password"], "{b}");
    assert_eq!(b["error"]["details"]["field"], "username");
    // One bad field keeps the one-field shape.
    let (s, b) = post(
        &app,
        "/api/v1/auth/register",
        None,
        json!({"username": "okname", "email": "nope", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(b["error"]["details"]["field"], "email");
    assert!(b["error"]["details"].get("fields").is_none());
}

#[tokio::test]
async fn a_settled_markets_liability_is_zero_and_the_audit_shows_people_first() {
    let app = support_accounts::spawn().await;
    let (trader_id, trader) = support_accounts::staff(&app, "moderator").await;
    let book = markets_support::create_book(&app.http, &app.address, &trader).await;
    let market = book.markets[0];
    let results: Vec<_> = book.selections[0]
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"selection_id": s, "result": if i == 0 { "win" } else { "loss" }}))
        .collect();
    let (s, b) = post(
        &app,
        &format!("/api/v1/trading/markets/{market}/settle"),
        Some(&trader),
        json!({"results": results}),
    )
    .await;
    assert!(s == 200 || s == 202, "{b}");
    let (s, l) = get(
        &app,
        &format!("/api/v1/trading/markets/{market}/liability"),
        Some(&trader),
    )
    .await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(l["total_stake"], "0.00");
    assert_eq!(l["selections"].as_array().unwrap().len(), 2);

    let (s, page) = get(&app, "/api/v1/trading/audit?actor=person", Some(&trader)).await;
    assert_eq!(s, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| !e["user_id"].is_null()), "{page}");
    let mine = entries
        .iter()
        .find(|e| e["user_id"] == trader_id.to_string())
        .expect("the trader's own changes");
    assert!(mine["username"].as_str().unwrap().starts_with("moderator"));
    let (s, _) = get(&app, "/api/v1/trading/audit?actor=robot", Some(&trader)).await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn a_bad_token_is_401_before_a_bad_body_and_times_end_in_z() {
    let app = support_accounts::spawn().await;
    let r = app
        .http
        .post(app.url("/api/v1/bets"))
        .bearer_auth("not-a-session")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "authenticated first");
    let (_, trader) = support_accounts::staff(&app, "moderator").await;
    let book = markets_support::create_book(&app.http, &app.address, &trader).await;
    let market = book.markets[0];
    let (_, token) = bets_support::bettor(&app.db.client, dec!(50.00)).await;
    let body = bets_support::single(book.selections[0][0], "1.9091", "5.00", "z1");
    let (s, b) = bets_support::place(&app, &token, &body).await;
    assert_eq!(s, 201, "{b}");
    let results: Vec<_> = book.selections[0]
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"selection_id": s, "result": if i == 0 { "win" } else { "loss" }}))
        .collect();
    post(
        &app,
        &format!("/api/v1/trading/markets/{market}/settle"),
        Some(&trader),
        json!({"results": results}),
    )
    .await;
    common::wait_until(
        "the bet is settled",
        std::time::Duration::from_secs(10),
        || async {
            let (_, page) = get(&app, "/api/v1/bets", Some(&token)).await;
            page["bets"][0]["legs"][0]["settled_at"].is_string()
        },
    )
    .await;
    let (_, page) = get(&app, "/api/v1/bets", Some(&token)).await;
    let bet = &page["bets"][0];
    for t in [
        &bet["placed_at"],
        &bet["settled_at"],
        &bet["legs"][0]["settled_at"],
    ] {
        assert!(t.as_str().unwrap().ends_with('Z'), "{t} in {bet}");
    }
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_422_naming_its_field() {
    let app = support_accounts::spawn().await;
    let (_, token) = bets_support::bettor(&app.db.client, dec!(50.00)).await;
    let body = json!({"type": "single", "stake": "5.00", "idempotency_key": "f1",
                      "legs": [{"selection_id": uuid::Uuid::new_v4(), "odds": 2.5}]});
    let (s, b) = bets_support::place(&app, &token, &body).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["details"]["field"], "legs[0].odds", "{b}");
    let (s, b) = post(
        &app,
        "/api/v1/auth/register",
        None,
        json!({"username": 5, "email": "a@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["details"]["field"], "username");
}
