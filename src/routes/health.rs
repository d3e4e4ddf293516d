//! Operations endpoints: liveness, readiness, metrics.
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "process is up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 only when Postgres answers and all live state is recovered.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db_ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), crate::db::ping(&state.db)).await,
        Ok(Ok(()))
    );
    let recovered = state.is_recovered();
    let body = json!({"database": db_ok, "recovered": recovered});
    if db_ok && recovered {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "error": {"code": "not_ready", "message": "engine not ready", "details": body}
        }))
    }
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body({
            state.metrics.refresh_live(&state.registry, &state.hub);
            state.metrics.render()
        })
}
