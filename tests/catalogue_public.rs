//! The public catalogue: sports, a sport's events (paged), one event with live odds in
//! the caller's format (preference of a signed-in caller first), and full-text search.
mod common;
mod markets_support;

use markets_support::{account, create_book, get, post};
use serde_json::json;
use winzo::auth::Role;

#[tokio::test]
async fn sports_events_and_search_answer_from_live_state() {
    let app = common::spawn_app().await;
    let (_, token) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &token).await;
    let (s, sports) = get(&app.http, app.url("/api/v1/sports")).await;
    assert_eq!(s, 200);
    assert!(sports["sports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["slug"] == book.sport_slug.as_str()));

    let (s, page) = get(
        &app.http,
        app.url(&format!(
            "/api/v1/sports/{}/events?limit=10",
            book.sport_slug
        )),
    )
    .await;
    assert_eq!(s, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], book.event_id.to_string());
    assert_eq!(events[0]["market_count"], 2);
    // The league travels with the event (null for an event without one).
    assert!(events[0].get("league_id").is_some() && events[0].get("league_name").is_some());
    let (s, _) = get(
        &app.http,
        app.url(&format!(
            "/api/v1/sports/{}/events?limit=0",
            book.sport_slug
        )),
    )
    .await;
    assert_eq!(s, 422);
    let (s, body) = get(&app.http, app.url("/api/v1/sports/no-such-sport/events")).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // A live status change shows at once in the listing.
    let (s, _) = post(
        &app.http,
        app.url(&format!("/api/v1/trading/events/{}/status", book.event_id)),
        &token,
        json!({"status": "live"}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, page) = get(
        &app.http,
        app.url(&format!("/api/v1/sports/{}/events", book.sport_slug)),
    )
    .await;
    assert_eq!(page["events"][0]["status"], "live");

    let (s, found) = get(&app.http, app.url("/api/v1/search?q=Harbour%20Rovers")).await;
    assert_eq!(s, 200, "{found}");
    assert!(found["teams"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["display_name"] == "Harbour Rovers"));
    assert!(
        found["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == book.event_id.to_string()),
        "{found}"
    );
    let (s, _) = get(&app.http, app.url("/api/v1/search?q=")).await;
    assert_eq!(s, 422);
    let (s, _) = get(
        &app.http,
        app.url(&format!("/api/v1/events/{}", uuid::Uuid::new_v4())),
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_signed_in_callers_odds_format_preference_wins() {
    let app = common::spawn_app().await;
    let (_, token) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &token).await;
    let (bettor_id, bettor) = account(&app.db.client, Role::User).await;
    app.db
        .client
        .execute(
            "INSERT INTO user_preferences (user_id, odds_format) VALUES ($1, 'fractional')",
            &[&bettor_id],
        )
        .await
        .unwrap();
    let r = app
        .http
        .get(app.url(&format!(
            "/api/v1/events/{}?odds_format=american",
            book.event_id
        )))
        .bearer_auth(&bettor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ev: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ev["odds_format"], "fractional");
    // 2.5000 → 3/2 on the total market's first selection.
    assert_eq!(ev["markets"][1]["selections"][0]["odds_display"], "3/2");
    assert_eq!(ev["markets"][1]["selections"][0]["odds"], "2.5000");
}
