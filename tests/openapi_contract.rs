//! The served OpenAPI document is complete (issue 21): unique tags, every error response
//! with the contract's error body, every success with a schema, security declared on every
//! protected operation. (Its validity is checked by `scripts/openapi-check.sh` in
//! `make test`, with the ecosystem's validator.)
use serde_json::Value;

const PUBLIC: &[&str] = &[
    "get /healthz",
    "get /readyz",
    "get /api-docs/openapi.json",
    "get /ws",
    "get /api/v1/search",
    "post /api/v1/auth/register",
    "post /api/v1/auth/login",
    "get /",
    "get /trading",
];

fn public(method: &str, path: &str) -> bool {
    PUBLIC.contains(&format!("{method} {path}").as_str())
        || path.starts_with("/api/v1/sports")
        || path.starts_with("/api/v1/events/")
        || (method == "get" && path.starts_with("/static/"))
}

#[test]
fn every_operation_is_described_completely() {
    let doc = winzo::routes::openapi_json_value();
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut unique = tags.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), tags.len(), "duplicate tags: {tags:?}");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let security = op.get("security");
            if public(method, path) {
                assert!(security.is_none(), "{method} {path} is public");
            } else {
                assert!(
                    security
                        .and_then(Value::as_array)
                        .is_some_and(|s| !s.is_empty()),
                    "{method} {path} declares no security"
                );
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                let code: u16 = status.parse().unwrap();
                let schema = &response["content"]["application/json"]["schema"];
                if code >= 400 {
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                } else if !matches!(code, 101 | 204 | 304) && !response["content"].is_object() {
                    panic!("{method} {path} {status} has no schema");
                }
            }
        }
    }
    assert!(operations >= 50, "{operations} operations");
    assert!(doc["paths"]["/api/v1/bets"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "status"));
}
