//! Operations endpoints for administrators: `GET /api/v1/trading/db-health`, the seed's
//! monitoring queries (corrected for Postgres 15) and the WAL archiver's state.
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::db::health::{self, HealthLimits};
use crate::routes::error::ApiError;
use crate::routes::extract::AdminUser;
use crate::state::AppState;

/// The OpenAPI document of this module, merged into `routes::openapi()`.
#[derive(OpenApi)]
#[openapi(
    paths(db_health),
    components(schemas(
        health::DbHealth,
        health::SlowStatements,
        health::SlowStatement,
        health::UnusedIndex,
        health::DeadTuples,
        health::Archiver
    ))
)]
pub struct OpsDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        crate::routes::resource("/api/v1/trading/db-health").route(web::get().to(db_health)),
    );
}

/// Database health for administrators: slow statements (`pg_stat_statements`), unused
/// indexes, dead-tuple bloat and WAL archiving. Each list holds at most
/// `monitoring.db_health_rows_max` rows.
#[utoipa::path(get, path = "/api/v1/trading/db-health", tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the report", body = health::DbHealth),
        (status = 401, description = "no or invalid session"),
        (status = 403, description = "not an administrator"),
        (status = 503, description = "database unreachable")))]
pub async fn db_health(
    _admin: AdminUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mon = &state.settings.monitoring;
    let limits = HealthLimits {
        rows_max: mon.db_health_rows_max,
        slow_statement_mean_ms: mon.slow_statement_mean_ms,
        dead_tuples_min: mon.dead_tuples_min,
    };
    let client = state.db.get().await.map_err(|err| {
        tracing::warn!(error = %err, "db-health: no database connection");
        ApiError::unavailable("database unavailable; retry shortly")
    })?;
    let report = health::report(&**client, limits).await.map_err(|err| {
        tracing::warn!(error = %format!("{err:#}"), "db-health queries");
        ApiError::unavailable("database health queries failed; retry shortly")
    })?;
    Ok(HttpResponse::Ok().json(report))
}
