//! Results from the feed settle the book (issue 21): a provider's `result` pays bets
//! through the same settlement as a trader's; a repeat changes nothing; a
//! `result_rollback` takes the payouts back and reopens the bets until the corrected
//! result; a provisional result changes nothing.
mod common;
mod stream_support;
mod support_accounts;

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

async fn selection(app: &common::TestApp, event: Uuid, market: &str, name: &str) -> Uuid {
    app.db
        .client
        .query_one(
            "SELECT s.id FROM selections s JOIN markets m ON m.id = s.market_id
             WHERE m.event_id = $1 AND m.type = $2::text::market_type AND s.name = $3",
            &[&event, &market, &name],
        )
        .await
        .unwrap()
        .get(0)
}

async fn bettor_with_bet(app: &common::TestApp, sel: Uuid, odds: &str) -> (Uuid, String) {
    let (id, username) = support_accounts::register(app).await;
    let token = support_accounts::login(app, &username).await;
    let (s, b) = support_accounts::post(
        app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "50.00", "idempotency_key": "fund"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let body = json!({"type": "single", "stake": "10.00", "odds_change": "any",
                      "legs": [{"selection_id": sel, "odds": odds}], "idempotency_key": "b1"});
    let r = app
        .http
        .post(app.url("/api/v1/bets"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let answer: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(status, 201, "{answer}");
    (id, token)
}

/// `(bet status, balance)` of a bettor with one bet.
async fn state_of(app: &common::TestApp, user: Uuid) -> (String, Decimal) {
    let r = app
        .db
        .client
        .query_one(
            "SELECT (SELECT status::text FROM bets WHERE user_id = $1),
                    (SELECT balance FROM user_balances WHERE user_id = $1)",
            &[&user],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

async fn wait_state(app: &common::TestApp, user: Uuid, status: &str, balance: &str) {
    let want = (status.to_string(), balance.parse::<Decimal>().unwrap());
    common::wait_until(
        &format!("{user}: {want:?}"),
        Duration::from_secs(10),
        || async { state_of(app, user).await == want },
    )
    .await;
}

fn moneyline(home: &str, away: &str) -> Value {
    json!({"market": {"type": "moneyline"}, "results": [
        {"selection": "home", "result": home}, {"selection": "away", "result": away}]})
}

#[tokio::test]
async fn feed_results_settle_resettle_and_roll_back_the_book() {
    let app = support_accounts::spawn().await;
    let sport = stream_support::sport(&app).await;
    stream_support::push(&app, stream_support::fixture(1, "res-1", &sport)).await;
    let event = stream_support::event_id(&app, "res-1").await;
    let home = selection(&app, event, "moneyline", "home").await;
    let away = selection(&app, event, "moneyline", "away").await;
    let (a, _) = bettor_with_bet(&app, home, "2.1000").await;
    let (b, _) = bettor_with_bet(&app, away, "1.8000").await;
    for (seq, status) in [(2, "live"), (3, "finished")] {
        stream_support::push(
            &app,
            json!({"seq": seq, "event_ref": "res-1", "type": "status", "status": status}),
        )
        .await;
    }

    // A provisional result settles nothing.
    let answer = stream_support::push(
        &app,
        json!({"seq": 4, "event_ref": "res-1", "type": "result", "final": false,
               "markets": [moneyline("win", "loss")]}),
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "applied", "{answer}");
    assert_eq!(state_of(&app, a).await.0, "accepted");

    // The final result pays the home bettor: 50 - 10 + 21.
    let answer = stream_support::push(
        &app,
        json!({"seq": 5, "event_ref": "res-1", "type": "result",
               "markets": [moneyline("win", "loss"),
                           {"market": {"type": "total_points", "line": "2.5"}, "results": [
                               {"selection": "over", "result": "loss"},
                               {"selection": "under", "result": "win"}]}]}),
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "applied", "{answer}");
    wait_state(&app, a, "settled_win", "61.00").await;
    wait_state(&app, b, "settled_loss", "40.00").await;

    // The same message again is a duplicate; the same result under a new seq changes
    // nothing.
    let again = json!({"seq": 5, "event_ref": "res-1", "type": "result",
                       "markets": [moneyline("win", "loss")]});
    let answer = stream_support::push(&app, again).await;
    assert_eq!(answer["results"][0]["outcome"], "duplicate");
    let answer = stream_support::push(
        &app,
        json!({"seq": 6, "event_ref": "res-1", "type": "result", "markets": [moneyline("win", "loss")]}),
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "applied", "{answer}");
    assert_eq!(
        state_of(&app, a).await,
        ("settled_win".into(), "61.00".parse().unwrap())
    );

    // The provider got it wrong: a rollback reopens the bets and takes the payout back.
    let answer = stream_support::push(
        &app,
        json!({"seq": 7, "event_ref": "res-1", "type": "result_rollback",
               "markets": [{"type": "moneyline"}]}),
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "applied", "{answer}");
    wait_state(&app, a, "accepted", "40.00").await;
    wait_state(&app, b, "accepted", "40.00").await;

    // The corrected result pays the away bettor: 40 + 18.
    let answer = stream_support::push(
        &app,
        json!({"seq": 8, "event_ref": "res-1", "type": "result", "markets": [moneyline("loss", "win")]}),
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "applied", "{answer}");
    wait_state(&app, a, "settled_loss", "40.00").await;
    wait_state(&app, b, "settled_win", "58.00").await;

    // A result for an unknown selection is rejected with its reason, changing nothing.
    let answer = stream_support::push(
        &app,
        json!({"seq": 9, "event_ref": "res-1", "type": "result", "markets": [
            {"market": {"type": "moneyline"}, "results": [{"selection": "nobody", "result": "win"}]}]}),
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "rejected", "{answer}");

    let mut settings = common::test_settings();
    settings.database.url = app.db.url.clone();
    let violations = winzo::ledger_check::check_database(&settings.database)
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test]
async fn event_lists_show_upcoming_and_live_first_and_bets_filter_by_status() {
    let app = support_accounts::spawn().await;
    let sport = stream_support::sport(&app).await;
    for r in ["ls-a", "ls-b", "ls-c"] {
        stream_support::push(&app, stream_support::fixture(1, r, &sport)).await;
    }
    // ls-b goes live, ls-c is finished.
    stream_support::push(
        &app,
        json!({"seq": 2, "event_ref": "ls-b", "type": "status", "status": "live"}),
    )
    .await;
    stream_support::push(
        &app,
        json!({"seq": 2, "event_ref": "ls-c", "type": "status", "status": "live"}),
    )
    .await;
    stream_support::push(
        &app,
        json!({"seq": 3, "event_ref": "ls-c", "type": "status", "status": "finished"}),
    )
    .await;
    let (a, b, c) = (
        stream_support::event_id(&app, "ls-a").await,
        stream_support::event_id(&app, "ls-b").await,
        stream_support::event_id(&app, "ls-c").await,
    );
    let (s, page) =
        support_accounts::get(&app, &format!("/api/v1/sports/{sport}/events"), None).await;
    assert_eq!(s, 200, "{page}");
    let ids: Vec<String> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        vec![b.to_string(), a.to_string()],
        "live first, the finished one left out"
    );
    let (_, page) = support_accounts::get(
        &app,
        &format!("/api/v1/sports/{sport}/events?status=finished"),
        None,
    )
    .await;
    assert_eq!(page["events"][0]["id"], c.to_string());
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    let (s, err) = support_accounts::get(
        &app,
        &format!("/api/v1/sports/{sport}/events?status=over"),
        None,
    )
    .await;
    assert_eq!(s, 422, "{err}");

    // The bettor's history: wrapped, filtered by status, legs with their event's name.
    let home = selection(&app, a, "moneyline", "home").await;
    let (_, token) = bettor_with_bet(&app, home, "2.1000").await;
    let (s, page) = support_accounts::get(&app, "/api/v1/bets?status=accepted", Some(&token)).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["bets"].as_array().unwrap().len(), 1);
    assert!(page["bets"][0]["legs"][0]["event_name"]
        .as_str()
        .unwrap()
        .contains(" v "));
    let (_, page) =
        support_accounts::get(&app, "/api/v1/bets?status=settled_win", Some(&token)).await;
    assert_eq!(page["bets"].as_array().unwrap().len(), 0, "{page}");
    let (s, _) = support_accounts::get(&app, "/api/v1/bets?status=winning", Some(&token)).await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn a_market_a_trader_holds_refuses_the_feeds_result_and_is_settled_by_hand() {
    let app = support_accounts::spawn().await;
    let (_, trader) = support_accounts::staff(&app, "moderator").await;
    let sport = stream_support::sport(&app).await;
    stream_support::push(&app, stream_support::fixture(1, "hold-1", &sport)).await;
    let event = stream_support::event_id(&app, "hold-1").await;
    let home = selection(&app, event, "moneyline", "home").await;
    let away = selection(&app, event, "moneyline", "away").await;
    let market: Uuid = app
        .db
        .client
        .query_one("SELECT market_id FROM selections WHERE id = $1", &[&home])
        .await
        .unwrap()
        .get(0);
    let (a, _) = bettor_with_bet(&app, home, "2.1000").await;
    let (s, view) = support_accounts::patch(
        &app,
        &format!("/api/v1/trading/markets/{market}/settings"),
        Some(&trader),
        json!({"hold_feed_settlement": true}),
    )
    .await;
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["feed_settlement_held"], true);
    stream_support::push(
        &app,
        json!({"seq": 2, "event_ref": "hold-1", "type": "status", "status": "finished"}),
    )
    .await;
    let answer = stream_support::push(
        &app,
        json!({"seq": 3, "event_ref": "hold-1", "type": "result", "markets": [moneyline("win", "loss")]}),
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "rejected", "{answer}");
    assert!(answer["results"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("holds"));
    assert_eq!(state_of(&app, a).await.0, "accepted");
    // The trader settles it by hand (the other way round from the feed).
    let (s, b) = support_accounts::post(
        &app,
        &format!("/api/v1/trading/markets/{market}/settle"),
        Some(&trader),
        json!({"results": [{"selection_id": home, "result": "loss"},
                           {"selection_id": away, "result": "win"}]}),
    )
    .await;
    assert!(s == 200 || s == 202, "{b}");
    wait_state(&app, a, "settled_loss", "40.00").await;
}
