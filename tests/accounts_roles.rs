//! Each role against each protected route class, allowed and forbidden, and the
//! authorization failures written to `system_events`.
mod common;
mod support_accounts;

use serde_json::json;
use support_accounts::*;
use winzo::auth::roles::{allowed, Role, RouteClass};

#[tokio::test]
async fn each_role_against_each_route_class() {
    let app = spawn().await;
    let (target, _) = register(&app).await;
    let target_path = format!("/api/v1/trading/users/{target}");
    for (role_name, role) in [
        ("user", Role::User),
        ("support", Role::Support),
        ("moderator", Role::Moderator),
        ("admin", Role::Admin),
    ] {
        let (_, token) = staff(&app, role_name).await;
        // Account class: /me/profile.
        let (s, _) = get(&app, "/api/v1/me/profile", Some(&token)).await;
        assert_eq!(s, 200, "{role_name} on an account route");
        // Trading read: the audit trail and a user's controls.
        let want = if allowed(role, RouteClass::TradingRead) {
            200
        } else {
            403
        };
        let (s, b) = get(&app, "/api/v1/trading/audit", Some(&token)).await;
        assert_eq!(s, want, "{role_name} on GET /trading/audit: {b}");
        let (s, _) = get(&app, &target_path, Some(&token)).await;
        assert_eq!(s, want, "{role_name} on GET /trading/users/{{id}}");
        if want == 403 {
            assert_contract_error(&b, "forbidden");
        }
        // Trading write: PATCH a user's controls.
        let want = if allowed(role, RouteClass::TradingWrite) {
            200
        } else {
            403
        };
        let (s, b) = patch(
            &app,
            &target_path,
            Some(&token),
            json!({"stake_factor": "0.5"}),
        )
        .await;
        assert_eq!(s, want, "{role_name} on PATCH /trading/users/{{id}}: {b}");
    }
    // The table the extractors use: support reads, moderators and admins write, only
    // admins reach admin routes.
    assert!(!allowed(Role::User, RouteClass::TradingRead));
    assert!(allowed(Role::Support, RouteClass::TradingRead));
    assert!(!allowed(Role::Support, RouteClass::TradingWrite));
    assert!(allowed(Role::Moderator, RouteClass::TradingWrite));
    assert!(!allowed(Role::Moderator, RouteClass::Admin));
    assert!(allowed(Role::Admin, RouteClass::Admin));
}

#[tokio::test]
async fn no_or_bad_token_is_401_on_every_protected_class() {
    let app = spawn().await;
    let id = uuid::Uuid::new_v4();
    for token in [None, Some("garbage-token")] {
        let (s, _) = get(&app, "/api/v1/me/profile", token).await;
        assert_eq!(s, 401);
        let (s, _) = get(&app, "/api/v1/trading/audit", token).await;
        assert_eq!(s, 401);
        let (s, _) = patch(
            &app,
            &format!("/api/v1/trading/users/{id}"),
            token,
            json!({}),
        )
        .await;
        assert_eq!(s, 401);
    }
}

#[tokio::test]
async fn authorization_failures_are_written_to_system_events() {
    let app = spawn().await;
    let (id, token) = bettor(&app).await;
    let (s, _) = get(&app, "/api/v1/trading/audit", Some(&token)).await;
    assert_eq!(s, 403);
    let (s, _) = get(&app, "/api/v1/me/profile", Some("bad-token")).await;
    assert_eq!(s, 401);
    let seen = std::cell::Cell::new((0, 0));
    common::wait_until(
        "one access_denied and one auth_failed event",
        std::time::Duration::from_secs(10),
        || async {
            let denied = app
            .db
            .client
            .query_one(
                "SELECT count(*) FROM system_events WHERE event_type = 'access_denied' AND user_id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        let failed = count(
            &app,
            "SELECT count(*) FROM system_events WHERE event_type = 'auth_failed'",
        )
        .await;
            seen.set((denied, failed));
            denied >= 1 && failed >= 1
        },
    )
    .await;
    assert_eq!(seen.get(), (1, 1));
}
