//! The served OpenAPI document, completed where per-handler annotations cannot be: every
//! error response carries the contract's error body, every protected operation declares
//! its security, every success that answers JSON names a schema, and tags are unique.
//! Validated in `make test` by the ecosystem's validator (`scripts/openapi-check.sh`) and
//! checked for completeness by `tests/openapi_contract.rs`.
use serde_json::{json, Map, Value};

/// Routes open to anyone (everything else needs a session, the feed's signature, or the
/// metrics token / a local scraper).
fn is_public(path: &str, method: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/api-docs/openapi.json" | "/ws" | "/api/v1/search"
    ) || path.starts_with("/api/v1/sports")
        // The web pages and their assets (staff log in on the console page itself).
        || (method == "get" && matches!(path, "/" | "/trading"))
        || (method == "get" && path.starts_with("/static/"))
        || path.starts_with("/api/v1/events/")
        || (method == "post" && matches!(path, "/api/v1/auth/register" | "/api/v1/auth/login"))
}

fn security_of(path: &str, method: &str) -> Option<Value> {
    if is_public(path, method) {
        None
    } else if path.starts_with("/api/v1/feed/") {
        Some(json!([{"feed_signature": []}]))
    } else if path == "/metrics" {
        Some(json!([{}, {"bearer": []}]))
    } else {
        Some(json!([{"bearer": []}]))
    }
}

/// The contract's error body (API.md, "Conventions").
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "snake_case reason, e.g. odds_changed"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": true}
            }
        }}
    })
}

fn completed_response(status: &str, response: &mut Value) {
    let code: u16 = status.parse().unwrap_or(0);
    let Some(r) = response.as_object_mut() else {
        return;
    };
    if r.contains_key("$ref") || r.get("content").is_some_and(|c| !c.is_null()) {
        return;
    }
    let schema = match code {
        400..=599 => json!({"$ref": "#/components/schemas/ErrorBody"}),
        // No body: switching protocols, no content, not modified.
        101 | 204 | 304 => return,
        200..=299 => json!({"type": "object", "additionalProperties": true}),
        _ => return,
    };
    r.insert(
        "content".into(),
        json!({"application/json": {"schema": schema}}),
    );
}

/// Completes `doc` in place (see the module documentation).
pub fn complete(doc: &mut Value) {
    if let Some(tags) = doc.get_mut("tags").and_then(Value::as_array_mut) {
        let mut seen = std::collections::HashSet::new();
        tags.retain(|t| seen.insert(t["name"].as_str().unwrap_or_default().to_string()));
    }
    let components = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})));
    if let Some(c) = components.and_then(Value::as_object_mut) {
        let schemas = c.entry("schemas").or_insert_with(|| json!({}));
        if let Some(s) = schemas.as_object_mut() {
            s.insert("ErrorBody".into(), error_schema());
        }
        let schemes = c.entry("securitySchemes").or_insert_with(|| json!({}));
        if let Some(s) = schemes.as_object_mut() {
            s.insert(
                "feed_signature".into(),
                json!({"type": "apiKey", "in": "header", "name": "X-Feed-Signature",
                       "description": "hex HMAC-SHA256 of \"{X-Feed-Timestamp}.{raw body}\" with the provider's secret (docs/feed.md)"}),
            );
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            if !op.contains_key("security") {
                if let Some(security) = security_of(path, method) {
                    op.insert("security".into(), security);
                }
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(responses) = responses.as_object_mut() {
                for (status, response) in responses.iter_mut() {
                    completed_response(status, response);
                }
            }
        }
    }
}
