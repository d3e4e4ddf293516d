//! Trading control (API.md, "Trading"): create the catalogue, price markets, suspend,
//! resume and close them, set event status, read liability, change a market's settings.
//! Writes need a moderator or admin ([`Trader`]); liability reads any trading reader.
//! Every change is answered only once durable, with the new state.
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::actors::event::{EventState, GetEvent};
use crate::actors::market::{
    GetLiability, GetMarket, LiabilityView, MarketView, SelectionLiability,
};
use crate::actors::{ask, AuditActor, Durable};
use crate::app::events::{EventChanged, EventError};
use crate::db::catalogue as cat;
use crate::db::markets as mq;
use crate::domain::limits::MarketLimitsOverride;
use crate::domain::{check_margin_floor, EventStatus, MarketCommand, MarketType, Money, Odds};
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::extract::{Trader, TradingReader};
use crate::routes::json::Json;
use crate::routes::resource;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_sport, create_league, create_team, create_event, create_market, set_prices,
          suspend_market, resume_market, close_market, suspend_event, resume_event,
          set_event_status, liability, update_settings),
    components(schemas(SportBody, LeagueBody, TeamBody, EventBody, MarketBody, SelectionBody,
                        PricesBody, PriceBody, EventStatusBody, SettingsBody, MarketView,
                        LiabilityView, EventState)),
    tags((name = "trading", description = "Trading control (moderator, admin; support reads)"))
)]
pub struct TradingDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let t = "/api/v1/trading";
    cfg.service(resource(&format!("{t}/sports")).route(web::post().to(create_sport)))
        .service(resource(&format!("{t}/leagues")).route(web::post().to(create_league)))
        .service(resource(&format!("{t}/teams")).route(web::post().to(create_team)))
        .service(resource(&format!("{t}/events")).route(web::post().to(create_event)))
        .service(
            resource(&format!("{t}/events/{{id}}/markets")).route(web::post().to(create_market)),
        )
        .service(
            resource(&format!("{t}/events/{{id}}/suspend")).route(web::post().to(suspend_event)),
        )
        .service(resource(&format!("{t}/events/{{id}}/resume")).route(web::post().to(resume_event)))
        .service(
            resource(&format!("{t}/events/{{id}}/status")).route(web::post().to(set_event_status)),
        )
        .service(resource(&format!("{t}/markets/{{id}}/prices")).route(web::post().to(set_prices)))
        .service(
            resource(&format!("{t}/markets/{{id}}/suspend")).route(web::post().to(suspend_market)),
        )
        .service(
            resource(&format!("{t}/markets/{{id}}/resume")).route(web::post().to(resume_market)),
        )
        .service(resource(&format!("{t}/markets/{{id}}/close")).route(web::post().to(close_market)))
        .service(resource(&format!("{t}/markets/{{id}}/liability")).route(web::get().to(liability)))
        .service(
            resource(&format!("{t}/markets/{{id}}/settings"))
                .route(web::patch().to(update_settings)),
        );
}

/// Who acts, for the audit trail.
fn audit_actor(trader: &Trader, req: &HttpRequest) -> AuditActor {
    AuditActor {
        user_id: Some(trader.0.user_id),
        client_ip: crate::auth::client::client_ip(req).map(|a| a.to_string()),
    }
}

/// Database errors of creates: duplicates 409, unknown references and checks 422.
fn write_error(err: anyhow::Error) -> ApiError {
    if let Some(pg) = err.downcast_ref::<tokio_postgres::Error>() {
        if let Some(db) = pg.as_db_error() {
            let constraint = db.constraint().unwrap_or_default().to_string();
            let details = json!({"constraint": constraint});
            return match db.code().code() {
                "23505" => ApiError::conflict("already_exists", "an equal record already exists")
                    .with_details(details),
                "23503" => {
                    ApiError::validation("a referenced record does not exist").with_details(details)
                }
                "23514" | "23502" | "22001" | "22P02" => {
                    ApiError::validation(format!("refused by the database: {}", db.message()))
                        .with_details(details)
                }
                _ => ApiError::internal(format!("{err:#}")),
            };
        }
        tracing::warn!(error = %pg, "database failure");
        return ApiError::unavailable("database unavailable; retry shortly");
    }
    ApiError::internal(format!("{err:#}"))
}

