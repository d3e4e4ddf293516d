//! Settlement endpoints (API.md, "Trading"; docs/settlement.md): settle, resettle and void
//! a market, void one bet, read a market's latest settlement. Moderators and admins.
//!
//! A settle/resettle/void answers 200 with the settlement once every bet is booked, or
//! 202 with it while the worker is still running (after `[settlement] answer_wait_ms`);
//! `GET .../settlement` shows its progress.
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::actors::AuditActor;
use crate::db::audit::Actor;
use crate::db::settlement::{self as sdb, SettlementRow};
use crate::domain::ids::{BetId, MarketId, SelectionId};
use crate::domain::LegResult;
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::extract::{Trader, TradingReader};
use crate::routes::json::Json;
use crate::routes::resource;
use crate::settlement::compute::void_bet;
use crate::settlement::open::{self, Kind, OpenRequest, ResultSpec};
use crate::settlement::{worker, Settlement};
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(settle_market, resettle_market, void_market, market_settlement, void_one_bet),
    components(schemas(SettleBody, ResultBody, VoidBody, BetVoidBody, SettlementRow)),
    tags((name = "settlement", description = "Settlement, corrections and voids"))
)]
pub struct SettlementDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let t = "/api/v1/trading";
    cfg.service(
        resource(&format!("{t}/markets/{{id}}/settle")).route(web::post().to(settle_market)),
    )
    .service(
        resource(&format!("{t}/markets/{{id}}/resettle")).route(web::post().to(resettle_market)),
    )
    .service(resource(&format!("{t}/markets/{{id}}/void")).route(web::post().to(void_market)))
    .service(
        resource(&format!("{t}/markets/{{id}}/settlement")).route(web::get().to(market_settlement)),
    )
    .service(resource(&format!("{t}/bets/{{id}}/void")).route(web::post().to(void_one_bet)));
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultBody {
    #[schema(value_type = uuid::Uuid)]
    selection_id: SelectionId,
    #[schema(value_type = String, example = "win")]
    result: LegResult,
    /// Share paid at full odds on a tie, e.g. "0.5".
    #[schema(value_type = Option<String>, example = "0.5")]
    dead_heat_factor: Option<String>,
    /// Share of the stake returned (half-void on quarter lines: "0.5").
    #[schema(value_type = Option<String>, example = "0.5")]
    void_factor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    results: Vec<ResultBody>,
    /// Bets placed after this moment are refunded (past-posting).
    void_after: Option<DateTime<Utc>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidBody {
    reason: String,
    void_after: Option<DateTime<Utc>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BetVoidBody {
    reason: String,
}

fn audit_actor(trader: &Trader, req: &HttpRequest) -> AuditActor {
    AuditActor {
        user_id: Some(trader.0.user_id),
        client_ip: crate::auth::client::client_ip(req).map(|a| a.to_string()),
    }
}

fn check_reason(state: &AppState, reason: &str) -> ApiResult<()> {
    let max = state.settings.settlement.reason_chars_max;
    if reason.trim().is_empty() || reason.chars().count() > max {
        return Err(ApiError::validation(format!(
            "reason must be 1 to {max} characters"
        )));
    }
    Ok(())
}

fn service(state: &AppState) -> &Arc<Settlement> {
    &state.settlement
}

async fn run(
    state: &AppState,
    market_id: MarketId,
    req: OpenRequest,
    actor: AuditActor,
) -> ApiResult<HttpResponse> {
    let svc = service(state);
    let opened = open::open(svc, &state.registry, market_id, req, actor).await?;
    let row = open::wait(svc, opened.row).await?;
    let body = json!({"settlement": row, "changed": opened.started});
    Ok(if row.completed_at.is_some() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::Accepted().json(body)
    })
}

fn settle_request(state: &AppState, kind: Kind, body: SettleBody) -> ApiResult<OpenRequest> {
    let max = state.settings.markets.selections_per_market_max;
    if body.results.is_empty() || body.results.len() > max {
        return Err(ApiError::validation(format!(
            "results must hold 1 to {max} entries"
        )));
    }
    Ok(OpenRequest {
        kind,
        results: body
            .results
            .into_iter()
            .map(|r| ResultSpec {
                selection_id: r.selection_id,
                result: r.result,
                dead_heat_factor: r.dead_heat_factor,
                void_factor: r.void_factor,
            })
            .collect(),
        void_after: body.void_after,
        reason: None,
    })
}

#[utoipa::path(post, path = "/api/v1/trading/markets/{id}/settle", tag = "settlement", request_body = SettleBody,
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, description = "settled: every bet booked (`changed` false: same results as before)"),
              (status = 202, description = "settlement recorded, bets still being booked"),
              (status = 409, description = "already_settled, settlement_in_progress, invalid_transition"),
              (status = 422, description = "unknown_selection, a selection without result, factor out of range")))]
