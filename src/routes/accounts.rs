//! Account endpoints: register, login, logout, profile, preferences and self-exclusion.
use std::net::IpAddr;
use std::sync::LazyLock;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::accounts::register::{register as register_user, Registration};
use crate::accounts::security_log::Event;
use crate::accounts::{ratelimit, validate};
use crate::auth::{password, session, AuthUser, Role};
use crate::db::audit::Actor;
use crate::db::users::{self, UserRow};
use crate::domain::ids::UserId;
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::json::Json;
use crate::routes::{self, me};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(register, login, logout),
    components(schemas(RegisterBody, LoginBody, LoginAnswer, UserRow)),
    modifiers(&BearerScheme),
    tags((name = "accounts", description = "Registration, sessions, profile, preferences, responsible gaming"))
)]
pub struct AccountsDoc;

/// Declares the `bearer` security scheme the protected paths refer to.
pub struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Session token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(routes::resource("/api/v1/auth/register").route(web::post().to(register)))
        .service(routes::resource("/api/v1/auth/login").route(web::post().to(login)))
        .service(routes::resource("/api/v1/auth/logout").route(web::post().to(logout)));
    me::configure(cfg);
}

/// The client's address as the TCP peer (never a header: those are forgeable).
/// The client's address (the peer, or what a trusted proxy forwarded: `auth::client`).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    crate::auth::client::client_ip(req)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    pub username: String,
    pub email: String,
    pub password: String,
    /// `YYYY-MM-DD`, at least 18 years ago.
    pub date_of_birth: Option<String>,
    /// ISO 3166-1 alpha-2, default `US`.
    pub country_code: Option<String>,
    /// ISO 4217, one of `accounts.currencies` (default: the first, `USD`); fixed for the
    /// account's life: every money row of the account is in it.
    pub currency_code: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "accounts", request_body = RegisterBody,
    responses((status = 201, body = UserRow), (status = 409, description = "username_taken, email_taken"),
              (status = 422, description = "validation_failed, under_age")))]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<RegisterBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let registration = Registration {
        username: &b.username,
        email: &b.email,
        password: &b.password,
        date_of_birth: b.date_of_birth.as_deref(),
        country_code: b.country_code.as_deref(),
        currency_code: b.currency_code.as_deref(),
        role: Role::User,
        currencies: &state.settings.accounts.currencies,
    };
    let actor = Actor {
        user_id: None,
        ip: client_ip(&req),
    };
    let user = register_user(&state.db, &state.passwords, &registration, actor).await?;
    Ok(HttpResponse::Created().json(user))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    /// Username or email.
    pub login: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginAnswer {
    /// Opaque bearer token for `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserRow,
}

/// A PHC hash of a random password, verified against when the login is unknown so that
/// unknown and known accounts take the same time.
static DUMMY_PHC: LazyLock<Option<String>> = LazyLock::new(|| {
    password::hash("winzo-dummy-password-for-timing")
        .ok()
        .map(|h| h.phc)
});

