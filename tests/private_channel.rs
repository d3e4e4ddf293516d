//! The private channel and the bet metrics as the contract promises them (issue 21): a
//! `balance` message after a deposit and after a bet, and bets counted by channel and
//! outcome with their latency, REST and WebSocket alike.
mod common;
mod markets_support;
mod stream_support;
mod support_accounts;

use serde_json::json;

#[tokio::test]
async fn deposits_and_bets_send_the_balance_and_bets_are_counted_by_channel() {
    let app = support_accounts::spawn().await;
    let (_, trader) = support_accounts::staff(&app, "moderator").await;
    let book = markets_support::create_book(&app.http, &app.address, &trader).await;
    let over = book.selections[1][0];
    let (_, token) = support_accounts::bettor(&app).await;
    let mut ws = stream_support::connect(&app, "").await;
    stream_support::send(&mut ws, json!({"op": "auth", "id": 1, "token": token})).await;
    stream_support::next_of(&mut ws, "authenticated").await;

    let (s, b) = support_accounts::post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "50.00", "idempotency_key": "d1"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let m = stream_support::next_of(&mut ws, "balance").await;
    assert_eq!(m["data"]["balance"], "50.00", "{m}");

    let bet = |key: &str, odds: &str| {
        json!({"op": "place_bet", "id": key, "type": "single", "stake": "10.00",
               "legs": [{"selection_id": over, "odds": odds}], "idempotency_key": key})
    };
    stream_support::send(&mut ws, bet("b1", "2.5000")).await;
    let (mut answered, mut balance) = (None, None);
    while answered.is_none() || balance.is_none() {
        let m = stream_support::next_json(&mut ws).await;
        match m["type"].as_str() {
            Some("bet_result") => answered = Some(m),
            Some("balance") => balance = Some(m),
            _ => {}
        }
    }
    assert_eq!(answered.unwrap()["status"], 201);
    let balance = balance.unwrap();
    assert_eq!(balance["data"]["balance"], "40.00", "{balance}");
    assert_eq!(balance["data"]["pending_balance"], "0.00", "{balance}");
    // A refused bet over WebSocket is counted with its reason.
    stream_support::send(&mut ws, bet("b2", "9.0000")).await;
    let refused = stream_support::next_of(&mut ws, "error").await;
    assert_eq!(refused["code"], "odds_changed", "{refused}");

    let prefix = "winzo_bets_total{channel=\"websocket\",outcome=";
    assert_eq!(
        common::metric(&app, &format!("{prefix}\"accepted\"}} ")).await,
        1
    );
    assert_eq!(
        common::metric(&app, &format!("{prefix}\"odds_changed\"}} ")).await,
        1
    );
    let timed = "winzo_bet_seconds_count{channel=\"websocket\",result=\"accepted\"} ";
    assert_eq!(common::metric(&app, timed).await, 1);
}
