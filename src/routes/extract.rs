//! Request extractors that authenticate and authorize in one place.
//!
//! `AuthUser` checks the bearer token against Redis (503 when Redis cannot answer: fail
//! closed). The typed guards `Trader`, `TradingReader` and `AdminUser` also check the
//! role through `auth::roles::allowed`; a handler that takes one cannot forget the check.
use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use crate::auth::{AuthUser, RouteClass};
use crate::domain::ids::UserId;
use crate::routes::error::ApiError;
use crate::state::AppState;

/// Fails with 403 unless the user's role may use routes of `class`.
pub fn require(user: &AuthUser, class: RouteClass) -> Result<(), ApiError> {
    if user.may(class) {
        Ok(())
    } else {
        Err(ApiError::forbidden("your role may not use this route"))
    }
}

/// The bearer token of a request, if any.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get("Authorization")?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    let token = token.trim();
    (!token.is_empty() && token.len() <= 256).then(|| token.to_string())
}

/// Resolves a token to its session (401 unknown, 503 Redis down).
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    Ok(crate::auth::authenticate(&state.sessions, &state.redis, token).await?)
}

/// Writes a refused request (401 or 403) to `system_events` through the bounded
/// security log; other refusals (503) are not authorization failures.
fn record_refusal(req: &HttpRequest, err: &ApiError, user_id: Option<UserId>) {
    let status = err.status.as_u16();
    if status != 401 && status != 403 {
        return;
    }
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return;
    };
    let path: String = req.path().chars().take(200).collect();
    let kind = if status == 401 {
        "auth_failed"
    } else {
        "access_denied"
    };
    state.security.record(crate::accounts::security_log::Event {
        event_type: kind,
        severity: "warning",
        message: format!("{status} on {} {path}", req.method()),
        details: serde_json::json!({ "path": path, "method": req.method().as_str(), "status": status }),
        user_id,
        ip: crate::auth::client::client_ip(req),
    });
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        // Checked already by `authenticate_first` for this request.
        if let Some(user) = req.extensions().get::<AuthUser>().cloned() {
            return Box::pin(async move { Ok(user) });
        }
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("app state missing"))?;
            // A request without a token is not recorded: anonymous calls are normal (and
            // `Option<AuthUser>` extractors see them on public routes); a presented token
            // that is unknown or expired is.
            let token = token.ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
            let result = authenticate(&state, &token).await;
            if let Err(err) = &result {
                record_refusal(&req, err, None);
            }
            result
        })
    }
}

/// Does this request carry a body to a protected route (where a bad token must win over a
/// bad body)? Writes under `/api/v1/` but the public ones and the feed's signed pushes.
fn checks_token_first(req: &actix_web::dev::ServiceRequest) -> bool {
    let path = req.path();
    !matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    ) && path.starts_with("/api/v1/")
        && !path.starts_with("/api/v1/feed/")
        && !matches!(path, "/api/v1/auth/login" | "/api/v1/auth/register")
}

/// Middleware: a write to a protected route that presents a bearer token has the token
/// checked before anything else, its body included: a bad token is 401 whatever else is
/// wrong with the request (the handler's extractor then reuses the checked session).
pub async fn authenticate_first(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    let token = checks_token_first(&req)
        .then(|| bearer_token(req.request()))
        .flatten();
    if let (Some(token), Some(state)) = (token, req.app_data::<web::Data<AppState>>().cloned()) {
        match authenticate(&state, &token).await {
            Ok(user) => {
                req.extensions_mut().insert(user);
            }
            Err(err) => {
                record_refusal(req.request(), &err, None);
                let res = actix_web::ResponseError::error_response(&err);
                return Ok(req.into_response(res).map_into_right_body());
            }
        }
    }
    next.call(req).await.map(|r| r.map_into_left_body())
}

macro_rules! role_guard {
    ($(#[$doc:meta])* $name:ident, $class:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub AuthUser);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

            fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
                let fut = AuthUser::from_request(req, payload);
                let req = req.clone();
                Box::pin(async move {
                    let user = fut.await?;
                    if let Err(err) = require(&user, $class) {
                        record_refusal(&req, &err, Some(user.user_id));
                        return Err(err);
                    }
                    Ok($name(user))
                })
            }
        }
    };
}

role_guard!(
    /// Moderator or admin: trading actions.
    Trader,
    RouteClass::TradingWrite
);
role_guard!(
    /// Support, moderator or admin: trading reads.
    TradingReader,
    RouteClass::TradingRead
);
role_guard!(
    /// Support, moderator or admin: support work (the verification queue).
    SupportStaff,
    RouteClass::Support
);
role_guard!(
    /// Admin only.
    AdminUser,
    RouteClass::Admin
);
