//! HTTP routing: every path of the contract, the JSON error plumbing, and the OpenAPI
//! document generated from the handlers' annotations.
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use utoipa::OpenApi;

use crate::routes::error::ApiError;

pub mod accounts;
pub mod audit;
pub mod bets;
pub mod bonus;
pub mod cashout;
pub mod catalogue;
pub mod cluster;
pub mod error;
pub mod error_map;
pub mod extract;
pub mod feed;
pub mod feed_forward;
pub mod forward;
pub mod health;
pub mod json;
pub mod kyc;
pub mod me;
pub mod openapi_doc;
pub mod ops;
pub mod pages;
pub mod referrals;
pub mod settlement;
pub mod trading;
pub mod wallet;
pub mod ws;

/// The OpenAPI document of every REST endpoint; features add their paths here.
#[derive(OpenApi)]
#[openapi(
    info(title = "Winzo engine", description = "Real-time odds and in-play betting engine"),
    paths(health::healthz, health::readyz, health::metrics),
    tags((name = "operations", description = "Health, readiness and metrics"))
)]
pub struct ApiDoc;

/// The served document: the base plus each feature's own `OpenApi` struct, merged so
/// every feature documents its paths beside its handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[allow(unused_mut)]
    let mut doc = ApiDoc::openapi();
    // Feature documents are merged here: doc.merge(feature::Doc::openapi());
    doc.merge(trading::TradingDoc::openapi());
    doc.merge(catalogue::CatalogueDoc::openapi());
    doc.merge(feed::FeedDoc::openapi());
    doc.merge(ws::WsDoc::openapi());
    doc.merge(accounts::AccountsDoc::openapi());
    doc.merge(me::MeDoc::openapi());
    doc.merge(wallet::WalletDoc::openapi());
    doc.merge(audit::AuditDoc::openapi());
    doc.merge(bets::BetsDoc::openapi());
    doc.merge(cashout::CashOutDoc::openapi());
    doc.merge(referrals::ReferralDoc::openapi());
    doc.merge(ops::OpsDoc::openapi());
    doc.merge(settlement::SettlementDoc::openapi());
    doc.merge(kyc::KycDoc::openapi());
    doc.merge(bonus::BonusDoc::openapi());
    doc.merge(pages::WebDoc::openapi());
    doc.merge(cluster::ClusterDoc::openapi());
    doc
}

/// The served document as JSON: [`openapi`] completed by [`openapi_doc::complete`].
pub fn openapi_json_value() -> serde_json::Value {
    let mut doc = serde_json::to_value(openapi()).unwrap_or_else(|_| json!({}));
    openapi_doc::complete(&mut doc);
    doc
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi_json_value())
}

/// Registers every route. Called once per worker.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(resource("/metrics").route(web::get().to(health::metrics)))
        .service(resource("/api-docs/openapi.json").route(web::get().to(openapi_json)));
    trading::configure(cfg);
    catalogue::configure(cfg);
    feed::configure(cfg);
    ws::configure(cfg);
    accounts::configure(cfg);
    wallet::configure(cfg);
    audit::configure(cfg);
    bets::configure(cfg);
    cashout::configure(cfg);
    referrals::configure(cfg);
    ops::configure(cfg);
    settlement::configure(cfg);
    kyc::configure(cfg);
    bonus::configure(cfg);
    pages::configure(cfg);
    cluster::configure(cfg);
}

/// A resource whose unmatched methods answer the contract's 405. Every route is
/// registered through this, so a known path with a wrong method is never a 404.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.path()),
    ))
}

/// A control change committed but not handed on to every holder: the caller retries (the
/// change itself is idempotent), and until then this node's holders have dropped it.
pub fn controls_error(err: crate::accounts::controls::ControlsError) -> ApiError {
    tracing::warn!(error = ?err, "handing on an account-control change");
    ApiError::unavailable("the change is recorded, but could not reach every node; retry")
}

/// Unknown route: the contract's 404 body.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// Turns JSON body errors into contract errors: syntax 400, wrong shape 422, too big 413.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                err.to_string(),
            )
        }
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(de) if de.is_data() => {
            ApiError::validation(format!("invalid request body: {de}"))
        }
        JsonPayloadError::Deserialize(de) => ApiError::bad_request(format!("malformed JSON: {de}")),
        _ => ApiError::bad_request(format!("unreadable body: {err}")),
    };
    api.into()
}

/// Query-string errors: 400 with the reason.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid query string: {err}")).into()
}

/// Path errors (e.g. a malformed UUID): 404, the resource cannot exist; the message names
/// the segment that is not an id.
pub fn path_error(_err: PathError, req: &HttpRequest) -> actix_web::Error {
    let segment = req
        .match_info()
        .iter()
        .map(|(_, v)| v)
        .find(|v| uuid::Uuid::parse_str(v).is_err())
        .map(|v| v.chars().take(64).collect::<String>());
    let message = match segment {
        Some(v) => format!("no such resource: {v:?} is not a valid id"),
        None => format!("no such resource: {}", req.path()),
    };
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message).into()
}

/// Gives every error answer that is not already JSON (the framework's own 404, 405,
/// 413, ...) the contract's body, so clients only ever parse one error shape.
pub fn error_handlers<B: actix_web::body::MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(contract_body)
}

fn contract_body<B: actix_web::body::MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal_error",
        _ => "error",
    };
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    let body = ApiError::body_json(code, &message, &json!({}));
    let (req, res) = res.into_parts();
    let mut res = res.set_body(body);
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let res = ServiceResponse::new(req, res)
        .map_into_boxed_body()
        .map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
