//! Creating the catalogue: sports, leagues, teams, events and markets.
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit_actor;
use super::{non_empty, slug_ok};
use crate::actors::market::MarketView;
use crate::app::catalogue::{CatalogueService, NewRow};
use crate::app::markets::NewMarketSpec;
use crate::db::catalogue as cat;
use crate::domain::ids::EventId;
use crate::domain::{MarketType, Money, Odds};
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::extract::Trader;
use crate::routes::json::Json;
use crate::state::AppState;

fn catalogue(state: &AppState) -> CatalogueService {
    CatalogueService {
        db: state.db.clone(),
        registry: state.registry.clone(),
    }
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
    let new = NewRow::Sport(cat::NewSport {
        name: &body.name,
        display_name: &body.display_name,
        slug: &body.slug,
        icon_url: body.icon_url.as_deref(),
        sort_order: body.sort_order.unwrap_or(0),
    });
    let row = catalogue(&state)
        .create(&audit_actor(&trader, &req), &new)
        .await?;
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
    let new = NewRow::League(cat::NewLeague {
        sport_id: body.sport_id,
        name: &body.name,
        display_name: &body.display_name,
        slug: &body.slug,
        country_code: body.country_code.as_deref(),
        season: body.season.as_deref(),
    });
    let row = catalogue(&state)
        .create(&audit_actor(&trader, &req), &new)
        .await?;
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
    let new = NewRow::Team(cat::NewTeam {
        sport_id: body.sport_id,
        league_id: body.league_id,
        name: &body.name,
        display_name: &body.display_name,
        slug: &body.slug,
        abbreviation: body.abbreviation.as_deref(),
        city: body.city.as_deref(),
    });
    let row = catalogue(&state)
        .create(&audit_actor(&trader, &req), &new)
        .await?;
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
    let new = cat::NewEvent {
        sport_id: body.sport_id,
        league_id: body.league_id,
        home_team_id: body.home_team_id,
        away_team_id: body.away_team_id,
        start_time: body.start_time,
        venue: body.venue.as_deref(),
    };
    let row = catalogue(&state)
        .create_event(&audit_actor(&trader, &req), &new)
        .await?;
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
    path: web::Path<EventId>,
    body: Json<MarketBody>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    non_empty("name", &body.name, 200)?;
    for s in &body.selections {
        non_empty("selection name", &s.name, 200)?;
    }
    let spec = NewMarketSpec {
        market_type: body.market_type,
        handicap: parse_line("handicap", &body.handicap)?,
        total_points: parse_line("total_points", &body.total_points)?,
        name: body.name,
        selections: body
            .selections
            .into_iter()
            .map(|s| (s.name, s.odds))
            .collect(),
    };
    let actor = audit_actor(&trader, &req);
    let view = state.markets.create(path.into_inner(), spec, actor).await?;
    Ok(HttpResponse::Created().json(view))
}