fn non_empty(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(ApiError::validation(format!(
            "{field} must be 1 to {max} characters"
        )));
    }
    Ok(())
}

fn slug_ok(slug: &str) -> ApiResult<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 50
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(())
        .ok_or_else(|| ApiError::validation("slug must be 1 to 50 of a-z, 0-9 and -"))
}

/// Waits for a change to be committed (bounded); otherwise 503.
pub async fn durable(d: Durable, timeout: Duration) -> ApiResult<()> {
    Ok(crate::actors::writer::durable(d, timeout).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SportBody {
    name: String,
    display_name: String,
    slug: String,
    icon_url: Option<String>,
    sort_order: Option<i32>,
}

#[utoipa::path(post, path = "/api/v1/trading/sports", tag = "trading", request_body = SportBody,
    responses((status = 201, description = "the sports row"), (status = 409, description = "slug or name taken")))]
pub async fn create_sport(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    body: Json<SportBody>,
) -> ApiResult<HttpResponse> {
    non_empty("name", &body.name, 50)?;
    non_empty("display_name", &body.display_name, 100)?;
    slug_ok(&body.slug)?;
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    mq::set_audit_context(&*tx, &audit_actor(&trader, &req)).await?;
    let row = cat::insert_sport(
        &*tx,
        &cat::NewSport {
            name: &body.name,
            display_name: &body.display_name,
            slug: &body.slug,
            icon_url: body.icon_url.as_deref(),
            sort_order: body.sort_order.unwrap_or(0),
        },
    )
    .await
    .map_err(write_error)?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(row))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeagueBody {
    sport_id: Uuid,
    name: String,
    display_name: String,
    slug: String,
    country_code: Option<String>,
    season: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/trading/leagues", tag = "trading", request_body = LeagueBody,
    responses((status = 201, description = "the leagues row")))]
pub async fn create_league(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    body: Json<LeagueBody>,
) -> ApiResult<HttpResponse> {
    non_empty("name", &body.name, 100)?;
    non_empty("display_name", &body.display_name, 150)?;
    slug_ok(&body.slug)?;
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    mq::set_audit_context(&*tx, &audit_actor(&trader, &req)).await?;
    let row = cat::insert_league(
        &*tx,
        &cat::NewLeague {
            sport_id: body.sport_id,
            name: &body.name,
            display_name: &body.display_name,
            slug: &body.slug,
            country_code: body.country_code.as_deref(),
            season: body.season.as_deref(),
        },
    )
    .await
    .map_err(write_error)?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(row))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamBody {
    sport_id: Uuid,
    league_id: Option<Uuid>,
    name: String,
    display_name: String,
    slug: String,
    abbreviation: Option<String>,
    city: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/trading/teams", tag = "trading", request_body = TeamBody,
    responses((status = 201, description = "the teams row")))]
pub async fn create_team(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    body: Json<TeamBody>,
) -> ApiResult<HttpResponse> {
    non_empty("name", &body.name, 100)?;
    non_empty("display_name", &body.display_name, 150)?;
    slug_ok(&body.slug)?;
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    mq::set_audit_context(&*tx, &audit_actor(&trader, &req)).await?;
    let row = cat::insert_team(
        &*tx,
        &cat::NewTeam {
            sport_id: body.sport_id,
            league_id: body.league_id,
            name: &body.name,
            display_name: &body.display_name,
            slug: &body.slug,
            abbreviation: body.abbreviation.as_deref(),
            city: body.city.as_deref(),
        },
    )
    .await
    .map_err(write_error)?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(row))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    sport_id: Uuid,
    league_id: Option<Uuid>,
    home_team_id: Uuid,
    away_team_id: Uuid,
    start_time: DateTime<Utc>,
    venue: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/trading/events", tag = "trading", request_body = EventBody,
    responses((status = 201, description = "the events row; its actor is live")))]
