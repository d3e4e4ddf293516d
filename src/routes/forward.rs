//! Any node answers any request (issue 20): a request about an event another node owns is
//! forwarded to that node, and its answer (status, body) comes back unchanged.
//!
//! This is a thin adapter in front of the handlers, so each business action keeps one code
//! path (the owner runs the same handler and service). It looks only at the requests that
//! touch an event's live state:
//! - `/api/v1/trading/events/{id}/...` and `GET /api/v1/events/{id}`: that event;
//! - `/api/v1/trading/markets/{id}/...`: the market's event;
//! - `POST /api/v1/bets`: the node holding the bettor's wallet partition (the only writer
//!   of the bettor's balance), which reserves each leg at its event's owner
//!   (`app::remote_legs`).
//!
//! A forwarded request carries `X-Winzo-Forwarded: <cluster.forward_secret>`; the receiver
//! serves it itself (never forwards again). At most `forward_concurrency_max` requests are
//! forwarded at once (more: 503 busy) and each waits `forward_timeout_ms` at most (503).
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::cluster::{fence, Route, FORWARD_HEADER};
use crate::domain::ids::{EventId, MarketId};
use crate::routes::error::ApiError;
use crate::state::AppState;

/// Headers copied onto the forwarded request (the rest is this hop's business).
const COPIED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "idempotency-key",
    "accept",
    "x-request-id",
];

/// What a request addresses, before any database lookup.
enum Subject {
    Event(EventId),
    Market(MarketId),
    Bet,
}

fn subject(method: &actix_web::http::Method, path: &str) -> Option<Subject> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["", "api", "v1", "trading", "events", id, _, ..] => {
            id.parse::<EventId>().ok().map(Subject::Event)
        }
        ["", "api", "v1", "trading", "markets", id, _, ..] => {
            id.parse::<MarketId>().ok().map(Subject::Market)
        }
        ["", "api", "v1", "events", id] if method == actix_web::http::Method::GET => {
            id.parse::<EventId>().ok().map(Subject::Event)
        }
        ["", "api", "v1", "bets"] if method == actix_web::http::Method::POST => Some(Subject::Bet),
        _ => None,
    }
}

fn refuse(req: ServiceRequest, err: ApiError) -> ServiceResponse {
    let res = actix_web::ResponseError::error_response(&err);
    req.into_response(res)
}

/// The middleware (`startup::build_server`).
pub async fn forward_to_owner<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_left_body());
    };
    let cluster = state.registry.cluster().clone();
    if !cluster.enabled() {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    if req.headers().contains_key(FORWARD_HEADER) {
        // Forwarded by another node: served here (never forwarded again).
        return match check_secret(&cluster, &req) {
            Ok(()) => next.call(req).await.map(|r| r.map_into_left_body()),
            Err(err) => Ok(refuse(req, err).map_into_right_body()),
        };
    }
    let Some(subject) = subject(req.method(), req.path()) else {
        return next.call(req).await.map(|r| r.map_into_left_body());
    };
    if matches!(subject, Subject::Bet) {
        return by_bettor(state, cluster, req, next).await;
    }
    match owner_addr(&state, &cluster, subject).await {
        Ok(None) => next.call(req).await.map(|r| r.map_into_left_body()),
        Ok(Some(addr)) => {
            // The body goes along unchanged (a price move's prices, say).
            let body = req.extract::<web::Bytes>().await?;
            let res = forward(&cluster, &req, &addr, body).await;
            Ok(req.into_response(res).map_into_right_body())
        }
        Err(err) => Ok(refuse(req, err).map_into_right_body()),
    }
}

/// A forwarded request must carry the cluster's secret (compared in constant time).
fn check_secret(cluster: &crate::cluster::Cluster, req: &ServiceRequest) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq;
    let secret = cluster.settings.forward_secret.as_bytes();
    let given = req
        .headers()
        .get(FORWARD_HEADER)
        .map_or(&[][..], |v| v.as_bytes());
    if secret.is_empty() || !bool::from(given.ct_eq(secret)) {
        return Err(ApiError::forbidden("bad forwarding secret"));
    }
    Ok(())
}

/// The address of the node owning the event(s) a request addresses; `None` when it is
/// this node (or the subject names no event with live state: the local answer is a 404).
async fn owner_addr(
    state: &AppState,
    cluster: &crate::cluster::Cluster,
    subject: Subject,
) -> Result<Option<String>, ApiError> {
    let events = match subject {
        Subject::Bet => return Ok(None),
        Subject::Event(id) => vec![id],
        Subject::Market(id) => {
            events_of(state, |c| async move {
                fence::events_of_markets(&**c, &[id]).await
            })
            .await?
        }
    };
    let mut owner = None;
    for e in events {
        match cluster.route(e).await {
            Ok(Route::Local) => owner = None,
            Ok(Route::Remote { addr, .. }) => owner = Some(addr),
            Err(e) => {
                tracing::warn!(error = %e, "event owner unknown");
                return Err(ApiError::unavailable(
                    "the event's owner is unknown; retry shortly",
                ));
            }
        }
    }
    Ok(owner)
}

