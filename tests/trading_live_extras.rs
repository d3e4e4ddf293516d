//! Event status with period and clock against the real engine: validated, applied to the
//! EventActor, persisted, broadcast in `event_status`, shown by `GET /events/{id}`.
mod common;
mod markets_support;
mod stream_support;

use markets_support::{account, create_book, get, post};
use serde_json::json;
use winzo::auth::Role;

#[tokio::test]
async fn event_status_sets_period_and_clock_everywhere() {
    let app = common::spawn_app().await;
    let (_, token) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &token).await;
    let e = book.event_id;
    let url = app.url(&format!("/api/v1/trading/events/{e}/status"));

    let mut ws = stream_support::connect(&app, "").await;
    stream_support::send(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "topics": [format!("event:{e}")]}),
    )
    .await;
    let snap = stream_support::next_json(&mut ws).await;
    assert_eq!(snap["type"], "snapshot", "{snap}");

    // Invalid values are 422 and change nothing.
    for bad in [
        json!({"status": "live", "period": ""}),
        json!({"status": "live", "clock": "x".repeat(21)}),
        json!({"status": "live", "period": "1\tH"}),
        json!({"status": "live", "period": 1}),
    ] {
        let (s, body) = post(&app.http, url.clone(), &token, bad.clone()).await;
        assert!(s == 422 || s == 400, "{bad}: {s} {body}");
    }
    let (_, ev) = get(&app.http, app.url(&format!("/api/v1/events/{e}"))).await;
    assert_eq!(ev["status"], "scheduled", "{ev}");

    let (s, body) = post(
        &app.http,
        url.clone(),
        &token,
        json!({"status": "live", "period": "1H", "clock": "00:00"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["event"]["period"], "1H");
    assert_eq!(body["event"]["clock"], "00:00");
    let delta = stream_support::next_json(&mut ws).await;
    assert_eq!(delta["type"], "event_status", "{delta}");
    assert_eq!(delta["data"]["status"], "live");
    assert_eq!(delta["data"]["period"], "1H");
    assert_eq!(delta["data"]["clock"], "00:00");

    // The same status again moves only period and clock.
    let (s, body) = post(
        &app.http,
        url.clone(),
        &token,
        json!({"status": "live", "clock": "12:34"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    loop {
        let m = stream_support::next_json(&mut ws).await;
        if m["type"] == "event_status" {
            assert_eq!(m["data"]["period"], "1H", "{m}");
            assert_eq!(m["data"]["clock"], "12:34", "{m}");
            break;
        }
    }
    // Without period or clock, the same status is still a 409.
    let (s, body) = post(&app.http, url.clone(), &token, json!({"status": "live"})).await;
    assert_eq!(s, 409, "{body}");

    let (s, ev) = get(&app.http, app.url(&format!("/api/v1/events/{e}"))).await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            ev["status"].as_str(),
            ev["period"].as_str(),
            ev["clock"].as_str()
        ),
        (Some("live"), Some("1H"), Some("12:34")),
        "{ev}"
    );
    let row = app
        .db
        .client
        .query_one(
            "SELECT status::text, period, clock FROM events WHERE id = $1",
            &[&e],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "live");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("1H"));
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("12:34"));
}
