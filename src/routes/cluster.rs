//! `GET /api/v1/cluster` (admin): the nodes, their liveness, the leases of live events with
//! their epochs, and the answering node's counters (forwarded requests, fenced writes).
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::cluster::{ClusterView, CountersView, LeaseView, NodeView};
use crate::routes::error::ApiError;
use crate::routes::extract::AdminUser;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(cluster),
    components(schemas(ClusterView, NodeView, LeaseView, CountersView))
)]
pub struct ClusterDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::routes::resource("/api/v1/cluster").route(web::get().to(cluster)));
    cfg.service(
        crate::routes::resource("/api/v1/cluster/test/pause-renewal")
            .route(web::post().to(pause_renewal)),
    );
}

/// The engine nodes sharing this database and which events each owns.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "nodes and leases", body = ClusterView),
        (status = 401, description = "no or invalid session"),
        (status = 403, description = "not an administrator"),
        (status = 503, description = "database unreachable")))]
pub async fn cluster(
    _admin: AdminUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let view = state.registry.cluster().view().await.map_err(|e| {
        tracing::warn!(error = %e, "cluster view");
        ApiError::unavailable("database unavailable; retry shortly")
    })?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(serde::Deserialize)]
struct Pause {
    paused: bool,
}

/// Test profile only (404 elsewhere): stops (or restarts) this node's lease renewal, as
/// if it were cut off from Postgres.
async fn pause_renewal(
    _admin: AdminUser,
    state: web::Data<AppState>,
    body: web::Json<Pause>,
) -> Result<HttpResponse, ApiError> {
    if state.settings.profile != "test" {
        return Err(ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "no such route",
        ));
    }
    state.registry.cluster().pause_renewal(body.paused);
    Ok(HttpResponse::NoContent().finish())
}
