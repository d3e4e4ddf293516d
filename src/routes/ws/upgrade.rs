//! `GET /ws`: the WebSocket upgrade. Checks the Origin allowlist, the node's connection
//! limit and an optional `?token=` before handing the connection to [`super::session`].
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::OpenApi;

use crate::routes::error::ApiError;
use crate::state::ws_slots::SlotRefused;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(paths(upgrade), tags((name = "websocket", description = "Live odds, scores and the private channel (docs/websocket.md)")))]
pub struct WsDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::routes::resource("/ws").route(web::get().to(upgrade)));
}

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

/// Upgrades to the WebSocket protocol of `docs/websocket.md`.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "websocket",
    params(("token" = Option<String>, Query, description = "Session token for the private channel. For trusted networks only: a query string ends up in proxy and access logs; clients elsewhere send `{\"op\":\"auth\"}` as their first message")),
    responses(
        (status = 101, description = "Switching protocols"),
        (status = 400, description = "Not a WebSocket upgrade request"),
        (status = 401, description = "The token is invalid or expired"),
        (status = 403, description = "Origin not allowed"),
        (status = 429, description = "too_many_connections: the client address holds ws.connections_per_address_max sessions"),
        (status = 503, description = "Connection limit reached or session store unavailable")
    )
)]
pub async fn upgrade(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<WsQuery>,
    stream: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let settings = &state.settings.ws;
    let origin = req.headers().get("Origin").and_then(|v| v.to_str().ok());
    let host = req.headers().get("Host").and_then(|v| v.to_str().ok());
    if !settings.origin_allowed(origin, host) {
        return Err(ApiError::forbidden("origin not allowed"));
    }
    let user = match query.token.as_deref() {
        Some(t) if !t.is_empty() && t.len() <= 256 => {
            Some(crate::routes::extract::authenticate(&state, t).await?)
        }
        Some(_) => return Err(ApiError::unauthorized("invalid token")),
        None => None,
    };
    let slot = state
        .ws
        .try_connect(
            settings.connections_max,
            crate::auth::client::client_ip(&req),
            settings.connections_per_address_max,
        )
        .map_err(|refused| match refused {
            SlotRefused::NodeFull => ApiError::busy("the WebSocket service"),
            SlotRefused::AddressFull => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "too many WebSocket connections from this address",
            ),
        })?;
    super::session::start(state.clone(), slot, user, &req, stream).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("WebSocket upgrade failed: {e}"),
        )
    })
}
