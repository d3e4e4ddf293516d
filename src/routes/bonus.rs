//! Bonus money and free bets (issue 17; docs/accounts.md, "Bonuses and free bets"): a
//! trader's grants and the bettor's list. Adapters only: `app::bonus` does the work.
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::app::bonus::Grant;
use crate::auth::AuthUser;
use crate::db::audit::Actor;
use crate::db::bonus::{BonusRow, FreeBetRow};
use crate::domain::ids::UserId;
use crate::domain::money::Money;
use crate::domain::Odds;
use crate::routes::error::ApiResult;
use crate::routes::extract::Trader;
use crate::routes::json::Json;
use crate::routes::{self, accounts::client_ip};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(grant_bonus, grant_free_bet, my_bonuses),
    components(schemas(BonusBody, FreeBetBody, BonusRow, FreeBetRow))
)]
pub struct BonusDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        routes::resource("/api/v1/trading/users/{id}/bonuses").route(web::post().to(grant_bonus)),
    )
    .service(
        routes::resource("/api/v1/trading/users/{id}/free-bets")
            .route(web::post().to(grant_free_bet)),
    )
    .service(routes::resource("/api/v1/me/bonuses").route(web::get().to(my_bonuses)));
}

/// `POST /api/v1/trading/users/{id}/bonuses`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BonusBody {
    #[schema(value_type = String, example = "10.00")]
    pub amount: Money,
    /// Settled qualifying stakes needed: amount × this.
    pub wagering_multiplier: i32,
    /// Every leg of a qualifying (or bonus-funded) bet needs at least these odds.
    #[schema(value_type = String, example = "1.5000")]
    pub min_odds: Odds,
    pub expires_at: DateTime<Utc>,
    pub idempotency_key: String,
}

/// `POST /api/v1/trading/users/{id}/free-bets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreeBetBody {
    #[schema(value_type = String, example = "5.00")]
    pub stake: Money,
    #[schema(value_type = String, example = "1.5000")]
    pub min_odds: Odds,
    pub expires_at: DateTime<Utc>,
    pub idempotency_key: String,
}

fn actor(trader: &Trader, req: &HttpRequest) -> Actor {
    Actor {
        user_id: Some(trader.0.user_id),
        ip: client_ip(req),
    }
}

#[utoipa::path(post, path = "/api/v1/trading/users/{id}/bonuses", tag = "trading",
    params(("id" = uuid::Uuid, Path)),
    request_body = BonusBody,
    responses((status = 201, body = BonusRow, description = "granted: a `bonus` transaction credited the bonus balance"),
              (status = 200, body = BonusRow, description = "the same key and payload: the first grant"),
              (status = 404), (status = 409, description = "bonus_not_eligible (reason active_bonus: one active bonus per user), idempotency_key_reused"),
              (status = 422)),
    security(("bearer" = [])))]
pub async fn grant_bonus(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    id: web::Path<UserId>,
    body: Json<BonusBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let grant = Grant {
        amount: b.amount.as_decimal(),
        wagering_multiplier: b.wagering_multiplier,
        min_odds: b.min_odds.value(),
        expires_at: b.expires_at,
        idempotency_key: b.idempotency_key,
    };
    let (row, new) = state
        .bonus
        .grant_bonus(*id, grant, actor(&trader, &req))
        .await?;
    Ok(created(new).json(row))
}

#[utoipa::path(post, path = "/api/v1/trading/users/{id}/free-bets", tag = "trading",
    params(("id" = uuid::Uuid, Path)),
    request_body = FreeBetBody,
    responses((status = 201, body = FreeBetRow, description = "granted: spend it with `free_bet_id` on a bet"),
              (status = 200, body = FreeBetRow, description = "the same key and payload: the first grant"),
              (status = 404), (status = 409, description = "idempotency_key_reused"), (status = 422)),
    security(("bearer" = [])))]
pub async fn grant_free_bet(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    id: web::Path<UserId>,
    body: Json<FreeBetBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let grant = Grant {
        amount: b.stake.as_decimal(),
        wagering_multiplier: 0,
        min_odds: b.min_odds.value(),
        expires_at: b.expires_at,
        idempotency_key: b.idempotency_key,
    };
    let (row, new) = state
        .bonus
        .grant_free_bet(*id, grant, actor(&trader, &req))
        .await?;
    Ok(created(new).json(row))
}

fn created(new: bool) -> actix_web::HttpResponseBuilder {
    if new {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
}

#[utoipa::path(get, path = "/api/v1/me/bonuses", tag = "accounts",
    responses((status = 200, description = "`bonus_balance`, `bonuses` (active first, with `wagering_progress` of `wagering_required`), `free_bets` (available first, with `expires_at`)"),
              (status = 401)),
    security(("bearer" = [])))]
pub async fn my_bonuses(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let (bonuses, free_bets) = state.bonus.list(user.user_id).await?;
    let client = state.db.get().await?;
    let balance = crate::db::wallet::get_balance(&client, user.user_id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "bonus_balance": balance.map(|b| format!("{:.2}", b.bonus_balance)).unwrap_or_else(|| "0.00".into()),
        "bonuses": bonuses,
        "free_bets": free_bets,
    })))
}