pub async fn create_event(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    body: Json<EventBody>,
) -> ApiResult<HttpResponse> {
    if body.home_team_id == body.away_team_id {
        return Err(ApiError::validation("home and away teams must differ"));
    }
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    mq::set_audit_context(&*tx, &audit_actor(&trader, &req)).await?;
    let new = cat::NewEvent {
        sport_id: body.sport_id,
        league_id: body.league_id,
        home_team_id: body.home_team_id,
        away_team_id: body.away_team_id,
        start_time: body.start_time,
        venue: body.venue.as_deref(),
    };
    let (id, row) = cat::insert_event(&*tx, &new)
        .await
        .map_err(write_error)?
        .ok_or_else(|| ApiError::validation("both teams must exist and belong to the sport"))?;
    let event = mq::load_event(&*tx, id)
        .await?
        .ok_or_else(|| ApiError::internal("created event vanished"))?;
    tx.commit().await?;
    state.registry.start_event(event);
    Ok(HttpResponse::Created().json(row))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectionBody {
    name: String,
    #[schema(value_type = String, example = "2.5000")]
    odds: Odds,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarketBody {
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    market_type: MarketType,
    name: String,
    #[schema(value_type = Option<String>)]
    handicap: Option<String>,
    #[schema(value_type = Option<String>)]
    total_points: Option<String>,
    selections: Vec<SelectionBody>,
}

/// A line (handicap, total) as a plain decimal with at most 2 places, sign allowed.
fn parse_line(field: &str, v: &Option<String>) -> ApiResult<Option<rust_decimal::Decimal>> {
    let Some(text) = v else { return Ok(None) };
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let value = Money::parse(digits)
        .map_err(|e| ApiError::validation(format!("{field}: {e}")))?
        .as_decimal();
    if value.abs() >= rust_decimal::Decimal::from(100_000_000) {
        return Err(ApiError::validation(format!("{field} is too large")));
    }
    Ok(Some(if neg { -value } else { value }))
}

#[utoipa::path(post, path = "/api/v1/trading/events/{id}/markets", tag = "trading", request_body = MarketBody,
    params(("id" = Uuid, Path, description = "event id")),
    responses((status = 201, description = "the market with its selections' ids", body = MarketView)))]
pub async fn create_market(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: Json<MarketBody>,
) -> ApiResult<HttpResponse> {
    let event_id = path.into_inner();
    let cfg = &state.settings.markets;
    non_empty("name", &body.name, 200)?;
    if body.selections.len() < 2 || body.selections.len() > cfg.selections_per_market_max {
        return Err(ApiError::validation(format!(
            "a market needs 2 to {} selections",
            cfg.selections_per_market_max
        )));
    }
    let mut prices = Vec::with_capacity(body.selections.len());
    for s in &body.selections {
        non_empty("selection name", &s.name, 200)?;
        prices.push(
            s.odds
                .ensure_at_most(cfg.odds_max)
                .map_err(|e| ApiError::validation(format!("odds: {e}")))?,
        );
    }
    check_margin_floor(&prices, cfg.margin_floor).map_err(crate::actors::MarketError::from)?;
    let handicap = parse_line("handicap", &body.handicap)?;
    let total_points = parse_line("total_points", &body.total_points)?;
    let reg = &state.registry;
    let event_addr = reg
        .event(event_id)
        .await?
        .ok_or_else(|| ApiError::not_found("live event"))?;
    let (event_state, _) = ask(&event_addr, reg.ask_timeout(), |reply| GetEvent { reply }).await?;
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    mq::set_audit_context(&*tx, &audit_actor(&trader, &req)).await?;
    let new = mq::NewMarket {
        event_id,
        market_type: body.market_type,
        name: &body.name,
        handicap,
        total_points,
        in_play: event_state.status.is_in_play(),
        selections: body
            .selections
            .iter()
            .zip(&prices)
            .map(|(s, o)| (s.name.as_str(), o.value()))
            .collect(),
    };
    let (market, selections) = mq::insert_market(&*tx, &new).await.map_err(write_error)?;
    let event_row = mq::load_event(&*tx, event_id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    tx.commit().await?;
    let addr = reg
        .start_market(&event_row, market, selections, &Default::default())
        .map_err(ApiError::from)?;
    let view = ask(&addr, reg.ask_timeout(), |reply| GetMarket { reply }).await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    selection_id: Uuid,
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
    path: web::Path<Uuid>,
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
    id: Uuid,
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
    p: web::Path<Uuid>,
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
    p: web::Path<Uuid>,
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
    p: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    market_command(s, t, r, p.into_inner(), MarketCommand::Close).await
}

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
    id: Uuid,
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
    p: web::Path<Uuid>,
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
    p: web::Path<Uuid>,
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
    path: web::Path<Uuid>,
    body: Json<EventStatusBody>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let period = period_or_clock("period", body.period.as_deref())?;
    let clock = period_or_clock("clock", body.clock.as_deref())?;
    let actor = audit_actor(&trader, &req);
    let status = body.status;
    let changed = match state
        .events
        .set_status(id, status, period, clock, actor)
        .await
    {
        Err(EventError::NotFound) => {
            // Finished or cancelled events have no actor: every change from there is refused.
            let client = state.db.get().await?;
            let row = mq::load_event(&**client, id)
                .await?
                .ok_or_else(|| ApiError::not_found("event"))?;
            let err = crate::domain::event::transition(row.status, status)
                .err()
                .map(crate::actors::MarketError::from)
                .map(ApiError::from);
            return Err(err
                .unwrap_or_else(|| ApiError::conflict("invalid_transition", "the event is over")));
        }
        other => other?,
    };
    let voided: Vec<Uuid> = changed.voided.iter().map(|s| s.market_id).collect();
    let cancelled = status == EventStatus::Cancelled;
    let mut answer = event_answer(changed)?;
    if cancelled {
        // A cancelled event voids every market (docs/settlement.md).
        answer["voided_markets"] = json!(voided);
    }
    Ok(HttpResponse::Ok().json(answer))
}

