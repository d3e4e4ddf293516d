//! Trading-desk endpoints of issue 3: the audit trail reader and per-user controls
//! (status, stake factor, max stake).
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::app::accounts::AccountService;
use crate::auth::Role;
use crate::db::audit::{self, Actor, AuditEntry, AuditFilter};
use crate::db::users::{self, TradingPatch, TradingUser};
use crate::domain::account::UserStatus;
use crate::domain::ids::UserId;
use crate::domain::money::{parse_fixed_point, Money, BET_COLUMN_MAX};
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::extract::{Trader, TradingReader};
use crate::routes::json::Json;
use crate::routes::{self, accounts::client_ip};
use crate::state::AppState;

/// Tables whose changes land in `audit_log` (migration V6).
pub const AUDITED_TABLES: &[&str] = &[
    "users",
    "user_profiles",
    "user_preferences",
    "user_balances",
    "transactions",
    "payment_methods",
    "sports",
    "leagues",
    "teams",
    "events",
    "markets",
    "selections",
    "bets",
];

#[derive(OpenApi)]
#[openapi(
    paths(audit_trail, get_user, patch_user, set_role),
    components(schemas(AuditEntry, TradingUser, UserPatchBody, RoleBody)),
    tags((name = "trading", description = "Trading desk (moderator, admin; support reads)"))
)]
pub struct AuditDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(routes::resource("/api/v1/trading/audit").route(web::get().to(audit_trail)))
        .service(
            routes::resource("/api/v1/trading/users/{id}")
                .route(web::get().to(get_user))
                .route(web::patch().to(patch_user)),
        )
        .service(
            routes::resource("/api/v1/trading/users/{id}/role").route(web::post().to(set_role)),
        );
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// One of the audited tables.
    pub table: Option<String>,
    pub record_id: Option<Uuid>,
    /// The acting user.
    #[param(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<UserId>,
    /// RFC 3339, inclusive.
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive.
    pub to: Option<DateTime<Utc>>,
    /// `person`: only changes made by someone (traders, bettors, support: the desk's view);
    /// `engine`: only the engine's own (feeds, settlement). Default: both.
    pub actor: Option<String>,
    /// 1 to `audit.page_max` (default 100).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/trading/audit", tag = "trading", params(AuditQuery),
    responses((status = 200, body = [AuditEntry], description = "newest first"), (status = 401), (status = 403),
        (status = 422)), security(("bearer" = [])))]
pub async fn audit_trail(
    state: web::Data<AppState>,
    _reader: TradingReader,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let cfg = &state.settings.audit;
    if let Some(t) = &q.table {
        if !AUDITED_TABLES.contains(&t.as_str()) {
            return Err(ApiError::validation("table: not an audited table")
                .with_details(json!({"field": "table", "allowed": AUDITED_TABLES})));
        }
    }
    let limit = q.limit.unwrap_or(100.min(cfg.page_max));
    let offset = q.offset.unwrap_or(0);
    if !(1..=cfg.page_max).contains(&limit) || !(0..=cfg.offset_max).contains(&offset) {
        return Err(ApiError::validation(format!(
            "limit must be 1 to {}, offset 0 to {}",
            cfg.page_max, cfg.offset_max
        )));
    }
    let by_person = match q.actor.as_deref() {
        None => None,
        Some("person") => Some(true),
        Some("engine") => Some(false),
        Some(_) => {
            return Err(ApiError::validation("actor: must be person or engine")
                .with_details(json!({"field": "actor"})))
        }
    };
    let filter = AuditFilter {
        by_person,
        table: q.table,
        record_id: q.record_id,
        user_id: q.user_id,
        from: q.from,
        to: q.to,
        limit,
        offset,
    };
    let client = state.db.get().await?;
    let rows = audit::list_audit(&client, &filter).await?;
    Ok(HttpResponse::Ok().json(json!({ "entries": rows, "limit": limit, "offset": offset })))
}

