//! Registration, login, logout, session revocation, throttling and security events.
mod common;
mod support_accounts;

use serde_json::json;
use support_accounts::*;

#[tokio::test]
async fn register_login_logout_and_the_token_is_revoked_at_once() {
    let app = spawn().await;
    let (id, username) = register(&app).await;
    let (status, body) = post(
        &app,
        "/api/v1/auth/login",
        None,
        json!({"login": username.to_uppercase(), "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], id.to_string());
    assert!(body["expires_at"].is_string());
    assert!(body["user"].get("password_hash").is_none());
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 22, "at least 128 bits");
    let (status, _) = get(&app, "/api/v1/me/profile", Some(&token)).await;
    assert_eq!(status, 200);
    let (status, _) = post(&app, "/api/v1/auth/logout", Some(&token), json!({})).await;
    assert_eq!(status, 204);
    let (status, body) = get(&app, "/api/v1/me/profile", Some(&token)).await;
    assert_eq!(status, 401);
    assert_contract_error(&body, "unauthorized");
}

#[tokio::test]
async fn login_by_email_in_any_case_works() {
    let app = spawn().await;
    let (_, username) = register(&app).await;
    let token = login(&app, &format!("{}@EXAMPLE.com", username.to_uppercase())).await;
    assert!(!token.is_empty());
}

#[tokio::test]
async fn under_age_registration_is_refused_and_nothing_is_stored() {
    let app = spawn().await;
    let dob = (chrono::Utc::now().date_naive() - chrono::Duration::days(365 * 17)).to_string();
    let (status, body) = post(
        &app,
        "/api/v1/auth/register",
        None,
        json!({"username": "younguser", "email": "young@example.com", "password": PASSWORD, "date_of_birth": dob}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_contract_error(&body, "under_age");
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn duplicate_email_in_another_case_is_refused() {
    let app = spawn().await;
    let body = |u: &str, e: &str| json!({"username": u, "email": e, "password": PASSWORD});
    let (s, _) = post(
        &app,
        "/api/v1/auth/register",
        None,
        body("first", "Same@Example.com"),
    )
    .await;
    assert_eq!(s, 201);
    let (s, b) = post(
        &app,
        "/api/v1/auth/register",
        None,
        body("second", "same@EXAMPLE.COM"),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_contract_error(&b, "email_taken");
    let (s, b) = post(
        &app,
        "/api/v1/auth/register",
        None,
        body("FIRST", "other@example.com"),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_contract_error(&b, "username_taken");
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn weak_or_malformed_registrations_are_422() {
    let app = spawn().await;
    for body in [
        json!({"username": "ab", "email": "a@example.com", "password": PASSWORD}),
        json!({"username": "okname", "email": "not-an-email", "password": PASSWORD}),
        json!({"username": "okname", "email": "a@example.com", "password": "short"}),
        json!({"username": "okname", "email": "a@example.com", "password": PASSWORD, "date_of_birth": "01/02/1990"}),
        json!({"username": "okname", "email": "a@example.com", "password": PASSWORD, "country_code": "gbr"}),
        json!({"username": 12, "email": "a@example.com", "password": PASSWORD}),
        json!({"email": "a@example.com", "password": PASSWORD}),
    ] {
        let (s, b) = post(&app, "/api/v1/auth/register", None, body.clone()).await;
        assert_eq!(s, 422, "{body} -> {b}");
        assert!(b["error"]["code"].is_string());
    }
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn malformed_json_is_400_and_an_oversized_body_is_413() {
    let app = spawn().await;
    let r = app
        .http
        .post(app.url("/api/v1/auth/register"))
        .header("Content-Type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_contract_error(&r.json().await.unwrap(), "bad_request");
    let huge = "x".repeat(app.settings.server.json_body_max_bytes + 10);
    let r = app
        .http
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"username": huge, "email": "a@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_contract_error(&r.json().await.unwrap(), "payload_too_large");
}

#[tokio::test]
async fn wrong_password_is_401_and_written_to_system_events() {
    let app = spawn().await;
    let (id, username) = register(&app).await;
    let (s, b) = post(
        &app,
        "/api/v1/auth/login",
        None,
        json!({"login": username, "password": "wrong password!"}),
    )
    .await;
    assert_eq!(s, 401);
    assert_contract_error(&b, "invalid_credentials");
    let (s, _) = post(
        &app,
        "/api/v1/auth/login",
        None,
        json!({"login": "nobody-here", "password": "wrong password!"}),
    )
    .await;
    assert_eq!(s, 401);
    // The event is written in the background: wait for it.
    let failed = || {
        count(
            &app,
            "SELECT count(*) FROM system_events WHERE event_type = 'login_failed'",
        )
    };
    common::wait_until(
        "both failed logins to be recorded",
        std::time::Duration::from_secs(10),
        || async { failed().await >= 2 },
    )
    .await;
    let found = failed().await;
    assert_eq!(found, 2);
    let with_user = app
        .db
        .client
        .query_one(
            "SELECT count(*) FROM system_events WHERE event_type = 'login_failed' AND user_id = $1
               AND ip_address = '127.0.0.1'",
            &[&id],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(with_user, 1);
}

#[tokio::test]
async fn repeated_failed_logins_are_rate_limited_per_account_with_retry_after() {
    let app = spawn_with(|s| {
        s.auth.login_failures_per_account_max = 3;
        s.auth.login_failure_window_s = 120;
    })
    .await;
    let (_, username) = register(&app).await;
    for _ in 0..3 {
        let (s, _) = post(
            &app,
            "/api/v1/auth/login",
            None,
            json!({"login": username, "password": "wrong password!"}),
        )
        .await;
        assert_eq!(s, 401);
    }
    // Even the right password is refused while the account is throttled.
    let r = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"login": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["Retry-After"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&retry), "{retry}");
    assert_contract_error(&r.json().await.unwrap(), "rate_limited");
    // Another account from the same address is not throttled by the account counter.
    let (_, other) = register(&app).await;
    login(&app, &other).await;
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_address() {
    let app = spawn_with(|s| {
        s.auth.login_failures_per_address_max = 4;
        s.auth.login_failures_per_account_max = 100;
    })
    .await;
    for i in 0..4 {
        let (s, _) = post(
            &app,
            "/api/v1/auth/login",
            None,
            json!({"login": format!("ghost{i}"), "password": "wrong password!"}),
        )
        .await;
        assert_eq!(s, 401);
    }
    let (_, username) = register(&app).await;
    let (s, b) = post(
        &app,
        "/api/v1/auth/login",
        None,
        json!({"login": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 429, "{b}");
}

#[tokio::test]
async fn create_user_makes_staff_that_can_sign_in() {
    let app = spawn().await;
    let (id, token) = staff(&app, "admin").await;
    let role: String = app
        .db
        .client
        .query_one("SELECT role::text FROM users WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(role, "admin");
    let (s, _) = get(&app, "/api/v1/trading/audit", Some(&token)).await;
    assert_eq!(s, 200);
    let err = winzo::accounts::register::create_user(
        &app.settings.database,
        &app.settings.accounts.currencies,
        "overlord",
        "xyzname",
        "x@example.com",
        PASSWORD,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("unknown role"), "{err}");
}

#[tokio::test]
async fn a_suspended_account_cannot_sign_in() {
    let app = spawn().await;
    let (id, username) = register(&app).await;
    app.db
        .client
        .execute(
            "UPDATE users SET status = 'suspended' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let (s, b) = post(
        &app,
        "/api/v1/auth/login",
        None,
        json!({"login": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 403);
    assert_contract_error(&b, "account_restricted");
}

#[tokio::test]
async fn openapi_documents_every_accounts_path() {
    let app = spawn().await;
    let (_, doc) = get(&app, "/api-docs/openapi.json", None).await;
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me/profile", "get"),
        ("/api/v1/me/profile", "patch"),
        ("/api/v1/me/preferences", "patch"),
        ("/api/v1/me/self-exclusion", "post"),
        ("/api/v1/me/payment-methods", "post"),
        ("/api/v1/wallet", "get"),
        ("/api/v1/wallet/deposits", "post"),
        ("/api/v1/wallet/withdrawals", "post"),
        ("/api/v1/wallet/transactions", "get"),
        ("/api/v1/trading/audit", "get"),
        ("/api/v1/trading/users/{id}", "patch"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} documented"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let (s, b) = get(&app, "/api/v1/auth/login", None).await;
    assert_eq!(s, 405, "{b}");
}

#[tokio::test]
async fn the_create_user_command_reads_the_password_from_stdin() {
    use std::io::Write;
    let app = spawn().await;
    let username = unique("cli");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_winzo"))
        .args([
            "create-user",
            "--role",
            "moderator",
            "--username",
            &username,
            "--email",
        ])
        .arg(format!("{username}@example.com"))
        .env("WINZO_ENV", "test")
        .env("DATABASE_URL", &app.db.url)
        .env_remove("WINZO_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let token = login(&app, &username).await;
    let (s, _) = get(&app, "/api/v1/trading/audit", Some(&token)).await;
    assert_eq!(s, 200, "a moderator reads the trading routes");
}

#[tokio::test]
async fn a_logout_on_one_node_revokes_the_session_cached_by_another_at_once() {
    let a = spawn().await;
    let b = common::spawn_app_on(&a.db).await;
    let (_, username) = register(&a).await;
    let (status, body) = post(
        &a,
        "/api/v1/auth/login",
        None,
        json!({"login": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    // Node b verifies the token (and caches it), twice.
    for _ in 0..2 {
        let (status, _) = get(&b, "/api/v1/me/profile", Some(&token)).await;
        assert_eq!(status, 200);
    }
    let (status, _) = post(&a, "/api/v1/auth/logout", Some(&token), json!({})).await;
    assert_eq!(status, 204);
    // The revocation is pushed to b: refused well before the cache's own expiry (5 s).
    // The 2 s deadline is the point: well inside the cache's 5 s.
    common::wait_until(
        "node b to refuse the revoked token (it still accepts it)",
        std::time::Duration::from_secs(2),
        || async {
            let (status, _) = get(&b, "/api/v1/me/profile", Some(&token)).await;
            if status != 401 {
                assert_eq!(status, 200);
            }
            status == 401
        },
    )
    .await;
}
