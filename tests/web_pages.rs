//! The web pages (API.md "Web pages", issue 19) from the server's side: the two pages and
//! their embedded assets with their headers (policy, caching, content types, 404s), the
//! WebSocket accepting the engine's own origin (the pages connect back to wherever they were
//! served), and the staff-only `trading` topic the console's bet ticker reads. The pages
//! themselves run in Chromium: tests/browser (scripts/browser-test.sh).
mod common;
mod markets_support;
mod stream_support;
mod support_accounts;

use reqwest::header;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn header_of(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The `/static/<version>/` folder a page names.
fn assets_folder(html: &str) -> String {
    let start = html.find("/static/").expect("the page names its assets");
    let rest = &html[start + "/static/".len()..];
    let version: String = rest.chars().take_while(|c| *c != '/').collect();
    format!("/static/{version}")
}

#[tokio::test]
async fn pages_and_assets_carry_the_policy_caching_and_content_types() {
    let app = common::spawn_app().await;
    let mut folder = String::new();
    for (path, script) in [("/", "bettor.js"), ("/trading", "trading.js")] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(header_of(&res, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header_of(&res, "cache-control"), "no-cache");
        assert_eq!(header_of(&res, "x-content-type-options"), "nosniff");
        assert_eq!(header_of(&res, "x-frame-options"), "DENY");
        let csp = header_of(&res, "content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        let host = format!("127.0.0.1:{}", app.port);
        assert!(
            csp.contains(&format!("connect-src 'self' ws://{host} wss://{host}")),
            "the page's own socket is allowed: {csp}"
        );
        let etag = header_of(&res, "etag");
        assert!(etag.starts_with('"'), "{etag}");
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!("{}/{script}", assets_folder(&html))));
        assert!(!html.contains("<script>") && !html.contains("{{"));
        folder = assets_folder(&html);

        // Revalidation: the same ETag is a 304 without a body, still with the policy.
        let again = app
            .http
            .get(app.url(path))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        assert!(header_of(&again, "content-security-policy").contains("default-src 'self'"));
        assert!(again.bytes().await.unwrap().is_empty());
    }

    for (name, content_type) in [
        ("common.js", "text/javascript; charset=utf-8"),
        ("bettor.js", "text/javascript; charset=utf-8"),
        ("trading.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let res = app
            .http
            .get(app.url(&format!("{folder}/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
        assert_eq!(header_of(&res, "content-type"), content_type, "{name}");
        assert_eq!(
            header_of(&res, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header_of(&res, "x-content-type-options"), "nosniff");
        assert!(!header_of(&res, "etag").is_empty());
    }

    // Unknown assets, other versions and paths outside the folder are the contract's 404.
    for path in [
        format!("{folder}/nope.js"),
        format!("{folder}/..%2Fcommon.js"),
        "/static/0000000000/common.js".to_string(),
        "/static/common.js".to_string(),
    ] {
        let res = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    // A page is GET only.
    let res = app.http.post(app.url("/trading")).send().await.unwrap();
    assert_eq!(res.status(), 405);
}

#[tokio::test]
async fn a_page_served_by_the_engine_may_open_its_socket_and_other_sites_may_not() {
    let app = common::spawn_app().await;
    let at = |origin: &str| {
        let mut req = format!("ws://127.0.0.1:{}/ws", app.port)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("Origin", origin.parse().unwrap());
        req
    };
    // The engine listens on a port no allowlist names: its own pages still connect.
    let own = format!("http://127.0.0.1:{}", app.port);
    assert!(tokio_tungstenite::connect_async(at(&own)).await.is_ok());
    let other_port = format!("http://127.0.0.1:{}", app.port.wrapping_add(1));
    let err = tokio_tungstenite::connect_async(at(&other_port))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}

#[tokio::test]
async fn the_trading_topic_is_for_staff_and_carries_every_bet_with_its_risk() {
    let app = support_accounts::spawn().await;
    let (_, trader) = support_accounts::staff(&app, "moderator").await;
    let book = markets_support::create_book(&app.http, &app.address, &trader).await;
    let over = book.selections[1][0];
    let (bettor_id, bettor) = support_accounts::bettor(&app).await;
    let (s, b) = support_accounts::post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&bettor),
        json!({"amount": "50.00", "idempotency_key": "d1"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    // Not for bettors, nor for anonymous sockets.
    let mut ws = stream_support::connect(&app, "").await;
    stream_support::send(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "topics": ["trading"]}),
    )
    .await;
    let refused = stream_support::next_json(&mut ws).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    stream_support::send(&mut ws, json!({"op": "auth", "id": 2, "token": bettor})).await;
    stream_support::next_of(&mut ws, "authenticated").await;
    stream_support::send(
        &mut ws,
        json!({"op": "subscribe", "id": 3, "topics": ["trading"]}),
    )
    .await;
    let refused = stream_support::next_of(&mut ws, "error").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");

    // Staff get a snapshot, then every bet.
    let mut desk = stream_support::connect(&app, "").await;
    stream_support::send(&mut desk, json!({"op": "auth", "id": 1, "token": trader})).await;
    stream_support::next_of(&mut desk, "authenticated").await;
    stream_support::send(
        &mut desk,
        json!({"op": "subscribe", "id": 2, "topics": ["trading"]}),
    )
    .await;
    let snap = stream_support::next_of(&mut desk, "snapshot").await;
    assert_eq!(snap["topic"], "trading");
    assert_eq!(snap["data"]["bets"], json!([]));
    let seq = snap["seq"].as_u64().unwrap();

    let bet = |key: &str, odds: &str| {
        json!({"type": "single", "stake": "10.00", "legs": [{"selection_id": over, "odds": odds}],
               "idempotency_key": key})
    };
    let (s, placed) =
        support_accounts::post(&app, "/api/v1/bets", Some(&bettor), bet("b1", "2.5000")).await;
    assert_eq!(s, 201, "{placed}");
    let m = stream_support::next_of(&mut desk, "bet").await;
    assert_eq!(m["topic"], "trading");
    assert_eq!(m["seq"].as_u64().unwrap(), seq + 1);
    let d = &m["data"];
    assert_eq!(d["outcome"], "accepted", "{m}");
    assert_eq!(d["bet_id"], placed["id"]);
    assert_eq!(d["user_id"], bettor_id.to_string());
    assert_eq!(d["stake"], "10.00");
    assert_eq!(d["potential_win"], "25.00");
    assert_eq!(d["risk"], "15.00", "potential win less stake: {m}");
    assert_eq!(d["legs"][0]["selection_id"], over.to_string());
    assert_eq!(d["legs"][0]["event_id"], book.event_id.to_string());
    assert!(d["legs"][0]["market_id"].is_string(), "{m}");

    let (s, refused) =
        support_accounts::post(&app, "/api/v1/bets", Some(&bettor), bet("b2", "9.0000")).await;
    assert_eq!(s, 409, "{refused}");
    let m = stream_support::next_of(&mut desk, "bet").await;
    assert_eq!(m["data"]["outcome"], "refused", "{m}");
    assert_eq!(m["data"]["code"], "odds_changed");
    assert_eq!(m["data"]["risk"], "0.00");
    assert_eq!(m["data"]["legs"][0]["event_id"], book.event_id.to_string());
}
