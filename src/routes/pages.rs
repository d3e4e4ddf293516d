//! The two web pages of the contract ("Web pages"): the bettor's page at `GET /` and the
//! trading console at `GET /trading`, with their static assets, all embedded in the binary
//! (`src/web/`), so one file still deploys the engine.
//!
//! Caching: the assets live under `/static/<version>/<name>`, where `<version>` is a hash of
//! every asset together; they are immutable there (`max-age` of a year). The two pages are
//! `no-cache` with an `ETag` (a conditional request is a 304) and name the current version,
//! so a new build is picked up at the next page load and never mixes old and new modules
//! (the modules import each other relatively, so they stay in the version they came from).
//!
//! Every answer carries a strict Content-Security-Policy (no inline script or style,
//! `default-src 'self'`, the page's own ws/wss origin for the socket), `nosniff`, no
//! framing and no referrer. The pages are constant text: nothing from a request is ever
//! written into them (the version is the build's own hash).
use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::routes::error::ApiError;
use crate::routes::resource;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(bettor_page, trading_page, asset),
    tags((name = "web", description = "The bettor's page and the trading console (HTML, embedded)"))
)]
pub struct WebDoc;

/// An embedded file: its name under `/static/<version>/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every static asset. A file not listed here is a 404.
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/app.css"),
    },
    Asset {
        name: "common.js",
        content_type: JS,
        body: include_bytes!("../web/common.js"),
    },
    Asset {
        name: "bettor.js",
        content_type: JS,
        body: include_bytes!("../web/bettor.js"),
    },
    Asset {
        name: "trading.js",
        content_type: JS,
        body: include_bytes!("../web/trading.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../web/favicon.svg"),
    },
];

const INDEX_HTML: &str = include_str!("../web/index.html");
const TRADING_HTML: &str = include_str!("../web/trading.html");
/// Where the pages name their assets' folder; replaced by `/static/<version>` once.
const ASSETS_PLACEHOLDER: &str = "{{ASSETS}}";

/// A page with its assets' folder filled in, and its ETag.
struct Page {
    html: String,
    etag: String,
}

struct Built {
    version: String,
    index: Page,
    trading: Page,
    /// ETags of `ASSETS`, in their order.
    asset_etags: Vec<String>,
}

fn hash_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(&h.finalize()[..10])
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let bodies: Vec<&[u8]> = ASSETS.iter().map(|a| a.body).collect();
        let version = hash_hex(&bodies);
        let page = |template: &str| {
            let html = template.replace(ASSETS_PLACEHOLDER, &format!("/static/{version}"));
            let etag = format!("\"{}\"", hash_hex(&[html.as_bytes()]));
            Page { html, etag }
        };
        Built {
            index: page(INDEX_HTML),
            trading: page(TRADING_HTML),
            asset_etags: ASSETS
                .iter()
                .map(|a| format!("\"{}\"", hash_hex(&[a.body])))
                .collect(),
            version,
        }
    })
}

/// The version the pages currently name (`/static/<version>/...`).
pub fn assets_version() -> &'static str {
    &built().version
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/").route(web::get().to(bettor_page)))
        .service(resource("/trading").route(web::get().to(trading_page)))
        .service(resource("/static/{version}/{name}").route(web::get().to(asset)));
}

/// A host (`name`, `name:port`, `[v6]:port`) safe to repeat in the policy header; anything
/// else is left out of the policy (the page then relies on `'self'`).
fn safe_host(host: &str) -> Option<&str> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    ok.then_some(host)
}

/// The Content-Security-Policy of every web answer: only this origin's scripts, styles,
/// images and connections (including its WebSocket), nothing inline, no framing.
pub fn content_security_policy(host: Option<&str>) -> String {
    let sockets = host
        .and_then(safe_host)
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

fn secured(req: &HttpRequest, builder: &mut actix_web::HttpResponseBuilder) {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    builder
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(host),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
}

/// Does the request's `If-None-Match` name `etag` (or `*`)?
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn answer(
    req: &HttpRequest,
    content_type: &'static str,
    cache: &'static str,
    etag: &str,
    body: &'static [u8],
) -> HttpResponse {
    let fresh = not_modified(req, etag);
    let mut builder = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    secured(req, &mut builder);
    builder
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, etag.to_string()));
    if fresh {
        return builder.finish();
    }
    builder
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .body(body)
}

const PAGE_CACHE: &str = "no-cache";
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";
const HTML: &str = "text/html; charset=utf-8";

/// The bettor's page.
#[utoipa::path(get, path = "/", tag = "web",
    responses((status = 200, description = "the bettor's page", content_type = "text/html"),
              (status = 304, description = "not modified (If-None-Match)")))]
pub async fn bettor_page(req: HttpRequest) -> HttpResponse {
    let page = &built().index;
    answer(&req, HTML, PAGE_CACHE, &page.etag, page.html.as_bytes())
}

/// The trading console (staff log in on the page).
#[utoipa::path(get, path = "/trading", tag = "web",
    responses((status = 200, description = "the trading console", content_type = "text/html"),
              (status = 304, description = "not modified (If-None-Match)")))]
pub async fn trading_page(req: HttpRequest) -> HttpResponse {
    let page = &built().trading;
    answer(&req, HTML, PAGE_CACHE, &page.etag, page.html.as_bytes())
}

/// A static asset of the pages; immutable under its version.
#[utoipa::path(get, path = "/static/{version}/{name}", tag = "web",
    params(("version" = String, Path, description = "the assets' version the page names"),
           ("name" = String, Path, description = "file name, e.g. common.js")),
    responses((status = 200, description = "the file"),
              (status = 304, description = "not modified (If-None-Match)"),
              (status = 404, description = "no such asset in this version")))]
pub async fn asset(
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (version, name) = path.into_inner();
    let b = built();
    let found = (version == b.version)
        .then(|| ASSETS.iter().position(|a| a.name == name))
        .flatten();
    let Some(i) = found else {
        return Err(ApiError::not_found("asset"));
    };
    let a = &ASSETS[i];
    Ok(answer(
        &req,
        a.content_type,
        ASSET_CACHE,
        &b.asset_etags[i],
        a.body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_only_a_well_formed_host() {
        let p = content_security_policy(Some("127.0.0.1:8080"));
        assert!(p.contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"));
        assert!(p.contains("script-src 'self';") && !p.contains("unsafe-inline"));
        let p = content_security_policy(Some("evil; script-src *"));
        assert!(p.contains("connect-src 'self';") && !p.contains("evil"));
    }

    #[test]
    fn every_page_names_the_current_assets_and_every_named_asset_exists() {
        let b = built();
        for page in [&b.index, &b.trading] {
            assert!(!page.html.contains(ASSETS_PLACEHOLDER));
            for part in page.html.split(&format!("/static/{}/", b.version)).skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| *c != '"' && *c != '\'')
                    .collect();
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{name} is not embedded"
                );
            }
            assert!(!page.html.contains("<script>") && !page.html.contains("style="));
        }
    }
}
