//! Malformed and hostile input on every endpoint of the accounts issue: wrong types,
//! missing fields, huge strings, SQL-like strings, bad UTF-8, floats for money. Each is
//! answered with a contract error (never a 500, never a panic) and nothing is stored.
mod common;
mod support_accounts;

use serde_json::{json, Value};
use support_accounts::*;

const SQL: &str = "'; DROP TABLE users; --";

/// Bodies that no endpoint may accept, as raw bytes.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let huge = "x".repeat(60_000);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    vec![
        b"".to_vec(),
        b"not json".to_vec(),
        b"{\"unterminated\": ".to_vec(),
        b"[]".to_vec(),
        b"42".to_vec(),
        b"\"string\"".to_vec(),
        b"null".to_vec(),
        b"{}".to_vec(),
        b"{\"amount\": \"\xff\xfe\", \"username\": \"\xc3\x28\"}".to_vec(),
        deep.into_bytes(),
        json!({"username": huge, "email": huge, "password": huge, "login": huge, "amount": huge,
               "idempotency_key": huge, "first_name": huge, "status": huge, "days": huge,
               "type": huge, "name": huge, "odds_format": huge})
        .to_string()
        .into_bytes(),
        json!({"username": SQL, "email": SQL, "password": 1, "login": [SQL], "amount": SQL,
               "idempotency_key": SQL, "country_code": SQL, "status": SQL, "days": SQL,
               "type": SQL, "odds_format": SQL, "stake_factor": SQL})
        .to_string()
        .into_bytes(),
        json!({"amount": 10.5, "idempotency_key": "float", "days": 1.5, "stake_factor": 0.5,
               "max_stake": 10.25, "betting_limits": {"daily": 10.5}, "username": 1.5,
               "email": true, "password": null, "login": {}, "type": "credit_card", "name": 3})
        .to_string()
        .into_bytes(),
        json!({"amount": "1e5", "idempotency_key": "exp", "days": -3, "max_stake": "NaN",
               "stake_factor": "Infinity", "odds_format": null, "notifications": [true]})
        .to_string()
        .into_bytes(),
    ]
}

