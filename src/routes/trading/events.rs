//! A whole event: suspend/resume every market, set its status (cancel voids it).
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::audit_actor;
use crate::app::events::EventChanged;
use crate::domain::ids::{EventId, MarketId};
use crate::domain::{EventStatus, MarketCommand};
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::extract::Trader;
use crate::routes::json::Json;
use crate::state::AppState;

/// The answer of an event-wide change: the event and the markets that changed; a market
/// that refused its part fails the request with its reason (the rest is durable).
fn event_answer(changed: EventChanged) -> ApiResult<serde_json::Value> {
    if let Some(e) = changed.refused.into_iter().next() {
        return Err(e.into());
    }
    Ok(json!({"event": changed.event, "markets_changed": changed.markets_changed}))
}

async fn event_command(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    id: EventId,
    command: MarketCommand,
) -> ApiResult<HttpResponse> {
    let actor = audit_actor(&trader, &req);
    let changed = state.events.command_all(id, command, actor).await?;
    Ok(HttpResponse::Ok().json(event_answer(changed)?))
}

#[utoipa::path(post, path = "/api/v1/trading/events/{id}/suspend", tag = "trading",
    params(("id" = Uuid, Path, description = "event id")),
    responses((status = 200, description = "the event and the markets that changed")))]
pub async fn suspend_event(
    s: web::Data<AppState>,
    t: Trader,
    r: HttpRequest,
    p: web::Path<EventId>,
) -> ApiResult<HttpResponse> {
    event_command(s, t, r, p.into_inner(), MarketCommand::Suspend).await
}

#[utoipa::path(post, path = "/api/v1/trading/events/{id}/resume", tag = "trading",
    params(("id" = Uuid, Path, description = "event id")),
    responses((status = 200, description = "the event and the markets that changed")))]
pub async fn resume_event(
    s: web::Data<AppState>,
    t: Trader,
    r: HttpRequest,
    p: web::Path<EventId>,
) -> ApiResult<HttpResponse> {
    event_command(s, t, r, p.into_inner(), MarketCommand::Resume).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventStatusBody {
    #[schema(value_type = String, example = "live")]
    status: EventStatus,
    /// The seed's `events.period` (at most 20 characters), e.g. `"2H"`.
    #[schema(example = "2H")]
    period: Option<String>,
    /// The seed's `events.clock` (at most 20 characters), e.g. `"67:12"`.
    #[schema(example = "67:12")]
    clock: Option<String>,
}

/// Longest `period` / `clock` (the seed's `VARCHAR(20)` columns).
const PERIOD_CLOCK_CHARS_MAX: usize = 20;

/// A trimmed, non-empty, printable value of at most 20 characters, or 422.
fn period_or_clock(name: &str, value: Option<&str>) -> ApiResult<Option<String>> {
    let Some(v) = value.map(str::trim) else {
        return Ok(None);
    };
    if v.is_empty() || v.chars().count() > PERIOD_CLOCK_CHARS_MAX || v.chars().any(char::is_control)
    {
        return Err(ApiError::validation(format!(
            "{name} must be 1 to {PERIOD_CLOCK_CHARS_MAX} printable characters"
        )));
    }
    Ok(Some(v.to_string()))
}

#[utoipa::path(post, path = "/api/v1/trading/events/{id}/status", tag = "trading", request_body = EventStatusBody,
    params(("id" = Uuid, Path, description = "event id")),
    responses((status = 200, description = "the event and the markets that changed"),
              (status = 409, description = "invalid_transition")))]
pub async fn set_event_status(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    path: web::Path<EventId>,
    body: Json<EventStatusBody>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let period = period_or_clock("period", body.period.as_deref())?;
    let clock = period_or_clock("clock", body.clock.as_deref())?;
    let actor = audit_actor(&trader, &req);
    let status = body.status;
    let changed = state
        .events
        .set_status(id, status, period, clock, actor)
        .await?;
    let voided: Vec<MarketId> = changed.voided.iter().map(|s| s.market_id).collect();
    let cancelled = status == EventStatus::Cancelled;
    let mut answer = event_answer(changed)?;
    if cancelled {
        // A cancelled event voids every market (docs/settlement.md).
        answer["voided_markets"] = json!(voided);
    }
    Ok(HttpResponse::Ok().json(answer))
}