fn storage_down(err: redis::RedisError) -> ApiError {
    tracing::warn!(error = %err, "session store unreachable");
    ApiError::unavailable("session store unavailable; retry shortly")
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = LoginBody,
    responses((status = 200, body = LoginAnswer), (status = 401, description = "invalid_credentials"),
              (status = 403, description = "account_restricted (suspended or banned)"),
              (status = 429, description = "rate_limited, with Retry-After"),
              (status = 503, description = "session store unreachable")))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    if b.login.is_empty() || b.login.len() > validate::EMAIL_BYTES_MAX {
        return Err(ApiError::validation("login: must be 1 to 254 bytes"));
    }
    if b.password.len() > validate::PASSWORD_BYTES_MAX {
        return Err(ApiError::validation("password: is too long"));
    }
    let auth = &state.settings.auth;
    let ip = client_ip(&req);
    let ip_text = ip
        .map(|i| i.to_string())
        .unwrap_or_else(|| "unknown".into());
    let keys = ratelimit::LoginKeys::new(&auth.login_rate_key_prefix, &b.login, &ip_text);
    take_attempt(&state, &keys, ip, &b.login).await?;
    let client = state.db.get().await?;
    let found = users::find_for_login(&client, &b.login).await?;
    drop(client);
    let verified = verify_password(
        &state.passwords,
        found.as_ref().map(|f| f.password_hash.clone()),
        &b.password,
    )
    .await?;
    let attempts = &state.metrics.login_attempts_total;
    let user = match found {
        Some(f) if verified => f.user,
        other => {
            attempts.with_label_values(&["failed"]).inc();
            // The attempt was counted before the check: nothing more to count.
            let user_id = other.map(|f| f.user.id);
            state
                .security
                .record(login_event("login_failed", user_id, ip, &b.login));
            return Err(ApiError::unauthorized("invalid login or password")
                .with_code("invalid_credentials"));
        }
    };
    attempts.with_label_values(&["succeeded"]).inc();
    ratelimit::succeeded(&state.redis, &keys)
        .await
        .map_err(storage_down)?;
    if user.status.is_restricted() {
        state.security.record(login_event(
            "login_refused_restricted",
            Some(user.id),
            ip,
            &b.login,
        ));
        return Err(ApiError::forbidden(format!("account is {}", user.status))
            .with_code("account_restricted"));
    }
    let role =
        Role::parse(&user.role).ok_or_else(|| ApiError::internal("unknown role in users"))?;
    let (token, session) = session::create(&state.redis, user.id, role, auth.session_ttl_s)
        .await
        .map_err(storage_down)?;
    record_login(&state, user.id, ip).await;
    Ok(HttpResponse::Ok().json(LoginAnswer {
        token,
        expires_at: session.expires_at,
        user,
    }))
}

/// Counts the attempt before any password is checked; 429 with `Retry-After` when the
/// account or the client address is over its maximum.
async fn take_attempt(
    state: &AppState,
    keys: &ratelimit::LoginKeys,
    ip: Option<IpAddr>,
    login: &str,
) -> ApiResult<()> {
    let auth = &state.settings.auth;
    let refused = ratelimit::take_attempt(
        &state.redis,
        keys,
        auth.login_failure_window_s,
        auth.login_failures_per_account_max,
        auth.login_failures_per_address_max,
    )
    .await
    .map_err(storage_down)?;
    match refused {
        Some(retry_after_s) => {
            state
                .metrics
                .login_attempts_total
                .with_label_values(&["throttled"])
                .inc();
            state
                .security
                .record(login_event("login_rate_limited", None, ip, login));
            Err(ApiError::rate_limited(retry_after_s))
        }
        None => Ok(()),
    }
}

/// Verifies on the password threads; an unknown account is checked against a dummy hash so
/// both take the same time.
async fn verify_password(
    passwords: &password::pool::PasswordPool,
    phc: Option<String>,
    password: &str,
) -> ApiResult<bool> {
    let phc = phc.or_else(|| DUMMY_PHC.clone()).unwrap_or_default();
    let pw = password.to_string();
    Ok(passwords.run(move || password::verify(&pw, &phc)).await?)
}

/// Best effort: `last_login_at` (audited with the user as actor).
async fn record_login(state: &AppState, user_id: UserId, ip: Option<IpAddr>) {
    let result = async {
        let mut client = state.db.get().await?;
        let tx = client.transaction().await?;
        crate::db::audit::set_actor(
            &tx,
            Actor {
                user_id: Some(user_id),
                ip,
            },
        )
        .await?;
        users::touch_last_login(&tx, user_id).await?;
        tx.commit().await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %format!("{err:#}"), "recording last login");
    }
}

fn login_event(
    kind: &'static str,
    user_id: Option<UserId>,
    ip: Option<IpAddr>,
    login: &str,
) -> Event {
    let login: String = login.chars().take(64).collect();
    Event {
        event_type: kind,
        severity: "warning",
        message: format!("{kind} for login {login:?}"),
        details: json!({ "login": login }),
        user_id,
        ip,
    }
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    responses((status = 204, description = "token revoked"), (status = 401), (status = 503)),
    security(("bearer" = [])))]
pub async fn logout(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    state.sessions.forget_token(&user.token);
    session::revoke(&state.redis, &user.token, user.user_id)
        .await
        .map_err(storage_down)?;
    Ok(HttpResponse::NoContent().finish())
}