#[utoipa::path(get, path = "/api/v1/trading/markets/{id}/liability", tag = "trading",
    params(("id" = Uuid, Path, description = "market id")),
    responses((status = 200, body = LiabilityView, description = "stake and exposure per selection")))]
pub async fn liability(
    state: web::Data<AppState>,
    _reader: TradingReader,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let reg = &state.registry;
    let id = path.into_inner();
    let Some(addr) = reg.market(id).await? else {
        return Ok(HttpResponse::Ok().json(final_liability(&state, id).await?));
    };
    let view = ask(&addr, reg.ask_timeout(), |reply| GetLiability { reply }).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A settled or voided market holds no open bet: nothing is at risk any more. Its view
/// shows zeros with its selections and limits (404 only for a market that never existed).
async fn final_liability(state: &AppState, id: Uuid) -> ApiResult<LiabilityView> {
    let client = state.db.get().await?;
    let row = mq::load_market(&**client, id)
        .await?
        .ok_or_else(|| ApiError::not_found("market"))?;
    let event = mq::load_event(&**client, row.event_id)
        .await?
        .ok_or_else(|| ApiError::not_found("market"))?;
    let limits = state
        .settings
        .markets
        .sport_limits(&event.sport_slug)
        .overlaid(&row.settings);
    let zero = rust_decimal::Decimal::new(0, 2);
    let mut selections: Vec<SelectionLiability> = crate::db::feed::selections_by_name(&client, id)
        .await?
        .into_iter()
        .map(|(name, selection_id)| SelectionLiability {
            selection_id,
            name,
            stake: zero,
            payout: zero,
            liability: zero,
            reserved_stake: zero,
            reserved_payout: zero,
        })
        .collect();
    selections.sort_by_key(|s| s.selection_id);
    Ok(LiabilityView {
        market_id: id,
        total_stake: zero,
        max_liability: zero,
        max_liability_selection: limits.max_liability_selection,
        max_liability_market: limits.max_liability_market,
        selections,
    })
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
    path: web::Path<Uuid>,
    body: Json<SettingsBody>,
) -> ApiResult<HttpResponse> {
    let patch = MarketLimitsOverride {
        bet_delay_ms: body.bet_delay_ms,
        min_stake: body.min_stake.map(Money::as_decimal),
        max_stake: body.max_stake.map(Money::as_decimal),
        max_liability_selection: body.max_liability_selection.map(Money::as_decimal),
        max_liability_market: body.max_liability_market.map(Money::as_decimal),
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
