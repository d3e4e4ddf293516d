//! `fanout`: N WebSocket subscribers of one event while its prices move continuously:
//! delivered messages per second, publish-to-receive latency, and the engine's memory per
//! idle connection (RSS before and after the subscribers connect, with `--engine-pid`).
//! The engine is a separate process; 10,000 subscribers need `ulimit -n` above 10,000.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Outcome, Phase};
use crate::api::Api;
use crate::provision::{self, Market};
use crate::stats::{Live, Stats, Stop};
use crate::ws::{self, Sent, SubResult};
use crate::{verify, Opts};

pub async fn run(api: &Api, opts: &Opts) -> anyhow::Result<Outcome> {
    if !ws::available(api).await {
        anyhow::bail!("this engine does not serve /ws: fanout needs the WebSocket server");
    }
    let trader = provision::trader(api, &opts.trader_login, &opts.trader_password).await?;
    let book = provision::book(api, &trader, 1, 1, Duration::from_secs(3 * 3600)).await?;
    let market = book.markets[0].clone();
    let topic = format!("event:{}", book.events[0]);
    let sent: Sent = Arc::new(RwLock::new(HashMap::new()));
    let rss_before = opts.engine_pid.and_then(verify::memory_kb).map(|m| m.1);
    let subs_stop = Stop::new(
        Instant::now() + Duration::from_secs(3600),
        None,
        Arc::new(Live::default()),
    );
    let wait = Duration::from_secs(60 + opts.subscribers as u64 / 100);
    let (tasks, ready) =
        ws::subscribe_many(api, &topic, opts.subscribers, &sent, &subs_stop, wait, None).await;
    let rss_after = opts.engine_pid.and_then(verify::memory_kb).map(|m| m.1);
    let (phase, bar) = Phase::start(opts, "fanout");
    let mut stats = mover(
        api,
        &trader,
        &market,
        &sent,
        opts.price_moves_per_s,
        &phase.stop,
    )
    .await;
    let seconds = phase.seconds();
    tokio::time::sleep(Duration::from_millis(500)).await;
    subs_stop.halt();
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(t.await.unwrap_or_default());
    }
    bar.abort();
    eprintln!();
    let (delivered, closed, failed) = deliveries(&mut stats, &results);
    let per_conn_kib = match (rss_before, rss_after) {
        (Some(b), Some(a)) if ready > 0 => Some((a.saturating_sub(b)) as f64 / ready as f64),
        _ => None,
    };
    let mut notes = vec![format!(
        "{} subscribers ({} past their snapshot, {} closed early, {} failed to connect), {} price moves/s on one market",
        opts.subscribers, ready, closed, failed, opts.price_moves_per_s
    )];
    notes.push(format!(
        "delivered {delivered} odds messages: {:.0}/s",
        delivered as f64 / seconds.max(0.001)
    ));
    if let Some(k) = per_conn_kib {
        notes.push(format!("engine RSS per idle subscriber: {k:.1} KiB"));
    }
    Ok(Outcome {
        stats,
        seconds,
        memory_at_start: phase.memory_at_start,
        notes,
        extra: json!({"subscribers": opts.subscribers, "ready": ready, "delivered": delivered,
                      "delivered_per_s": delivered as f64 / seconds.max(0.001),
                      "closed_early": closed, "connect_failed": failed,
                      "rss_per_idle_subscriber_kib": per_conn_kib}),
    })
}

/// Sets a distinct price on selection 0 `per_s` times a second, keeping each send time.
async fn mover(api: &Api, trader: &str, m: &Market, sent: &Sent, per_s: u64, stop: &Stop) -> Stats {
    let mut stats = Stats::default();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_s.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut k = 0u64;
    while !stop.done() {
        tick.tick().await;
        k += 1;
        let odds = format!("1.{:04}", 5000 + k % 4000);
        if let Ok(mut s) = sent.write() {
            s.insert(odds.clone(), Instant::now());
        }
        let body = json!({"prices": [{"selection_id": m.selections[0].0, "odds": odds},
                                     {"selection_id": m.selections[1].0, "odds": "1.9500"}]});
        let r = api
            .post(
                &format!("/api/v1/trading/markets/{}/prices", m.id),
                Some(trader),
                &body,
            )
            .await;
        stats.reply("price_move", &r, &stop.live);
    }
    stats
}

/// Folds the subscribers' results into `stats` (op `ws_odds_delivery`): (delivered odds
/// messages, subscribers closed early, subscribers that never connected).
fn deliveries(stats: &mut Stats, results: &[SubResult]) -> (u64, usize, usize) {
    let mut delivered = 0;
    let (mut closed, mut failed) = (0, 0);
    for r in results {
        delivered += r.odds;
        closed += usize::from(r.closed_early);
        if !r.connected {
            failed += 1;
            stats.fail("ws_subscriber", "connect_failed".into(), false);
        } else if r.closed_early {
            stats.fail("ws_subscriber", "closed_early".into(), false);
        }
        for us in &r.latencies_us {
            stats.ok("ws_odds_delivery", Duration::from_micros(u64::from(*us)));
        }
    }
    (delivered, closed, failed)
}
