//! Cash-out endpoints: the offer, taking it, the automatic cash-out threshold.
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::OpenApi;

use crate::app::cashout::{Offer, TakeRequest};
use crate::auth::AuthUser;
use crate::db::cashout::CashedOutBet;
use crate::domain::ids::BetId;
use crate::domain::Money;
use crate::routes;
use crate::routes::error::ApiResult;
use crate::routes::json::Json;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(get_offer, take, arm, disarm),
    components(schemas(Offer, TakeRequest, CashedOutBet, AutoCashOut)),
    tags((name = "cash-out", description = "Cash-out offers, full and partial cash-out, automatic cash-out"))
)]
pub struct CashOutDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        routes::resource("/api/v1/bets/{id}/cash-out")
            .route(web::get().to(get_offer))
            .route(web::post().to(take)),
    )
    .service(
        routes::resource("/api/v1/bets/{id}/auto-cash-out")
            .route(web::put().to(arm))
            .route(web::delete().to(disarm)),
    );
}

/// The bet's cash-out offer now: the value of its remaining stake at live prices less the
/// margin, with a quote to take it before `expires_at`.
#[utoipa::path(get, path = "/api/v1/bets/{id}/cash-out", tag = "cash-out",
    params(("id" = Uuid, Path, description = "bet id")),
    responses(
        (status = 200, body = Offer),
        (status = 401), (status = 404),
        (status = 409, description = "cash_out_unavailable (details.reason: market_suspended, market_closed, bet_not_open, system_bet, free_bet, not_offered, no_value)"),
        (status = 503, description = "busy")),
    security(("bearer" = [])))]
pub async fn get_offer(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<BetId>,
) -> ApiResult<HttpResponse> {
    let offer = state.cash_out.offer(user.user_id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(offer))
}

/// Cashes out the bet in full or in part (`fraction` of the remaining stake). Durable
/// before the answer: the bet's new status or remaining stake, the `bet_credit`, the
/// balance. In play the request waits the market's bet delay and is checked again.
#[utoipa::path(post, path = "/api/v1/bets/{id}/cash-out", tag = "cash-out",
    params(("id" = Uuid, Path, description = "bet id")),
    request_body = TakeRequest,
    responses(
        (status = 201, body = CashedOutBet),
        (status = 401), (status = 404),
        (status = 409, description = "cash_out_changed (details.offer: the new offer), cash_out_unavailable, cash_out_in_progress, idempotency_key_reused"),
        (status = 422, description = "validation"),
        (status = 503, description = "busy or the database is unavailable")),
    security(("bearer" = [])))]
pub async fn take(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<BetId>,
    body: Json<TakeRequest>,
) -> ApiResult<HttpResponse> {
    let bet = state
        .cash_out
        .take(user.user_id, id.into_inner(), body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(bet))
}

/// `PUT /bets/{id}/auto-cash-out`.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoCashOut {
    /// Cash out in full when the offer reaches this amount.
    #[schema(value_type = String, example = "15.00")]
    pub threshold: Money,
}

/// Arms the automatic cash-out: the first offer at or above `threshold` after a price
/// change cashes the bet out in full. Survives restarts; a manual cash-out removes it.
#[utoipa::path(put, path = "/api/v1/bets/{id}/auto-cash-out", tag = "cash-out",
    params(("id" = Uuid, Path, description = "bet id")),
    request_body = AutoCashOut,
    responses((status = 200, body = AutoCashOut), (status = 401), (status = 404),
        (status = 409, description = "cash_out_unavailable"), (status = 422)),
    security(("bearer" = [])))]
pub async fn arm(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<BetId>,
    body: Json<AutoCashOut>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    state
        .cash_out
        .set_auto(user.user_id, id.into_inner(), Some(body.threshold))
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Removes the automatic cash-out.
#[utoipa::path(delete, path = "/api/v1/bets/{id}/auto-cash-out", tag = "cash-out",
    params(("id" = Uuid, Path, description = "bet id")),
    responses((status = 204), (status = 401), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn disarm(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<BetId>,
) -> ApiResult<HttpResponse> {
    state
        .cash_out
        .set_auto(user.user_id, id.into_inner(), None)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
