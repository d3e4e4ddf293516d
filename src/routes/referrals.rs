//! Trader referral endpoints (API.md "Bet referral"): the desk's queue and decisions, and
//! the bettor's answer to a counter-offer. The bet itself is placed by `POST /bets`, which
//! answers 202 with status `referred`.
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::app::referrals::{DecisionRequest, ReferralView};
use crate::auth::AuthUser;
use crate::db::referrals::ReferralRow;
use crate::domain::ids::BetId;
use crate::routes;
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::extract::{Trader, TradingReader};
use crate::routes::json::Json;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(list_referrals, decide_referral, answer_counter_offer),
    components(schemas(ReferralList, ReferralView, ReferralRow, DecisionRequest, OfferAnswer)),
    tags((name = "referral", description = "Bets referred to the trading desk"))
)]
pub struct ReferralDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(routes::resource("/api/v1/trading/referrals").route(web::get().to(list_referrals)))
        .service(
            routes::resource("/api/v1/trading/referrals/{bet_id}")
                .route(web::post().to(decide_referral)),
        )
        .service(
            routes::resource("/api/v1/bets/{id}/offer").route(web::post().to(answer_counter_offer)),
        );
}

/// The desk's queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralList {
    pub referrals: Vec<ReferralView>,
}

/// Referrals waiting for the desk (`pending`, until `expires_at`) or for the bettor's
/// answer to a counter-offer (`countered`, until `counter_expires_at`), oldest first, each
/// with its bet, the customer and the liability it would add.
#[utoipa::path(get, path = "/api/v1/trading/referrals", tag = "referral",
    responses((status = 200, body = ReferralList), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list_referrals(
    state: web::Data<AppState>,
    _reader: TradingReader,
) -> ApiResult<HttpResponse> {
    let referrals = state.referrals.list().await?;
    Ok(HttpResponse::Ok().json(ReferralList { referrals }))
}

/// The desk's decision on a pending referral: `accept` (the bet as placed), `reject` (the
/// stake refunded) or `counter` with a lower `stake` and/or other `odds` (a single only),
/// which the bettor then answers before it expires. Durable before the answer; the bettor
/// hears it on the private channel.
#[utoipa::path(post, path = "/api/v1/trading/referrals/{bet_id}", tag = "referral",
    request_body = DecisionRequest,
    params(("bet_id" = Uuid, Path, description = "the referred bet")),
    responses(
        (status = 200, body = ReferralView, description = "the referral after the decision"),
        (status = 401), (status = 403), (status = 404),
        (status = 409, description = "referral_closed: decided already or its window has passed"),
        (status = 422, description = "validation")),
    security(("bearer" = [])))]
pub async fn decide_referral(
    state: web::Data<AppState>,
    trader: Trader,
    path: web::Path<BetId>,
    body: Json<DecisionRequest>,
) -> ApiResult<HttpResponse> {
    let view = state
        .referrals
        .decide(path.into_inner(), body.into_inner(), trader.0.user_id)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The bettor's answer to a counter-offer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferAnswer {
    pub accept: bool,
}

/// The bettor takes (`accept: true`: the bet is accepted on the offered terms, any stake
/// above the offer refunded) or declines (the stake refunded) the desk's counter-offer,
/// before it expires. Answers the bet.
#[utoipa::path(post, path = "/api/v1/bets/{id}/offer", tag = "referral",
    request_body = OfferAnswer,
    params(("id" = Uuid, Path, description = "bet id")),
    responses(
        (status = 200, body = crate::db::bets::HistoryBet),
        (status = 401), (status = 404),
        (status = 409, description = "referral_closed: no counter-offer waiting (or it expired)")),
    security(("bearer" = [])))]
pub async fn answer_counter_offer(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<BetId>,
    body: Json<OfferAnswer>,
) -> ApiResult<HttpResponse> {
    let bet_id = id.into_inner();
    state
        .referrals
        .answer_offer(user.user_id, bet_id, body.accept)
        .await?;
    let bet = super::bets::one_bet(&state, user.user_id, bet_id)
        .await?
        .ok_or_else(|| ApiError::not_found("bet"))?;
    Ok(HttpResponse::Ok().json(bet))
}
