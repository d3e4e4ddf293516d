//! One market: prices, suspend/resume/close, liability and settings.
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::audit_actor;
use crate::actors::market::{LiabilityView, MarketView};
use crate::domain::ids::{MarketId, SelectionId};
use crate::domain::limits::MarketLimitsOverride;
use crate::domain::{MarketCommand, Money, Odds};
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::extract::Trader;
use crate::routes::extract::TradingReader;
use crate::routes::json::Json;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    #[schema(value_type = uuid::Uuid)]
    selection_id: SelectionId,
    #[schema(value_type = String, example = "2.1000")]
    odds: Odds,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PricesBody {
    prices: Vec<PriceBody>,
}

#[utoipa::path(post, path = "/api/v1/trading/markets/{id}/prices", tag = "trading", request_body = PricesBody,
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, description = "the market with its new prices", body = MarketView),
              (status = 409, description = "market_suspended or market_closed"),
              (status = 422, description = "unknown_selection, margin_below_floor, bad odds")))]
pub async fn set_prices(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    path: web::Path<MarketId>,
    body: Json<PricesBody>,
) -> ApiResult<HttpResponse> {
    let max = state.settings.markets.selections_per_market_max;
    if body.prices.is_empty() || body.prices.len() > max {
        return Err(ApiError::validation(format!(
            "prices must hold 1 to {max} entries"
        )));
    }
    let prices = body
        .prices
        .iter()
        .map(|p| (p.selection_id, p.odds))
        .collect();
    let actor = audit_actor(&trader, &req);
    let view = state
        .markets
        .set_prices(path.into_inner(), prices, actor)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn market_command(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    id: MarketId,
    command: MarketCommand,
) -> ApiResult<HttpResponse> {
    let actor = audit_actor(&trader, &req);
    let view = state.markets.command(id, command, actor).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/api/v1/trading/markets/{id}/suspend", tag = "trading",
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, body = MarketView, description = "suspended"), (status = 409, description = "invalid_transition")))]
pub async fn suspend_market(
    s: web::Data<AppState>,
    t: Trader,
    r: HttpRequest,
    p: web::Path<MarketId>,
) -> ApiResult<HttpResponse> {
    market_command(s, t, r, p.into_inner(), MarketCommand::Suspend).await
}

#[utoipa::path(post, path = "/api/v1/trading/markets/{id}/resume", tag = "trading",
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, body = MarketView, description = "open again"), (status = 409, description = "invalid_transition")))]
pub async fn resume_market(
    s: web::Data<AppState>,
    t: Trader,
    r: HttpRequest,
    p: web::Path<MarketId>,
) -> ApiResult<HttpResponse> {
    market_command(s, t, r, p.into_inner(), MarketCommand::Resume).await
}

#[utoipa::path(post, path = "/api/v1/trading/markets/{id}/close", tag = "trading",
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, body = MarketView, description = "closed"), (status = 409, description = "invalid_transition")))]
pub async fn close_market(
    s: web::Data<AppState>,
    t: Trader,
    r: HttpRequest,
    p: web::Path<MarketId>,
) -> ApiResult<HttpResponse> {
    market_command(s, t, r, p.into_inner(), MarketCommand::Close).await
}

#[utoipa::path(get, path = "/api/v1/trading/markets/{id}/liability", tag = "trading",
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, body = LiabilityView, description = "stake and exposure per selection, every currency's bets converted to the book's base currency (`currency_code`) at the configured rates")))]
pub async fn liability(
    state: web::Data<AppState>,
    _reader: TradingReader,
    path: web::Path<MarketId>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.markets.liability(path.into_inner()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    bet_delay_ms: Option<u32>,
    #[schema(value_type = Option<String>)]
    min_stake: Option<Money>,
    #[schema(value_type = Option<String>)]
    max_stake: Option<Money>,
    #[schema(value_type = Option<String>)]
    max_liability_selection: Option<Money>,
    #[schema(value_type = Option<String>)]
    max_liability_market: Option<Money>,
    /// Referral window in ms (0: referral off); a bet breaking a referable limit is then
    /// referred to the desk (202) instead of refused.
    referral_window_ms: Option<u32>,
    /// Which refusals are referred: `liability_exceeded`, `stake_too_high`.
    #[schema(value_type = Option<Vec<String>>)]
    referable: Option<crate::domain::limits::Referable>,
    /// Hold the market from settlement by the feed (its results are then refused and a
    /// trader settles it), or release it.
    hold_feed_settlement: Option<bool>,
}

#[utoipa::path(patch, path = "/api/v1/trading/markets/{id}/settings", tag = "trading", request_body = SettingsBody,
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, body = MarketView, description = "the market with its new settings")))]
pub async fn update_settings(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    path: web::Path<MarketId>,
    body: Json<SettingsBody>,
) -> ApiResult<HttpResponse> {
    let patch = MarketLimitsOverride {
        bet_delay_ms: body.bet_delay_ms,
        min_stake: body.min_stake.map(Money::as_decimal),
        max_stake: body.max_stake.map(Money::as_decimal),
        max_liability_selection: body.max_liability_selection.map(Money::as_decimal),
        max_liability_market: body.max_liability_market.map(Money::as_decimal),
        referral_window_ms: body.referral_window_ms,
        referable: body.referable,
    };
    let actor = audit_actor(&trader, &req);
    let changed = state
        .markets
        .settings(path.into_inner(), patch, body.hold_feed_settlement, actor)
        .await?;
    let mut answer = serde_json::to_value(&changed.market).unwrap_or_else(|_| json!({}));
    answer["feed_settlement_held"] = json!(changed.feed_settlement_held);
    Ok(HttpResponse::Ok().json(answer))
}
