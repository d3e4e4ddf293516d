//! A burst of bets fired at a market while a `bet_stop` arrives: no bet whose check started
//! after the stop's receipt is accepted. Timestamps are recorded for every bet and for the
//! stop; the stop is received somewhere between its send and its answer, so every bet sent
//! after the stop's answer started its check after the receipt and must be refused.
mod bets_support;
mod common;
mod stream_support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use stream_support::*;

#[tokio::test]
async fn no_bet_checked_after_a_bet_stop_was_received_is_accepted() {
    let app = Arc::new(common::spawn_app().await);
    let sport = sport(&app).await;
    push(&app, fixture(1, "burst-1", &sport)).await;
    let id = event_id(&app, "burst-1").await;
    let selection: uuid::Uuid = app
        .db
        .client
        .query_one(
            "SELECT s.id FROM selections s JOIN markets m ON m.id = s.market_id
              WHERE m.event_id = $1 AND m.type = 'moneyline' AND s.name = 'home'",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    let (_, token) =
        bets_support::bettor(&app.db.client, rust_decimal::Decimal::from(100_000)).await;
    let origin = Instant::now();

    // Eight bettor loops fire single bets back to back until 300 ms after the stop was
    // answered (timing by events, not by fixed sleeps: a loaded machine only stretches it).
    let taken = Arc::new(AtomicUsize::new(0));
    // Milliseconds since `origin` at which the stop was answered; 0 until then.
    let stop_done = Arc::new(AtomicU64::new(0));
    let mut loops = Vec::new();
    for l in 0..8 {
        let (app, token) = (app.clone(), token.clone());
        let (taken, stop_done) = (taken.clone(), stop_done.clone());
        loops.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut n = 0;
            loop {
                let done = stop_done.load(Ordering::Relaxed);
                let now = origin.elapsed();
                if (done > 0 && now > Duration::from_millis(done + 300))
                    || now > Duration::from_secs(60)
                {
                    break;
                }
                n += 1;
                let body =
                    bets_support::single(selection, "2.1000", "1.00", &format!("burst-{l}-{n}"));
                let sent = origin.elapsed();
                let (status, answer) = bets_support::place(&app, &token, &body).await;
                if status == 201 {
                    taken.fetch_add(1, Ordering::Relaxed);
                }
                out.push((
                    sent,
                    origin.elapsed(),
                    status,
                    answer["error"]["code"].as_str().unwrap_or("").to_string(),
                ));
            }
            out
        }));
    }
    // The stop arrives once bets are being taken.
    common::wait_until(
        "three bets taken before the stop",
        Duration::from_secs(30),
        || std::future::ready(taken.load(Ordering::Relaxed) >= 3),
    )
    .await;
    let stop_sent = origin.elapsed();
    push(
        &app,
        json!({"seq": 2, "event_ref": "burst-1", "type": "bet_stop"}),
    )
    .await;
    let stop_answered = origin.elapsed();
    stop_done.store(stop_answered.as_millis() as u64 + 1, Ordering::Relaxed);

    let mut bets = Vec::new();
    for l in loops {
        bets.extend(l.await.unwrap());
    }
    let accepted: Vec<_> = bets.iter().filter(|b| b.2 == 201).collect();
    let after: Vec<_> = bets.iter().filter(|b| b.0 > stop_answered).collect();
    eprintln!(
        "bets={} accepted={} stop sent at {stop_sent:?}, answered at {stop_answered:?}; sent after the answer={}",
        bets.len(),
        accepted.len(),
        after.len()
    );
    let mut before: Vec<String> = bets
        .iter()
        .filter(|b| b.0 < stop_sent)
        .map(|b| format!("{} {}", b.2, b.3))
        .collect();
    before.sort();
    before.dedup();
    eprintln!("answers to bets sent before the stop: {before:?}");
    assert!(!accepted.is_empty(), "bets before the stop were taken");
    assert!(after.len() >= 8, "bets were fired after the stop");
    for (sent, done, status, code) in &after {
        assert_eq!(
            (*status, code.as_str()),
            (409, "market_suspended"),
            "a bet sent at {sent:?} (answered {done:?}) after the stop's answer at {stop_answered:?}"
        );
    }
    // Every accepted bet was sent before the stop was answered.
    assert!(accepted.iter().all(|b| b.0 <= stop_answered));
    // The database agrees: exactly the accepted bets exist.
    let rows: i64 = app
        .db
        .client
        .query_one("SELECT count(*) FROM bets", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows as usize, accepted.len());
}
