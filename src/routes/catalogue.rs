//! The public catalogue (API.md, "Catalogue"): sports, a sport's events, one event with
//! live odds, and full-text search. Live state comes straight from the actors (never staler
//! than they are: a suspended market shows suspended the moment the actor is); only events
//! without an actor (finished, cancelled) are read from Postgres.
//!
//! Odds are shown as the canonical decimal `odds` beside `odds_display` in the caller's
//! format: the signed-in caller's preference, else `?odds_format=`, else decimal.
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::actors::event::GetEvent;
use crate::actors::market::{GetMarket, MarketView};
use crate::db::catalogue as cat;
use crate::domain::ids::EventId;
use crate::domain::{display, MarketStatus, Odds, OddsFormat};
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::resource;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_sports, sport_events, get_event, search),
    tags((name = "catalogue", description = "Public catalogue with live odds"))
)]
pub struct CatalogueDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/sports").route(web::get().to(list_sports)))
        .service(resource("/api/v1/sports/{slug}/events").route(web::get().to(sport_events)))
        .service(resource("/api/v1/events/{id}").route(web::get().to(get_event)))
        .service(resource("/api/v1/search").route(web::get().to(search)));
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct FormatQuery {
    /// `american`, `decimal` or `fractional` (a signed-in caller's preference wins).
    odds_format: Option<String>,
}

/// The caller's odds format: their preference if a valid token is given, else the query,
/// else decimal. A bad token is not an error on a public route; a bad format is a 400.
async fn caller_format(
    state: &AppState,
    req: &HttpRequest,
    query: Option<&str>,
) -> ApiResult<OddsFormat> {
    if let Some(token) = crate::routes::extract::bearer_token(req) {
        if let Ok(user) = crate::routes::extract::authenticate(state, &token).await {
            let client = state.db.get().await?;
            if let Some(f) = cat::user_odds_format(&**client, user.user_id).await? {
                return Ok(f);
            }
        }
    }
    match query {
        Some(q) => q.parse().map_err(|_| {
            ApiError::bad_request("odds_format must be american, decimal or fractional")
        }),
        None => Ok(OddsFormat::Decimal),
    }
}

#[utoipa::path(get, path = "/api/v1/sports", tag = "catalogue",
    responses((status = 200, description = "active sports")))]
pub async fn list_sports(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let client = state.db.get().await?;
    let sports = cat::list_sports(&**client).await?;
    Ok(HttpResponse::Ok().json(json!({"sports": sports})))
}

/// A sport's event list: a page, and which statuses (default: upcoming and live).
#[derive(Deserialize, utoipa::IntoParams)]
pub struct EventsQuery {
    /// 1 to `markets.catalogue_page_limit_max`, default 20.
    limit: Option<i64>,
    /// Default 0.
    offset: Option<i64>,
    /// Comma-separated event statuses (`scheduled, live, halftime, finished, postponed,
    /// cancelled, suspended`), or `all`; default `scheduled,live,halftime,suspended`.
    status: Option<String>,
}

/// The statuses a list asks for (422 naming the unknown one).
fn listed_statuses(asked: Option<&str>) -> ApiResult<Vec<&'static str>> {
    use crate::domain::EventStatus;
    let all = EventStatus::ALL.iter();
    match asked.map(str::trim) {
        None | Some("") => Ok(all
            .filter(|s| s.is_upcoming_or_live())
            .map(|s| s.as_str())
            .collect()),
        Some("all") => Ok(all.map(|s| s.as_str()).collect()),
        Some(list) => list
            .split(',')
            .map(|name| {
                name.trim()
                    .parse::<EventStatus>()
                    .map(|s| s.as_str())
                    .map_err(|_| {
                        ApiError::validation(format!("status: unknown event status {name:?}"))
                            .with_details(json!({"field": "status"}))
                    })
            })
            .collect(),
    }
}

#[utoipa::path(get, path = "/api/v1/sports/{slug}/events", tag = "catalogue",
    params(("slug" = String, Path, description = "sport slug"), EventsQuery),
    responses((status = 200, description = "upcoming and live events (or those of `status`) with market counts and their league (`league_id`, `league_name`, null without one), live first, then by start time"),
              (status = 404, description = "unknown sport")))]