async fn send(
    app: &common::TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut r = match method {
        "POST" => app.http.post(app.url(path)),
        "PATCH" => app.http.patch(app.url(path)),
        _ => unreachable!(),
    }
    .header("Content-Type", "application/json")
    .body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let res = r.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn hostile_bodies_on_every_endpoint_get_contract_errors_and_store_nothing() {
    let app = spawn_with(|s| {
        s.auth.login_failures_per_account_max = 10_000;
        s.auth.login_failures_per_address_max = 10_000;
    })
    .await;
    let (user_id, token) = bettor(&app).await;
    let (_, trader) = staff(&app, "admin").await;
    let before_users = count(&app, "SELECT count(*) FROM users").await;
    let before_profile: String = app
        .db
        .client
        .query_one(
            "SELECT (to_jsonb(p) - 'updated_at')::text FROM user_profiles p WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0);
    let before_prefs: String = app
        .db
        .client
        .query_one(
            "SELECT (to_jsonb(p) - 'updated_at' - 'betting_limits')::text FROM user_preferences p WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0);
    let user_path = format!("/api/v1/trading/users/{user_id}");
    let endpoints: Vec<(&str, &str, Option<&str>)> = vec![
        ("POST", "/api/v1/auth/register", None),
        ("POST", "/api/v1/auth/login", None),
        ("PATCH", "/api/v1/me/profile", Some(&token)),
        ("PATCH", "/api/v1/me/preferences", Some(&token)),
        ("POST", "/api/v1/me/self-exclusion", Some(&token)),
        ("POST", "/api/v1/wallet/deposits", Some(&token)),
        ("POST", "/api/v1/wallet/withdrawals", Some(&token)),
        ("POST", "/api/v1/me/payment-methods", Some(&token)),
        ("PATCH", &user_path, Some(&trader)),
    ];
    for (method, path, tok) in &endpoints {
        for body in hostile_bodies() {
            let shown = String::from_utf8_lossy(&body)
                .chars()
                .take(80)
                .collect::<String>();
            let (status, answer) = send(&app, method, path, *tok, body).await;
            let login_ok = *path == "/api/v1/auth/login" && status == 401;
            // `{}` is a valid (empty) patch of preferences, a trader's patch and a profile.
            let empty_patch = shown == "{}" && *method == "PATCH" && status == 200;
            assert!(
                matches!(status, 400 | 413 | 422) || login_ok || empty_patch,
                "{method} {path} with {shown:?} -> {status} {answer}"
            );
            if !empty_patch {
                assert!(
                    answer["error"]["code"].is_string(),
                    "{method} {path} {shown:?}: {answer}"
                );
            }
        }
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM users").await,
        before_users
    );
    assert_eq!(count(&app, "SELECT count(*) FROM transactions").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM payment_methods").await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE self_excluded_until IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE status <> 'active' OR stake_factor <> 1"
        )
        .await,
        0
    );
    let after_profile: String = app
        .db
        .client
        .query_one(
            "SELECT (to_jsonb(p) - 'updated_at')::text FROM user_profiles p WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0);
    let after_prefs: String = app
        .db
        .client
        .query_one(
            "SELECT (to_jsonb(p) - 'updated_at' - 'betting_limits')::text FROM user_preferences p WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(after_profile, before_profile);
    assert_eq!(after_prefs, before_prefs);
    // An empty patch may rewrite the limits in their canonical form, never change them.
    let (_, prefs) = get(&app, "/api/v1/me/preferences", Some(&token)).await;
    assert_eq!(prefs["betting_limits"]["daily"], "1000.00");
    assert_eq!(prefs["betting_limits"]["pending"], json!({}));
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the server is still up");
}

#[tokio::test]
async fn hostile_tokens_and_query_strings_are_refused_cleanly() {
    let app = spawn().await;
    let (_, token) = bettor(&app).await;
    let (_, admin) = staff(&app, "admin").await;
    let long = "a".repeat(5000);
    for bad in [SQL, "Bearer", long.as_str(), "\u{0}"] {
        let r = app
            .http
            .get(app.url("/api/v1/me/profile"))
            .header("Authorization", format!("Bearer {bad}"))
            .send()
            .await;
        if let Ok(r) = r {
            assert_eq!(r.status(), 401, "{bad:?}");
        }
        let r = app
            .http
            .post(app.url("/api/v1/auth/logout"))
            .header("Authorization", format!("Bearer {bad}"))
            .send()
            .await;
        if let Ok(r) = r {
            assert_eq!(r.status(), 401);
        }
    }
    for q in [
        "limit=abc",
        "limit=-1",
        "offset=-5",
        "limit=1.5",
        "offset=99999999999999999999",
    ] {
        let (s, b) = get(
            &app,
            &format!("/api/v1/wallet/transactions?{q}"),
            Some(&token),
        )
        .await;
        assert!(s == 400 || s == 422, "{q} -> {s} {b}");
        assert!(b["error"]["code"].is_string());
    }
    for q in [
        "table=users%27%3B--",
        "user_id=%27%20OR%201%3D1",
        "from=yesterday",
        "to=1e9",
        "limit=100000",
        "offset=-1",
    ] {
        let (s, b) = get(&app, &format!("/api/v1/trading/audit?{q}"), Some(&admin)).await;
        assert!(s == 400 || s == 422, "{q} -> {s} {b}");
        assert!(b["error"]["code"].is_string());
    }
    // A SQL-like but valid name is stored verbatim: parameters, never formatted SQL.
    let (s, p) = patch(
        &app,
        "/api/v1/me/profile",
        Some(&token),
        json!({"last_name": SQL}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(p["last_name"], SQL);
    assert!(count(&app, "SELECT count(*) FROM users").await >= 2);
}