/// A bet goes to the node holding its bettor's wallet partition (taking it if free). A
/// request without a valid session is answered here (401).
async fn by_bettor<B: MessageBody + 'static>(
    state: web::Data<AppState>,
    cluster: std::sync::Arc<crate::cluster::Cluster>,
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let user = match crate::routes::extract::bearer_token(req.request()) {
        Some(token) => crate::auth::authenticate(&state.sessions, &state.redis, &token)
            .await
            .ok(),
        None => None,
    };
    let Some(user) = user else {
        return next.call(req).await.map(|r| r.map_into_left_body());
    };
    match cluster.route_user(user.user_id).await {
        Ok(Route::Local) => next.call(req).await.map(|r| r.map_into_left_body()),
        Ok(Route::Remote { addr, .. }) => {
            let body = req.extract::<web::Bytes>().await?;
            let res = forward(&cluster, &req, &addr, body).await;
            Ok(req.into_response(res).map_into_right_body())
        }
        Err(e) => {
            tracing::warn!(error = %e, "wallet partition owner unknown");
            let err = ApiError::unavailable("the bettor's wallet node is unknown; retry shortly");
            Ok(refuse(req, err).map_into_right_body())
        }
    }
}

async fn events_of<K, F, Fut>(state: &AppState, f: F) -> Result<Vec<EventId>, ApiError>
where
    F: FnOnce(deadpool_postgres::Object) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(K, EventId)>, tokio_postgres::Error>>,
{
    let client = state
        .db
        .get()
        .await
        .map_err(|_| ApiError::unavailable("database unavailable; retry shortly"))?;
    let pairs = f(client)
        .await
        .map_err(|_| ApiError::unavailable("database unavailable; retry shortly"))?;
    let mut events: Vec<EventId> = pairs.into_iter().map(|(_, e)| e).collect();
    events.sort();
    events.dedup();
    Ok(events)
}

/// Sends the request to the owner and hands its answer back unchanged.
async fn forward(
    cluster: &crate::cluster::Cluster,
    req: &ServiceRequest,
    addr: &str,
    body: web::Bytes,
) -> HttpResponse {
    let unavailable = |msg: &str| {
        cluster
            .counters
            .forward_failed
            .fetch_add(1, Ordering::Relaxed);
        actix_web::ResponseError::error_response(&ApiError::unavailable(msg.to_string()))
    };
    let Ok(_permit) = cluster.forward_slots.clone().try_acquire_owned() else {
        cluster
            .counters
            .forward_failed
            .fetch_add(1, Ordering::Relaxed);
        return actix_web::ResponseError::error_response(&ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many requests forwarded to other nodes; retry shortly",
        ));
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or(req.path(), |p| p.as_str());
    let url = format!("{}{}", addr.trim_end_matches('/'), path);
    let Ok(method) = reqwest::Method::from_bytes(req.method().as_str().as_bytes()) else {
        return unavailable("method cannot be forwarded");
    };
    let mut out = cluster
        .http()
        .request(method, &url)
        .timeout(Duration::from_millis(cluster.settings.forward_timeout_ms))
        .header(FORWARD_HEADER, &cluster.settings.forward_secret);
    for name in COPIED_HEADERS {
        if let Some(v) = req.headers().get(*name) {
            out = out.header(*name, v.as_bytes());
        }
    }
    let answer = match out.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, %url, "forwarding to the owner failed");
            return unavailable("the event's owner did not answer; retry shortly");
        }
    };
    let status =
        StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = answer.headers().clone();
    let bytes = match answer.bytes().await {
        Ok(b) => b,
        Err(_) => return unavailable("the event's owner did not answer; retry shortly"),
    };
    cluster.counters.forwarded.fetch_add(1, Ordering::Relaxed);
    let mut res = HttpResponse::build(status);
    for (name, value) in headers.iter() {
        let n = name.as_str();
        if !matches!(
            n,
            "connection" | "transfer-encoding" | "content-length" | "keep-alive"
        ) {
            res.append_header((n, value.as_bytes()));
        }
    }
    res.body(bytes)
}

/// A WebSocket `place_bet` whose bettor's wallet another node holds: sent there as the
/// same `POST /api/v1/bets` (the bettor's own session token, the forwarding secret), its
/// answer returned as (status, JSON body). `None`: no answer (the caller answers 503).
pub async fn forward_bet(
    cluster: &crate::cluster::Cluster,
    addr: &str,
    token: &str,
    body: &serde_json::Value,
) -> Option<(u16, serde_json::Value)> {
    let Ok(_permit) = cluster.forward_slots.clone().try_acquire_owned() else {
        cluster
            .counters
            .forward_failed
            .fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let url = format!("{}/api/v1/bets", addr.trim_end_matches('/'));
    let sent = cluster
        .http()
        .post(&url)
        .timeout(Duration::from_millis(cluster.settings.forward_timeout_ms))
        .header(FORWARD_HEADER, &cluster.settings.forward_secret)
        .bearer_auth(token)
        .json(body)
        .send()
        .await;
    let answer = match sent {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, %url, "forwarding a WebSocket bet failed");
            cluster
                .counters
                .forward_failed
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    let status = answer.status().as_u16();
    let body = answer.json::<serde_json::Value>().await.ok()?;
    cluster.counters.forwarded.fetch_add(1, Ordering::Relaxed);
    Some((status, body))
}
