//! Verification (KYC) endpoints: codes by email and phone, documents, the bettor's view,
//! and the support queue with its decisions. Each calls `app::kyc::KycService`.
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::app::kyc::{Decision, Submission};
use crate::auth::AuthUser;
use crate::db::audit::Actor;
use crate::db::kyc::VerificationView;
use crate::domain::ids::UserId;
use crate::kyc::notifier::Channel;
use crate::routes::error::ApiResult;
use crate::routes::extract::SupportStaff;
use crate::routes::json::Json;
use crate::routes::{self, accounts::client_ip};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(send_code, confirm_code, submit_document, get_verification, queue, decide),
    components(schemas(VerificationView, CodeBody, DocumentBody, DecisionBody)),
    tags((name = "verification", description = "Verification (KYC): codes, documents, review"))
)]
pub struct KycDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(routes::resource("/api/v1/me/verification").route(web::get().to(get_verification)))
        .service(
            routes::resource("/api/v1/me/verification/documents")
                .route(web::post().to(submit_document)),
        )
        .service(
            routes::resource("/api/v1/me/verification/{channel}").route(web::post().to(send_code)),
        )
        .service(
            routes::resource("/api/v1/me/verification/{channel}/confirm")
                .route(web::post().to(confirm_code)),
        )
        .service(routes::resource("/api/v1/support/verifications").route(web::get().to(queue)))
        .service(
            routes::resource("/api/v1/support/verifications/{user_id}")
                .route(web::post().to(decide)),
        );
}

fn actor(user: &AuthUser, req: &HttpRequest) -> Actor {
    Actor {
        user_id: Some(user.user_id),
        ip: client_ip(req),
    }
}

fn channel(name: &str) -> ApiResult<Channel> {
    match name {
        "email" => Ok(Channel::Email),
        "phone" => Ok(Channel::Phone),
        _ => Err(crate::routes::error::ApiError::not_found(
            "verification channel",
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/me/verification/{channel}", tag = "verification",
    params(("channel" = String, Path, description = "`email` or `phone`")),
    responses((status = 202, description = "a 6-digit code was sent through the notifier; any earlier code of the channel stops working"),
        (status = 409, description = "already_verified"),
        (status = 422, description = "phone_missing (no phone on the profile)"),
        (status = 429, description = "rate_limited: a code was sent less than kyc.code_resend_interval_s ago (Retry-After)")),
    security(("bearer" = [])))]
pub async fn send_code(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let channel = channel(&path)?;
    state.kyc.send_code(user.user_id, channel).await?;
    Ok(HttpResponse::Accepted().json(json!({
        "channel": channel.as_str(),
        "expires_in_s": state.settings.kyc.code_ttl_s,
    })))
}

/// A code received by email or text message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// Six digits.
    #[schema(example = "042517")]
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/me/verification/{channel}/confirm", tag = "verification",
    params(("channel" = String, Path, description = "`email` or `phone`")), request_body = CodeBody,
    responses((status = 200, body = VerificationView, description = "the channel is verified"),
        (status = 422, description = "invalid_code: wrong, expired or no code"),
        (status = 429, description = "too_many_attempts: the code was tried kyc.code_attempts_max times; ask for a new one")),
    security(("bearer" = [])))]
pub async fn confirm_code(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    body: Json<CodeBody>,
) -> ApiResult<HttpResponse> {
    let channel = channel(&path)?;
    state
        .kyc
        .confirm_code(user.user_id, channel, &body.code, actor(&user, &req))
        .await?;
    Ok(HttpResponse::Ok().json(state.kyc.view(user.user_id).await?))
}

/// A document held at the document store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentBody {
    /// `passport`, `id_card`, `driving_licence` or `proof_of_address`.
    pub document_type: String,
    /// The upload's id at the document store (1 to `kyc.reference_chars_max` characters).
    pub reference: String,
}

#[utoipa::path(post, path = "/api/v1/me/verification/documents", tag = "verification",
    request_body = DocumentBody,
    responses((status = 201, body = VerificationView, description = "verification_status is pending"),
        (status = 409, description = "invalid_transition: the profile is verified already"),
        (status = 422, description = "validation_failed")),
    security(("bearer" = [])))]
pub async fn submit_document(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: Json<DocumentBody>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let view = state
        .kyc
        .submit(
            user.user_id,
            Submission {
                document_type: body.document_type,
                reference: body.reference,
            },
            actor(&user, &req),
        )
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(get, path = "/api/v1/me/verification", tag = "verification",
    responses((status = 200, body = VerificationView)), security(("bearer" = [])))]
pub async fn get_verification(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.kyc.view(user.user_id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct QueueQuery {
    /// `pending` (default), `unverified`, `verified` or `rejected`.
    pub status: Option<String>,
    /// 1 to `kyc.queue_page_max` (default 50).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/support/verifications", tag = "verification", params(QueueQuery),
    responses((status = 200, description = "`{entries: [VerificationView]}`, oldest submission first"),
        (status = 403, description = "not support staff")),
    security(("bearer" = [])))]
pub async fn queue(
    state: web::Data<AppState>,
    _staff: SupportStaff,
    q: web::Query<QueueQuery>,
) -> ApiResult<HttpResponse> {
    let entries = state
        .kyc
        .queue(q.status.as_deref(), q.limit, q.offset)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "entries": entries })))
}

/// A reviewer's decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `verified` or `rejected`.
    pub decision: String,
    /// Required for `rejected`; shown to the bettor.
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/support/verifications/{user_id}", tag = "verification",
    params(("user_id" = uuid::Uuid, Path)),
    request_body = DecisionBody,
    responses((status = 200, body = VerificationView, description = "decided; audited with the reviewer and notified"),
        (status = 403), (status = 404),
        (status = 409, description = "invalid_transition: the profile is not pending"),
        (status = 422, description = "validation_failed (decision, reason)")),
    security(("bearer" = [])))]
pub async fn decide(
    state: web::Data<AppState>,
    staff: SupportStaff,
    req: HttpRequest,
    id: web::Path<UserId>,
    body: Json<DecisionBody>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let view = state
        .kyc
        .decide(
            *id,
            Decision {
                decision: body.decision,
                reason: body.reason,
            },
            actor(&staff.0, &req),
        )
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
