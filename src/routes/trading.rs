//! Trading control (API.md, "Trading"): create the catalogue, price markets, suspend,
//! resume and close them, set event status, read liability, change a market's settings.
//! Writes need a moderator or admin ([`Trader`]); liability reads any trading reader.
//! Every change is answered only once durable, with the new state.
use actix_web::{web, HttpRequest};

use crate::actors::event::EventState;
use crate::actors::market::{LiabilityView, MarketView};
use crate::actors::AuditActor;
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::extract::Trader;
use crate::routes::resource;

mod catalogue;
mod events;
mod markets;

use catalogue::*;
use events::*;
use markets::*;

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
