//! JSON request bodies with the contract's errors: not JSON by its `Content-Type` is 415,
//! larger than `server.json_body_max_bytes` is 413 (read no further), not JSON by its
//! syntax is 400, and JSON of the wrong shape is 422 **naming the field** (`details.field`,
//! a path such as `legs[0].odds`), so a client can tell which value was refused.
use std::ops::Deref;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::ApiError;
use crate::state::AppState;

/// Fallback body limit when the app state is missing (it never is in the engine).
const BODY_BYTES_DEFAULT: usize = 64 * 1024;

/// A JSON body of type `T`, read and checked as the module documentation says.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(m)) => m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"),
        _ => false,
    }
}

/// Reads a body as `T`; the error names the path of the refused value.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let message = if path == "." {
                format!("invalid request body: {inner}")
            } else {
                format!("invalid request body: {path}: {inner}")
            };
            ApiError::validation(message).with_details(json!({ "field": path }))
        } else {
            ApiError::bad_request(format!("malformed JSON: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    Ok(value)
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(BODY_BYTES_DEFAULT, |s| {
                s.settings.server.json_body_max_bytes
            });
        let json = is_json(req);
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "expected Content-Type: application/json",
                ));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|e| ApiError::bad_request(format!("unreadable body: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("JSON bodies are limited to {limit} bytes"),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body).map(Json)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Leg {
        odds: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        stake: String,
        legs: Vec<Leg>,
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_field() {
        let err = parse::<Body>(br#"{"stake": "1.00", "legs": [{"odds": 2.5}]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.details["field"], "legs[0].odds");
        assert!(err.message.contains("legs[0].odds"), "{}", err.message);
        let err = parse::<Body>(br#"{"stake": 5, "legs": []}"#).unwrap_err();
        assert_eq!(err.details["field"], "stake");
    }

    #[test]
    fn bad_syntax_is_400_and_trailing_garbage_too() {
        assert_eq!(
            parse::<Body>(b"{not json").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let err = parse::<Body>(br#"{"stake": "1", "legs": []} x"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }
}
