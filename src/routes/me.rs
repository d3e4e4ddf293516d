//! `/me` endpoints of an account: profile, preferences (with betting limits and their
//! cooling-off) and self-exclusion.
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{OpenApi, ToSchema};

use crate::accounts::validate;
use crate::app::accounts::{AccountService, PreferencesPatch};
use crate::auth::AuthUser;
use crate::db::audit::Actor;
use crate::db::users::{self, PreferencesRow, Profile, ProfilePatch};
use crate::domain::betting_limits::{self as limits, BettingLimits};
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::json::Json;
use crate::routes::{self, accounts::client_ip};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(
        get_profile,
        patch_profile,
        get_preferences,
        patch_preferences,
        self_exclusion
    ),
    components(schemas(
        Profile,
        ProfileBody,
        PreferencesBody,
        PreferencesAnswer,
        SelfExclusionBody,
        NotificationsBody,
        LimitsBody,
        ResponsibleGamingBody
    ))
)]
pub struct MeDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        routes::resource("/api/v1/me/profile")
            .route(web::get().to(get_profile))
            .route(web::patch().to(patch_profile)),
    )
    .service(
        routes::resource("/api/v1/me/preferences")
            .route(web::get().to(get_preferences))
            .route(web::patch().to(patch_preferences)),
    )
    .service(routes::resource("/api/v1/me/self-exclusion").route(web::post().to(self_exclusion)));
}

fn accounts(state: &AppState) -> AccountService {
    AccountService {
        db: state.db.clone(),
        controls: state.controls.clone(),
        currencies: state.registry.currencies().clone(),
    }
}

fn actor(user: &AuthUser, req: &HttpRequest) -> Actor {
    Actor {
        user_id: Some(user.user_id),
        ip: client_ip(req),
    }
}

#[utoipa::path(get, path = "/api/v1/me/profile", tag = "accounts",
    responses((status = 200, body = Profile), (status = 401)), security(("bearer" = [])))]
pub async fn get_profile(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let client = state.db.get().await?;
    let profile = users::get_profile(&client, user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?;
    Ok(HttpResponse::Ok().json(profile))
}

/// Fields of `user_profiles` a user may change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `YYYY-MM-DD`, at least 18 years ago.
    pub date_of_birth: Option<String>,
    pub phone: Option<String>,
    pub country_code: Option<String>,
    pub timezone: Option<String>,
    pub language_code: Option<String>,
    pub currency_code: Option<String>,
}

fn check_profile(b: ProfileBody, currencies: &[String]) -> Result<ProfilePatch, ApiError> {
    if let Some(v) = &b.first_name {
        validate::name("first_name", v)?;
    }
    if let Some(v) = &b.last_name {
        validate::name("last_name", v)?;
    }
    if let Some(v) = &b.phone {
        validate::phone(v)?;
    }
    if let Some(v) = &b.country_code {
        validate::country_code(v)?;
    }
    if let Some(v) = &b.timezone {
        validate::timezone(v)?;
    }
    if let Some(v) = &b.language_code {
        validate::language_code(v)?;
    }
    if let Some(v) = &b.currency_code {
        validate::supported_currency(v, currencies)?;
    }
    let date_of_birth = b
        .date_of_birth
        .as_deref()
        .map(validate::date_of_birth)
        .transpose()?;
    Ok(ProfilePatch {
        first_name: b.first_name,
        last_name: b.last_name,
        date_of_birth,
        phone: b.phone,
        country_code: b.country_code,
        timezone: b.timezone,
        language_code: b.language_code,
        currency_code: b.currency_code,
    })
}

#[utoipa::path(patch, path = "/api/v1/me/profile", tag = "accounts", request_body = ProfileBody,
    responses((status = 200, body = Profile), (status = 401),
              (status = 409, description = "currency_fixed: an account's currency cannot change"),
              (status = 422)), security(("bearer" = [])))]
pub async fn patch_profile(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: Json<ProfileBody>,
) -> ApiResult<HttpResponse> {
    let patch = check_profile(body.into_inner(), &state.settings.accounts.currencies)?;
    let profile = accounts(&state)
        .update_profile(actor(&user, &req), user.user_id, &patch)
        .await?;
    Ok(HttpResponse::Ok().json(profile))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesAnswer {
    /// `american`, `decimal` or `fractional`.
    pub odds_format: String,
    pub notifications: Value,
    /// Caps in force (money strings) and `pending` raises with their `effective_at`.
    pub betting_limits: Value,
    pub responsible_gaming: Value,
    pub updated_at: DateTime<Utc>,
}

fn answer(p: PreferencesRow, now: DateTime<Utc>) -> PreferencesAnswer {
    let mut l = BettingLimits::from_stored(&p.betting_limits);
    l.promote_due(now);
    PreferencesAnswer {
        odds_format: p.odds_format,
        notifications: p.notifications,
        betting_limits: l.to_json(),
        responsible_gaming: p.responsible_gaming,
        updated_at: p.updated_at,
    }
}

#[utoipa::path(get, path = "/api/v1/me/preferences", tag = "accounts",
    responses((status = 200, body = PreferencesAnswer), (status = 401)), security(("bearer" = [])))]
