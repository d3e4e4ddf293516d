//! Helpers shared by the account, wallet and audit tests: unique accounts, logins, staff.
#![allow(dead_code)]

use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{self, TestApp};

pub const PASSWORD: &str = "correct horse battery";

/// An app whose failed-login counters live under their own Redis prefix, so the tests
/// never throttle each other (or other suites) through the shared 127.0.0.1 counter.
pub async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(adjust: impl FnOnce(&mut winzo::config::Settings)) -> TestApp {
    common::spawn_app_with(|s| {
        s.auth.login_rate_key_prefix = format!("winzo:test:{}", Uuid::new_v4().simple());
        adjust(s);
    })
    .await
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..10])
}

pub async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = app.http.post(app.url(path)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let res = r.send().await.expect("request");
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

pub async fn patch(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = app.http.patch(app.url(path)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let res = r.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = app.http.get(app.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let res = r.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Registers a fresh adult bettor; answers `(user_id, username)`.
pub async fn register(app: &TestApp) -> (Uuid, String) {
    let username = unique("u");
    let (status, body) = post(
        app,
        "/api/v1/auth/register",
        None,
        json!({"username": username, "email": format!("{username}@example.com"),
               "password": PASSWORD, "date_of_birth": "1990-01-01"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (body["id"].as_str().unwrap().parse().unwrap(), username)
}

pub async fn login(app: &TestApp, login: &str) -> String {
    let (status, body) = post(
        app,
        "/api/v1/auth/login",
        None,
        json!({"login": login, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// A registered, signed-in bettor: `(user_id, token)`.
pub async fn bettor(app: &TestApp) -> (Uuid, String) {
    let (id, username) = register(app).await;
    (id, login(app, &username).await)
}

/// A signed-in account with `role`, created like `winzo create-user`: `(user_id, token)`.
pub async fn staff(app: &TestApp, role: &str) -> (Uuid, String) {
    let username = unique(role);
    let user = winzo::accounts::register::create_user(
        &app.settings.database,
        &app.settings.accounts.currencies,
        role,
        &username,
        &format!("{username}@example.com"),
        PASSWORD,
    )
    .await
    .expect("create-user");
    (user.id.as_uuid(), login(app, &username).await)
}

pub async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db.client.query_one(sql, &[]).await.expect(sql).get(0)
}

pub fn assert_contract_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(body["error"]["message"].is_string(), "body: {body}");
    assert!(body["error"]["details"].is_object(), "body: {body}");
}
