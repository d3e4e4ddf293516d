//! Profile, preferences (betting limits and their cooling-off) and self-exclusion.
mod common;
mod support_accounts;

use serde_json::json;
use support_accounts::*;

#[tokio::test]
async fn profile_reads_and_patches_with_validation() {
    let app = spawn().await;
    let (id, token) = bettor(&app).await;
    let (s, p) = get(&app, "/api/v1/me/profile", Some(&token)).await;
    assert_eq!(s, 200);
    assert_eq!(p["user_id"], id.to_string());
    assert_eq!(p["date_of_birth"], "1990-01-01");
    let (s, p) = patch(&app, "/api/v1/me/profile", Some(&token),
        json!({"first_name": "Ada", "country_code": "GB", "currency_code": "USD", "timezone": "Europe/London"})).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["first_name"], "Ada");
    assert_eq!(p["country_code"], "GB");
    // The account's currency is fixed at registration (issue 14, item 12).
    let (s, b) = patch(
        &app,
        "/api/v1/me/profile",
        Some(&token),
        json!({"currency_code": "GBP"}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_contract_error(&b, "currency_fixed");
    for bad in [
        json!({"country_code": "gb"}),
        json!({"currency_code": "POUND"}),
        json!({"currency_code": "XAU"}),
        json!({"first_name": ""}),
        json!({"date_of_birth": "2020-01-01"}),
        json!({"phone": "call me"}),
        json!({"nickname": "x"}),
        json!({"first_name": 5}),
    ] {
        let (s, b) = patch(&app, "/api/v1/me/profile", Some(&token), bad.clone()).await;
        assert_eq!(s, 422, "{bad} -> {b}");
    }
    let (_, p) = get(&app, "/api/v1/me/profile", Some(&token)).await;
    assert_eq!(p["country_code"], "GB", "refused patches changed nothing");
}

#[tokio::test]
async fn a_limit_is_lowered_at_once_but_raised_only_after_the_cooling_off() {
    let app = spawn().await;
    let (_, token) = bettor(&app).await;
    let (s, p) = get(&app, "/api/v1/me/preferences", Some(&token)).await;
    assert_eq!(s, 200);
    assert_eq!(
        p["betting_limits"]["daily"], "1000.00",
        "the schema default, as money"
    );
    let (s, p) = patch(&app, "/api/v1/me/preferences", Some(&token),
        json!({"odds_format": "decimal", "notifications": {"sms": true},
               "betting_limits": {"daily": "100.00"}, "responsible_gaming": {"session_timeout": 60}})).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["odds_format"], "decimal");
    assert_eq!(p["notifications"]["sms"], true);
    assert_eq!(p["notifications"]["email"], true, "other switches kept");
    assert_eq!(p["betting_limits"]["daily"], "100.00");
    assert_eq!(p["responsible_gaming"]["session_timeout"], 60);
    let (s, p) = patch(
        &app,
        "/api/v1/me/preferences",
        Some(&token),
        json!({"betting_limits": {"daily": "500.00"}}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(p["betting_limits"]["daily"], "100.00", "a raise waits");
    assert_eq!(p["betting_limits"]["pending"]["daily"]["amount"], "500.00");
    let at = chrono::DateTime::parse_from_rfc3339(
        p["betting_limits"]["pending"]["daily"]["effective_at"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        wait > chrono::Duration::hours(23) && wait <= chrono::Duration::hours(24),
        "{wait}"
    );
    for bad in [
        json!({"odds_format": "roman"}),
        json!({"betting_limits": {"daily": 100.0}}),
        json!({"betting_limits": {"daily": "0"}}),
        json!({"betting_limits": {"daily": "-1.00"}}),
        json!({"betting_limits": {"yearly": "1.00"}}),
        json!({"notifications": {"sms": "yes"}}),
        json!({"responsible_gaming": {"session_timeout": 0}}),
    ] {
        let (s, b) = patch(&app, "/api/v1/me/preferences", Some(&token), bad.clone()).await;
        assert_eq!(s, 422, "{bad} -> {b}");
    }
}

#[tokio::test]
async fn a_raise_takes_effect_once_the_cooling_off_has_passed() {
    let app = spawn_with(|s| s.accounts.limit_raise_cooling_off_s = 1).await;
    let (_, token) = bettor(&app).await;
    let (_, p) = patch(
        &app,
        "/api/v1/me/preferences",
        Some(&token),
        json!({"betting_limits": {"weekly": "9000.00"}}),
    )
    .await;
    assert_eq!(p["betting_limits"]["weekly"], "5000.00");
    // The cooling-off is a span of time: wait until the effective time the engine gave the
    // raise has passed.
    let at = chrono::DateTime::parse_from_rfc3339(
        p["betting_limits"]["pending"]["weekly"]["effective_at"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    common::wait_until(
        "the raise's effective_at to pass",
        std::time::Duration::from_secs(10),
        || async { chrono::Utc::now() > at },
    )
    .await;
    let (_, p) = get(&app, "/api/v1/me/preferences", Some(&token)).await;
    assert_eq!(p["betting_limits"]["weekly"], "9000.00");
}

#[tokio::test]
async fn self_exclusion_revokes_sessions_blocks_deposits_and_cannot_be_shortened() {
    let app = spawn().await;
    let (id, username) = register(&app).await;
    let token = login(&app, &username).await;
    let second = login(&app, &username).await;
    let (s, b) = post(
        &app,
        "/api/v1/me/self-exclusion",
        Some(&token),
        json!({"days": 30}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["self_excluded_until"].is_string());
    for t in [&token, &second] {
        let (s, _) = get(&app, "/api/v1/me/profile", Some(t)).await;
        assert_eq!(s, 401, "every session is revoked");
    }
    let token = login(&app, &username).await;
    let (s, b) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "5.00", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert_contract_error(&b, "account_restricted");
    let (s, b) = post(
        &app,
        "/api/v1/me/self-exclusion",
        Some(&token),
        json!({"days": 7}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_contract_error(&b, "self_exclusion_active");
    let (s, _) = post(
        &app,
        "/api/v1/me/self-exclusion",
        Some(&token),
        json!({"days": 60}),
    )
    .await;
    assert_eq!(s, 200, "it can be extended");
    for bad in [
        json!({"days": 0}),
        json!({"days": -1}),
        json!({"days": 1.5}),
        json!({"days": "7"}),
        json!({}),
        json!({"days": 100000}),
    ] {
        let (s, b) = post(&app, "/api/v1/me/self-exclusion", Some(&token), bad.clone()).await;
        assert!(s == 422 || s == 401, "{bad} -> {s} {b}");
    }
    let until: Option<chrono::DateTime<chrono::Utc>> = app
        .db
        .client
        .query_one(
            "SELECT self_excluded_until FROM users WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    let days = (until.unwrap() - chrono::Utc::now()).num_days();
    assert!((59..=60).contains(&days), "{days}");
    assert_eq!(count(&app, "SELECT count(*) FROM transactions").await, 0);
}

#[tokio::test]
async fn a_trader_suspending_a_user_revokes_sessions_and_the_audit_names_the_trader() {
    let app = spawn().await;
    let (user_id, token) = bettor(&app).await;
    let (trader_id, trader) = staff(&app, "moderator").await;
    let path = format!("/api/v1/trading/users/{user_id}");
    let (s, u) = patch(
        &app,
        &path,
        Some(&trader),
        json!({"status": "suspended", "stake_factor": "0.250", "max_stake": "50.00"}),
    )
    .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["status"], "suspended");
    assert_eq!(u["stake_factor"], "0.250");
    assert_eq!(u["max_stake"], "50.00");
    let (s, _) = get(&app, "/api/v1/me/profile", Some(&token)).await;
    assert_eq!(s, 401, "sessions revoked at once");
    let (s, u) = patch(
        &app,
        &path,
        Some(&trader),
        json!({"max_stake": null, "status": "active"}),
    )
    .await;
    assert_eq!(s, 200);
    assert!(u["max_stake"].is_null());
    let audited = app.db.client.query_one(
        "SELECT count(*) FROM audit_log WHERE table_name = 'users' AND record_id = $1 AND user_id = $2
           AND action = 'UPDATE' AND ip_address = '127.0.0.1'",
        &[&user_id, &trader_id]).await.unwrap().get::<_, i64>(0);
    assert_eq!(audited, 2);
    for bad in [
        json!({"status": "deleted"}),
        json!({"stake_factor": "0"}),
        json!({"stake_factor": 1.5}),
        json!({"max_stake": "-5"}),
        json!({"role": "admin"}),
    ] {
        let (s, b) = patch(&app, &path, Some(&trader), bad.clone()).await;
        assert_eq!(s, 422, "{bad} -> {b}");
    }
    let (s, _) = patch(
        &app,
        &format!("/api/v1/trading/users/{}", uuid::Uuid::new_v4()),
        Some(&trader),
        json!({"status": "active"}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = get(&app, "/api/v1/trading/users/not-a-uuid", Some(&trader)).await;
    assert_eq!(s, 404);
}