pub async fn get_preferences(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<HttpResponse> {
    let client = state.db.get().await?;
    let p = users::get_preferences(&client, user.user_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("preferences"))?;
    Ok(HttpResponse::Ok().json(answer(p, Utc::now())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationsBody {
    pub email: Option<bool>,
    pub sms: Option<bool>,
    pub push: Option<bool>,
}

/// Stake caps as money strings; a cut applies now, a raise after the cooling-off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsBody {
    pub daily: Option<String>,
    pub weekly: Option<String>,
    pub monthly: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponsibleGamingBody {
    /// Minutes, 5 to 1440.
    pub session_timeout: Option<u32>,
    pub reality_check: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    /// `american`, `decimal` or `fractional`.
    pub odds_format: Option<String>,
    pub notifications: Option<NotificationsBody>,
    pub betting_limits: Option<LimitsBody>,
    pub responsible_gaming: Option<ResponsibleGamingBody>,
}

/// Validates a preferences body into the service's patch.
fn check_preferences(b: PreferencesBody) -> Result<PreferencesPatch, ApiError> {
    let mut patch = PreferencesPatch::default();
    if let Some(f) = b.odds_format {
        if !matches!(f.as_str(), "american" | "decimal" | "fractional") {
            return Err(ApiError::validation(
                "odds_format: must be american, decimal or fractional",
            )
            .with_details(json!({"field": "odds_format"})));
        }
        patch.odds_format = Some(f);
    }
    if let Some(n) = b.notifications {
        patch.notifications = [("email", n.email), ("sms", n.sms), ("push", n.push)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
    }
    if let Some(rg) = b.responsible_gaming {
        if let Some(t) = rg.session_timeout {
            if !(5..=1440).contains(&t) {
                return Err(ApiError::validation(
                    "responsible_gaming.session_timeout: 5 to 1440 minutes",
                )
                .with_details(json!({"field": "responsible_gaming.session_timeout"})));
            }
        }
        patch.session_timeout = rg.session_timeout;
        patch.reality_check = rg.reality_check;
    }
    if let Some(lb) = b.betting_limits {
        for (period, value) in limits::PERIODS
            .into_iter()
            .zip([lb.daily, lb.weekly, lb.monthly])
        {
            let Some(value) = value else { continue };
            let amount = limits::parse_cap(&value).map_err(|e| {
                ApiError::validation(format!("betting_limits.{period}: {e}")).with_details(
                    json!({"field": format!("betting_limits.{period}"), "reason": e.code()}),
                )
            })?;
            patch.limits.push((period, amount));
        }
    }
    Ok(patch)
}

#[utoipa::path(patch, path = "/api/v1/me/preferences", tag = "accounts", request_body = PreferencesBody,
    responses((status = 200, body = PreferencesAnswer), (status = 401), (status = 422)),
    security(("bearer" = [])))]
pub async fn patch_preferences(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: Json<PreferencesBody>,
) -> ApiResult<HttpResponse> {
    let patch = check_preferences(body.into_inner())?;
    let now = Utc::now();
    let cooling_off =
        chrono::Duration::seconds(state.settings.accounts.limit_raise_cooling_off_s as i64);
    let row = accounts(&state)
        .update_preferences(actor(&user, &req), user.user_id, patch, now, cooling_off)
        .await?;
    Ok(HttpResponse::Ok().json(answer(row, now)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfExclusionBody {
    /// Whole days, 1 to `accounts.self_exclusion_days_max`.
    pub days: u32,
}

#[utoipa::path(post, path = "/api/v1/me/self-exclusion", tag = "accounts", request_body = SelfExclusionBody,
    responses((status = 200, description = "`{self_excluded_until}`; every session revoked"),
              (status = 409, description = "self_exclusion_active: a longer exclusion is in force (it cannot be shortened)"),
              (status = 422)), security(("bearer" = [])))]
pub async fn self_exclusion(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: Json<SelfExclusionBody>,
) -> ApiResult<HttpResponse> {
    let days = body.days;
    let max = state.settings.accounts.self_exclusion_days_max;
    if days == 0 || days > max {
        return Err(ApiError::validation(format!("days: must be 1 to {max}"))
            .with_details(json!({"field": "days"})));
    }
    let until = Utc::now() + chrono::Duration::days(i64::from(days));
    let in_force = accounts(&state)
        .self_exclude(actor(&user, &req), user.user_id, until)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "self_excluded_until": in_force })))
}
