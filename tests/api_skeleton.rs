//! The engine skeleton: health, readiness, metrics, OpenAPI and the contract's error body.
mod common;

use serde_json::Value;

fn assert_contract_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(body["error"]["message"].is_string(), "body: {body}");
    assert!(body["error"]["details"].is_object(), "body: {body}");
}

#[tokio::test]
async fn health_ready_and_metrics_answer() {
    let app = common::spawn_app().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["database"], true);
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("winzo_http_requests_total"), "{text}");
}

#[tokio::test]
async fn openapi_document_is_served() {
    let app = common::spawn_app().await;
    let doc: Value = app
        .http
        .get(app.url("/api-docs/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/readyz"].is_object());
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = common::spawn_app().await;
    let r = app
        .http
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_contract_error(&r.json().await.unwrap(), "not_found");
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let app = common::spawn_app().await;
    let r = app.http.post(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_contract_error(&r.json().await.unwrap(), "method_not_allowed");
}