pub async fn sport_events(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> ApiResult<HttpResponse> {
    let statuses = listed_statuses(query.status.as_deref())?;
    let max = state.settings.markets.catalogue_page_limit_max;
    let limit = query.limit.unwrap_or(20.min(max));
    let offset = query.offset.unwrap_or(0);
    if !(1..=max).contains(&limit) || !(0..=1_000_000).contains(&offset) {
        return Err(ApiError::validation(format!(
            "limit must be 1 to {max}, offset 0 to 1000000"
        )));
    }
    let client = state.db.get().await?;
    let sport_id = cat::sport_id_by_slug(&**client, &path)
        .await?
        .ok_or_else(|| ApiError::not_found("sport"))?;
    let rows = cat::events_page(&**client, sport_id, &statuses, limit, offset).await?;
    drop(client);
    let reg = &state.registry;
    let mut events = Vec::with_capacity(rows.len());
    for r in rows {
        // The live status wins over the stored one (they differ only while a write is in flight).
        let mut status = r.status;
        if let Some(addr) = reg.running_event(r.event_id) {
            if let Ok((st, _)) = reg.ask(&addr, |reply| GetEvent { reply }).await {
                status = st.status.to_string();
            }
        }
        events.push(json!({
            "id": r.event_id, "home_team_name": r.home_team_name, "away_team_name": r.away_team_name,
            "start_time": r.start_time, "status": status, "market_count": r.market_count,
            "league_id": r.league_id, "league_name": r.league_name,
        }));
    }
    Ok(HttpResponse::Ok().json(json!({"events": events, "limit": limit, "offset": offset})))
}

fn price(odds: Odds, format: OddsFormat) -> Value {
    json!({"odds": odds, "odds_display": display(odds, format)})
}

fn market_json(m: &MarketView, format: OddsFormat) -> Value {
    let selections: Vec<Value> = m
        .selections
        .iter()
        .map(|s| {
            let mut v = json!({"id": s.id, "name": s.name});
            if let (Value::Object(o), Value::Object(p)) = (&mut v, price(s.odds, format)) {
                o.extend(p);
            }
            v
        })
        .collect();
    json!({
        "id": m.id, "type": m.market_type, "name": m.name, "handicap": m.handicap,
        "total_points": m.total_points, "status": m.status, "in_play": m.in_play,
        "min_stake": m.settings.min_stake, "max_stake": m.settings.max_stake,
        "bet_delay_ms": m.settings.bet_delay_ms, "selections": selections,
    })
}

#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "catalogue",
    params(("id" = Uuid, Path, description = "event id"), FormatQuery),
    responses((status = 200, description = "event with score, clock, status and every market with live odds"),
              (status = 404, description = "unknown event")))]
pub async fn get_event(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<EventId>,
    query: web::Query<FormatQuery>,
) -> ApiResult<HttpResponse> {
    let format = caller_format(&state, &req, query.odds_format.as_deref()).await?;
    let id = path.into_inner();
    let reg = &state.registry;
    let Some(addr) = reg.event(id).await? else {
        return stored_event(&state, id, format).await;
    };
    let (event, market_addrs) = reg.ask(&addr, |reply| GetEvent { reply }).await?;
    let mut markets = Vec::with_capacity(market_addrs.len());
    for m in market_addrs {
        match reg.ask(&m, |reply| GetMarket { reply }).await {
            Ok(view) if !matches!(view.status, MarketStatus::Settled | MarketStatus::Voided) => {
                markets.push(market_json(&view, format))
            }
            Ok(_) | Err(crate::actors::AskError::Gone) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut body = serde_json::to_value(&event).map_err(ApiError::internal)?;
    if let Value::Object(o) = &mut body {
        o.insert("odds_format".into(), json!(format));
        o.insert("markets".into(), Value::Array(markets));
    }
    Ok(HttpResponse::Ok().json(body))
}

/// An event without an actor (over): everything from Postgres.
async fn stored_event(
    state: &AppState,
    id: EventId,
    format: OddsFormat,
) -> ApiResult<HttpResponse> {
    let client = state.db.get().await?;
    let event = crate::db::markets::load_event(&**client, id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let markets: Vec<Value> = cat::stored_markets(&**client, id)
        .await?
        .into_iter()
        .map(|m| {
            let selections: Vec<Value> = m
                .selections
                .iter()
                .map(|(sid, name, odds, result)| {
                    let shown = Odds::from_decimal(*odds, crate::domain::odds::ODDS_COLUMN_MAX)
                        .map(|o| display(o, format))
                        .unwrap_or_default();
                    json!({"id": sid, "name": name, "odds": odds, "odds_display": shown, "result": result})
                })
                .collect();
            json!({"id": m.id, "type": m.market_type, "name": m.name, "handicap": m.handicap,
                   "total_points": m.total_points, "status": m.status, "in_play": m.in_play,
                   "selections": selections})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "id": event.id, "sport_id": event.sport_id, "sport_slug": event.sport_slug,
        "league_id": event.league_id, "home_team_id": event.home_team_id,
        "away_team_id": event.away_team_id, "home_team_name": event.home_team_name,
        "away_team_name": event.away_team_name, "start_time": event.start_time,
        "status": event.status, "period": event.period, "clock": event.clock,
        "home_score": event.home_score, "away_score": event.away_score, "venue": event.venue,
        "odds_format": format, "markets": markets,
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    q: String,
}

#[utoipa::path(get, path = "/api/v1/search", tag = "catalogue", params(SearchQuery),
    responses((status = 200, description = "matching teams and upcoming or live events")))]
pub async fn search(
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let cfg = &state.settings.markets;
    let q = query.q.trim();
    if q.is_empty() || q.chars().count() > cfg.search_query_chars_max {
        return Err(ApiError::validation(format!(
            "q must be 1 to {} characters",
            cfg.search_query_chars_max
        )));
    }
    let client = state.db.get().await?;
    let teams = cat::search_teams(&**client, q, cfg.search_results_max).await?;
    let events = cat::search_events(&**client, q, cfg.search_results_max).await?;
    Ok(HttpResponse::Ok().json(json!({"query": q, "teams": teams, "events": events})))
}
