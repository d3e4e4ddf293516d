//! Bet endpoints: place a bet, the bettor's history, one bet.
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, OpenApi};

use crate::app::bets::Channel;
use crate::auth::AuthUser;
use crate::bets::{BetAnswer, PlaceBetRequest};
use crate::db::bets::HistoryBet;
use crate::domain::ids::{BetId, UserId};
use crate::routes;
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::json::Json;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(place_bet, list_bets, get_bet),
    components(schemas(PlaceBetRequest, crate::bets::request::LegRequest, BetAnswer, HistoryPage,
        crate::bets::answer::LegAnswer, HistoryBet)),
    tags((name = "bets", description = "Placing bets and the bettor's history"))
)]
pub struct BetsDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        routes::resource("/api/v1/bets")
            .route(web::post().to(place_bet))
            .route(web::get().to(list_bets)),
    )
    .service(routes::resource("/api/v1/bets/{id}").route(web::get().to(get_bet)));
}

/// Places a single, parlay or system bet. The answer is final: 201 with the accepted bet
/// (durable: committed with its stake debit before this answer), or an error whose code
/// says why. The same idempotency key answers the first accepted bet again.
#[utoipa::path(post, path = "/api/v1/bets", tag = "bets", request_body = PlaceBetRequest,
    responses(
        (status = 201, body = BetAnswer, description = "accepted"),
        (status = 202, body = BetAnswer, description = "referred to the trading desk (status `referred`, the stake held; docs/bets.md \"Referral\")"),
        (status = 401, description = "no or bad token"),
        (status = 403, description = "account_restricted"),
        (status = 409, description = "market_suspended, market_closed, odds_changed, event_started, insufficient_funds, liability_exceeded, limit_exceeded, idempotency_key_reused"),
        (status = 422, description = "validation_failed (also a stake with more places than the account's currency allows, e.g. 10.50 in JPY), stake_too_low, stake_too_high (the market's limits are in the base currency; details in the bettor's), duplicate_leg, correlated_legs, unknown_selection"),
        (status = 503, description = "busy or the ledger is unavailable; retry with the same key")),
    security(("bearer" = [])))]
pub async fn place_bet(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<PlaceBetRequest>,
) -> ApiResult<HttpResponse> {
    let answer = state
        .bets
        .place(Channel::Rest, user.user_id, body.into_inner())
        .await?;
    if answer.status == "referred" {
        // Referred to the trading desk: the stake is held until it decides.
        return Ok(HttpResponse::Accepted().json(answer));
    }
    Ok(HttpResponse::Created().json(answer))
}

/// A page of the history.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    pub bets: Vec<HistoryBet>,
    pub limit: i32,
    pub offset: i32,
}

/// Paging of the history.
#[derive(Debug, Deserialize, IntoParams)]
pub struct Page {
    /// 1 to `bets.history_page_max` (100), default 20.
    pub limit: Option<i32>,
    /// 0 to `bets.history_offset_max` (100000).
    pub offset: Option<i32>,
    /// Comma-separated bet statuses (`pending, referred, accepted, settled_win,
    /// settled_loss, settled_push, rejected, cancelled, voided, cashed_out`); default: all.
    pub status: Option<String>,
}

/// The statuses asked for (422 naming an unknown one); `None`: all.
fn bet_statuses(asked: Option<&str>) -> ApiResult<Option<Vec<&'static str>>> {
    let Some(list) = asked.map(str::trim).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    list.split(',')
        .map(|name| {
            name.trim()
                .parse::<crate::domain::BetStatus>()
                .map(|s| s.as_str())
                .map_err(|_| {
                    ApiError::validation(format!("status: unknown bet status {name:?}"))
                        .with_details(json!({"field": "status"}))
                })
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// The bettor's bets, newest first, with their legs (selection, market and event named),
/// results and payouts, and like `GET /bets/{id}` each bet's `cashed_out_amount`,
/// `remaining_stake` and `referral` (when it was referred): `{"bets": [...], "limit",
/// "offset"}` like every list.
#[utoipa::path(get, path = "/api/v1/bets", tag = "bets", params(Page),
    responses((status = 200, body = HistoryPage), (status = 401), (status = 422)),
    security(("bearer" = [])))]
pub async fn list_bets(
    state: web::Data<AppState>,
    user: AuthUser,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let (page_max, offset_max) = (
        state.settings.bets.history_page_max,
        state.settings.bets.history_offset_max,
    );
    let statuses = bet_statuses(page.status.as_deref())?;
    let limit = page.limit.unwrap_or(20.min(page_max));
    let offset = page.offset.unwrap_or(0);
    if !(1..=page_max).contains(&limit) || !(0..=offset_max).contains(&offset) {
        return Err(ApiError::validation(format!(
            "limit must be 1 to {page_max}, offset 0 to {offset_max}"
        )));
    }
    let client = state.db.get().await?;
    let mut bets = crate::db::bets::history(
        &client,
        user.user_id,
        limit,
        offset,
        None,
        statuses.as_deref(),
    )
    .await?;
    crate::db::bets::attach_cash_out_and_referral(&client, user.user_id, &mut bets).await?;
    Ok(HttpResponse::Ok().json(HistoryPage {
        bets,
        limit,
        offset,
    }))
}

/// One of the bettor's bets (404 for another user's bet).
#[utoipa::path(get, path = "/api/v1/bets/{id}", tag = "bets",
    params(("id" = Uuid, Path, description = "bet id")),
    responses((status = 200, body = HistoryBet), (status = 401), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_bet(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<BetId>,
) -> ApiResult<HttpResponse> {
    let bet = one_bet(&state, user.user_id, id.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("bet"))?;
    Ok(HttpResponse::Ok().json(bet))
}

/// One of the user's bets with its cash-out parts and its referral, if any.
pub(super) async fn one_bet(
    state: &AppState,
    user_id: UserId,
    bet_id: BetId,
) -> ApiResult<Option<HistoryBet>> {
    let client = state.db.get().await?;
    let mut bets = crate::db::bets::history(&client, user_id, 1, 0, Some(bet_id), None).await?;
    crate::db::bets::attach_cash_out_and_referral(&client, user_id, &mut bets).await?;
    Ok(bets.pop())
}
