//! `GET /api/v1/cluster` (admin): the nodes, their liveness, the leases of live events with
//! their epochs, and the answering node's counters (forwarded requests, fenced writes).
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use crate::app::remote_legs;
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
    cfg.service(
        crate::routes::resource("/api/v1/cluster/test/drop-leg-settlements")
            .route(web::post().to(drop_leg_settlements)),
    );
    cfg.service(
        crate::routes::resource(remote_legs::RESERVE_PATH).route(web::post().to(reserve_leg)),
    );
    cfg.service(
        crate::routes::resource(remote_legs::SETTLE_PATH).route(web::post().to(settle_leg)),
    );
}

/// Internal endpoints answer only another node (the forwarding secret in its header).
pub(crate) fn from_a_node(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq;
    let secret = state.registry.cluster().settings.forward_secret.as_bytes();
    let given = req
        .headers()
        .get(crate::cluster::FORWARD_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if secret.is_empty() || !bool::from(given.ct_eq(secret)) {
        return Err(ApiError::forbidden("for engine nodes only"));
    }
    Ok(())
}

/// Another node reserves a bet leg on a market of an event this node owns.
async fn reserve_leg(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<remote_legs::LegAsk>,
) -> Result<HttpResponse, ApiError> {
    from_a_node(&req, &state)?;
    let answer = remote_legs::reserve_here(&state.registry, body.into_inner()).await;
    Ok(HttpResponse::Ok().json(answer))
}

/// Another node confirms or releases a leg reserved here.
async fn settle_leg(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<remote_legs::LegSettle>,
) -> Result<HttpResponse, ApiError> {
    from_a_node(&req, &state)?;
    remote_legs::settle_here(&state.registry, body.into_inner()).await;
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
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
fn test_profile_only(state: &AppState) -> Result<(), ApiError> {
    if state.settings.profile != "test" {
        return Err(ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "no such route",
        ));
    }
    Ok(())
}

async fn pause_renewal(
    _admin: AdminUser,
    state: web::Data<AppState>,
    body: web::Json<Pause>,
) -> Result<HttpResponse, ApiError> {
    test_profile_only(&state)?;
    state.registry.cluster().pause_renewal(body.paused);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(serde::Deserialize)]
struct Drop {
    dropped: bool,
}

/// Test profile only: this node stops (or resumes) settling legs reserved at other nodes,
/// as if it died between its commit and their confirmation.
async fn drop_leg_settlements(
    _admin: AdminUser,
    state: web::Data<AppState>,
    body: web::Json<Drop>,
) -> Result<HttpResponse, ApiError> {
    test_profile_only(&state)?;
    state.registry.cluster().drop_leg_settlements(body.dropped);
    Ok(HttpResponse::NoContent().finish())
}
