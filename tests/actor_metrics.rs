//! Actor mailbox figures in `/metrics` against the real engine: depth, capacity and busy
//! refusals per actor kind, and the per-actor bound enforced however many clients ask.
//! (Its own test binary: the bound is process-wide, one engine per process.)
mod common;
mod markets_support;

use markets_support::{account, create_book};
use winzo::auth::Role;

/// The value of a sample line `name{labels} value` in the text exposition.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_export_mailbox_depth_and_busy_refusals_per_actor_kind() {
    // One-message mailboxes: a burst of concurrent reads must find some of them full.
    let app = common::spawn_app_with(|s| s.markets.mailbox_capacity_messages = 1).await;
    let (_, token) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &token).await;
    let metrics = || async {
        let r = app.http.get(app.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    };
    let text = metrics().await;
    for kind in ["event", "market", "live_writer"] {
        let cap = sample(
            &text,
            &format!("winzo_actor_mailbox_capacity_messages{{kind=\"{kind}\"}}"),
        );
        assert!(cap.is_some_and(|c| c >= 1.0), "{kind} capacity in:\n{text}");
        assert!(sample(
            &text,
            &format!("winzo_actor_mailbox_messages{{kind=\"{kind}\"}}")
        )
        .is_some());
    }
    assert_eq!(
        sample(
            &text,
            "winzo_actor_mailbox_capacity_messages{kind=\"market\"}"
        ),
        Some(1.0)
    );
    assert!(
        sample(&text, "winzo_actors{kind=\"market\"}").is_some_and(|n| n >= 2.0),
        "{text}"
    );

    let m = book.markets[0];
    let mut refused = 0;
    for _ in 0..20 {
        let calls = (0..64).map(|_| {
            let (http, url) = (
                app.http.clone(),
                app.url(&format!("/api/v1/trading/markets/{m}/liability")),
            );
            let token = token.clone();
            async move {
                http.get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        });
        refused += futures::future::join_all(calls)
            .await
            .into_iter()
            .filter(|s| *s == 503)
            .count();
        if refused > 0 {
            break;
        }
    }
    assert!(
        refused > 0,
        "a one-message mailbox under 64 concurrent asks refuses some"
    );
    let text = metrics().await;
    let full = sample(
        &text,
        "winzo_actor_busy_total{kind=\"market\",reason=\"mailbox_full\"}",
    )
    .unwrap_or(0.0);
    assert!(
        full >= refused as f64,
        "busy counter {full} < {refused} refusals:\n{text}"
    );
    // Every ask ended: nothing is left in flight.
    assert_eq!(
        sample(&text, "winzo_actor_mailbox_messages{kind=\"market\"}"),
        Some(0.0),
        "{text}"
    );
}
