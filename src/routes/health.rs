//! Operations endpoints: liveness, readiness, metrics.
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::routes::error::ApiError;
use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "process is up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 only when Postgres answers, all live state is recovered and the live-state writer
/// commits.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db_ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), crate::db::ping(&state.db)).await,
        Ok(Ok(()))
    );
    let recovered = state.is_recovered();
    let writer = state.registry.shared.writer.is_healthy();
    let body = json!({"database": db_ok, "recovered": recovered, "live_writer": writer});
    if db_ok && recovered && writer {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "error": {"code": "not_ready", "message": "engine not ready", "details": body}
        }))
    }
}

/// May this request read `/metrics` (`[metrics]`: the token, or a local scraper)?
fn metrics_allowed(state: &AppState, req: &HttpRequest) -> bool {
    let m = &state.settings.metrics;
    if !m.token.is_empty() {
        if let Some(token) = crate::routes::extract::bearer_token(req) {
            use subtle::ConstantTimeEq;
            if bool::from(token.as_bytes().ct_eq(m.token.as_bytes())) {
                return true;
            }
        }
    }
    m.allow_loopback
        && !req.headers().contains_key("X-Forwarded-For")
        && req.peer_addr().is_some_and(|a| a.ip().is_loopback())
}

/// Prometheus text format: for the configured token or a scraper on this host.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
              (status = 401, description = "neither the metrics token nor a local scraper")),
    security((), ("bearer" = [])))]
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if !metrics_allowed(&state, &req) {
        return actix_web::ResponseError::error_response(&ApiError::unauthorized(
            "metrics need the metrics token (or a scraper on this host)",
        ));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body({
            state
                .metrics
                .refresh_live(&live_figures(&state.registry, &state.hub));
            let mut text = state.metrics.render();
            text.push_str(&state.registry.cluster().render_metrics());
            text
        })
}

/// Reads the live actors' mailboxes, the live-state writer's queue and the hub's counters.
fn live_figures(
    registry: &crate::actors::Registry,
    hub: &crate::broadcast::Hub,
) -> crate::metrics::LiveFigures {
    use crate::metrics::{KindFigures, LiveFigures};
    use std::sync::atomic::Ordering::Relaxed;
    let (events, markets) = registry.counts();
    let capacity = registry.shared.markets.mailbox_capacity_messages;
    let boxes = registry.mailboxes();
    let mut kinds: Vec<KindFigures> = [(&boxes.events, events), (&boxes.markets, markets)]
        .into_iter()
        .map(|(stats, actors)| KindFigures {
            kind: stats.kind,
            actors,
            queued: stats.queued.load(Relaxed),
            fullest: stats.fullest(),
            capacity,
            busy: vec![
                ("mailbox_full", stats.busy_full.load(Relaxed)),
                ("timeout", stats.busy_timeout.load(Relaxed)),
            ],
        })
        .collect();
    let (queued, bound) = registry.shared.writer.depth();
    kinds.push(KindFigures {
        kind: "live_writer",
        actors: 1,
        queued,
        fullest: queued,
        capacity: bound,
        busy: vec![("queue_full", registry.shared.writer.busy_total())],
    });
    LiveFigures {
        kinds,
        broadcast: [
            ("delivered", hub.delivered_total.load(Relaxed)),
            ("subscriber_dropped", hub.dropped_total.load(Relaxed)),
            ("fanout_lost", hub.fanout_dropped_total.load(Relaxed)),
        ],
    }
}