#[utoipa::path(get, path = "/api/v1/trading/users/{id}", tag = "trading",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = TradingUser), (status = 403), (status = 404)), security(("bearer" = [])))]
pub async fn get_user(
    state: web::Data<AppState>,
    _reader: TradingReader,
    id: web::Path<UserId>,
) -> ApiResult<HttpResponse> {
    let client = state.db.get().await?;
    let user = users::get_trading_user(&client, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(HttpResponse::Ok().json(user))
}

/// `null` → `Some(None)` (clear), absent → `None` (keep).
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    /// `active`, `suspended`, `banned` or `pending`; suspended and banned revoke every
    /// session at once.
    pub status: Option<String>,
    /// Decimal string, > 0, at most 3 places and 999.999.
    pub stake_factor: Option<String>,
    /// Money string, or null to remove the cap.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub max_stake: Option<Option<String>>,
}

fn check_patch(b: UserPatchBody) -> Result<TradingPatch, ApiError> {
    let status = b
        .status
        .as_deref()
        .map(|s| {
            s.parse::<UserStatus>().map_err(|_| {
                ApiError::validation("status: must be active, suspended, banned or pending")
                    .with_details(json!({"field": "status"}))
            })
        })
        .transpose()?;
    let stake_factor = b
        .stake_factor
        .as_deref()
        .map(|s| {
            parse_fixed_point(s, 3)
                .ok()
                .filter(|d| *d > Decimal::ZERO && *d <= Decimal::new(999_999, 3))
                .ok_or_else(|| {
                    ApiError::validation("stake_factor: a decimal string > 0, at most 999.999")
                        .with_details(json!({"field": "stake_factor"}))
                })
        })
        .transpose()?;
    let max_stake = match b.max_stake {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) => Some(Some(
            Money::parse_positive(&s, BET_COLUMN_MAX)
                .map_err(|e| {
                    ApiError::validation(format!("max_stake: {e}"))
                        .with_details(json!({"field": "max_stake", "reason": e.code()}))
                })?
                .as_decimal(),
        )),
    };
    Ok(TradingPatch {
        status,
        stake_factor,
        max_stake,
        role: None,
    })
}

#[utoipa::path(patch, path = "/api/v1/trading/users/{id}", tag = "trading", request_body = UserPatchBody,
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = TradingUser),
              (status = 403, description = "role_boundary: the account's role is not below yours (or a role change by a non-admin)"),
              (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn patch_user(
    state: web::Data<AppState>,
    trader: Trader,
    req: HttpRequest,
    id: web::Path<UserId>,
    body: Json<UserPatchBody>,
) -> ApiResult<HttpResponse> {
    let patch = check_patch(body.into_inner())?;
    change_account(&state, &trader.0, &req, *id, patch).await
}

/// A staff change of an account (the service checks the role boundaries).
async fn change_account(
    state: &AppState,
    staff: &crate::auth::AuthUser,
    req: &HttpRequest,
    user_id: UserId,
    patch: TradingPatch,
) -> ApiResult<HttpResponse> {
    let service = AccountService {
        db: state.db.clone(),
        controls: state.controls.clone(),
        currencies: state.registry.currencies().clone(),
    };
    let actor = Actor {
        user_id: Some(staff.user_id),
        ip: client_ip(req),
    };
    let user = service
        .staff_change(staff.role, actor, user_id, patch)
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// `user`, `support` or `moderator`: always below admin (admins are made on the server
    /// with `winzo create-user`).
    pub role: String,
}

#[utoipa::path(post, path = "/api/v1/trading/users/{id}/role", tag = "trading", request_body = RoleBody,
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = TradingUser, description = "the account with its new role; its sessions ended"),
              (status = 403, description = "not an admin, or role_boundary: the account or the new role is not below admin"),
              (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn set_role(
    state: web::Data<AppState>,
    admin: crate::routes::extract::AdminUser,
    req: HttpRequest,
    id: web::Path<UserId>,
    body: Json<RoleBody>,
) -> ApiResult<HttpResponse> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::validation("role: must be user, support, moderator or admin")
            .with_details(json!({"field": "role"}))
    })?;
    let patch = TradingPatch {
        status: None,
        stake_factor: None,
        max_stake: None,
        role: Some(role.as_str().to_string()),
    };
    change_account(&state, &admin.0, &req, *id, patch).await
}