pub async fn settle_market(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    path: web::Path<MarketId>,
    body: Json<SettleBody>,
) -> ApiResult<HttpResponse> {
    let r = settle_request(&state, Kind::Settle, body.into_inner())?;
    run(&state, path.into_inner(), r, audit_actor(&trader, &req)).await
}

#[utoipa::path(post, path = "/api/v1/trading/markets/{id}/resettle", tag = "settlement", request_body = SettleBody,
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, description = "corrected (`changed` false: same results, nothing booked)"),
              (status = 202, description = "correction recorded, bets still being booked"),
              (status = 409, description = "not_settled, settlement_in_progress, invalid_transition")))]
pub async fn resettle_market(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    path: web::Path<MarketId>,
    body: Json<SettleBody>,
) -> ApiResult<HttpResponse> {
    let r = settle_request(&state, Kind::Resettle, body.into_inner())?;
    run(&state, path.into_inner(), r, audit_actor(&trader, &req)).await
}

#[utoipa::path(post, path = "/api/v1/trading/markets/{id}/void", tag = "settlement", request_body = VoidBody,
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, description = "voided: every bet refunded, parlays reduced"),
              (status = 202, description = "void recorded, bets still being booked"),
              (status = 409, description = "settlement_in_progress")))]
pub async fn void_market(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    path: web::Path<MarketId>,
    body: Json<VoidBody>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    check_reason(&state, &body.reason)?;
    let r = OpenRequest {
        kind: Kind::Void,
        results: Vec::new(),
        void_after: body.void_after,
        reason: Some(body.reason),
    };
    run(&state, path.into_inner(), r, audit_actor(&trader, &req)).await
}

#[utoipa::path(get, path = "/api/v1/trading/markets/{id}/settlement", tag = "settlement",
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, body = SettlementRow, description = "the latest settlement and its progress"),
              (status = 404, description = "never settled")))]
pub async fn market_settlement(
    state: web::Data<AppState>,
    _reader: TradingReader,
    path: web::Path<MarketId>,
) -> ApiResult<HttpResponse> {
    let client = state.db.get().await?;
    let row = sdb::latest(&client, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("settlement"))?;
    Ok(HttpResponse::Ok().json(row))
}

#[utoipa::path(post, path = "/api/v1/trading/bets/{id}/void", tag = "settlement", request_body = BetVoidBody,
    params(("id" = Uuid, Path, description = "bet id")),
    responses((status = 200, description = "voided: the stake refunded (any earlier payout reversed)"),
              (status = 404, description = "no such bet"),
              (status = 409, description = "invalid_transition: the bet is already voided, cancelled or rejected")))]
pub async fn void_one_bet(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    path: web::Path<BetId>,
    body: Json<BetVoidBody>,
) -> ApiResult<HttpResponse> {
    check_reason(&state, &body.reason)?;
    let bet_id = path.into_inner();
    let bet = {
        let client = state.db.get().await?;
        sdb::load_bets(&client, &[bet_id])
            .await?
            .pop()
            .ok_or_else(|| ApiError::not_found("bet"))?
    };
    let scale = state.registry.currencies().scale_of(&bet.currency_code);
    let change = void_bet(&bet, &body.reason, scale)
        .map_err(|e| ApiError::conflict("invalid_transition", e.to_string()))?;
    let a = audit_actor(&trader, &req);
    let actor = Actor {
        user_id: a.user_id,
        ip: a.client_ip.as_deref().and_then(|ip| ip.parse().ok()),
    };
    let svc = service(&state);
    let booked = worker::book(svc, vec![change], actor).await.map_err(|e| {
        tracing::warn!(bet = %bet_id, error = %format!("{e:#}"), "bet void failed");
        ApiError::unavailable("the void could not be booked; retry shortly")
    })?;
    if booked.is_empty() {
        return Err(ApiError::conflict(
            "bet_changed",
            "the bet changed meanwhile; retry",
        ));
    }
    worker::publish(svc, &booked);
    crate::settlement::exposure::release(svc.registry(), &booked).await;
    let b = &booked[0];
    Ok(HttpResponse::Ok().json(json!({
        "bet_id": bet_id, "status": b.change.new_status, "void_reason": b.change.void_reason,
        "payout": b.change.new_win.to_string(), "balance_delta": b.delta.to_string(),
    })))
}
