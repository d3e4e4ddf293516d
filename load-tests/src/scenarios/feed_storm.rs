//! `feed-storm`: many providers pushing at once. Each provider (`--feed-provider
//! id:secret`, configured on the engine) creates its events with signed `fixture`
//! pushes, then several pushers per provider (each owning a disjoint set of events, so
//! `seq` stays in order per event) send arrays of `odds` messages with an occasional
//! `bet_stop`, as fast as the engine answers.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{price_pair, workers, Outcome, Phase};
use crate::api::{Api, Reply};
use crate::stats::Stats;
use crate::Opts;

/// Messages per push in the storm.
const MESSAGES_PER_PUSH: usize = 10;

#[derive(Default)]
struct Totals {
    applied: AtomicU64,
    duplicates: AtomicU64,
    gaps: AtomicU64,
    rejected: AtomicU64,
}

/// One pusher's events: (event_ref, next seq).
struct Owned {
    provider: String,
    secret: String,
    events: Vec<(String, u64)>,
}

pub async fn run(api: &Api, opts: &Opts) -> anyhow::Result<Outcome> {
    if opts.feed_providers.is_empty() {
        anyhow::bail!("feed-storm needs --feed-provider <id>:<secret> (configured on the engine)");
    }
    let per_provider = (opts.concurrency / opts.feed_providers.len()).max(1);
    let events = opts.feed_events_per_provider.max(per_provider);
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut owned = Vec::new();
    for (p, secret) in &opts.feed_providers {
        let refs: Vec<String> = (0..events)
            .map(|i| format!("storm-{tag}-{p}-{i}"))
            .collect();
        fixtures(api, p, secret, &refs, &opts.feed_sport).await?;
        for w in 0..per_provider {
            owned.push(Owned {
                provider: p.clone(),
                secret: secret.clone(),
                events: refs
                    .iter()
                    .skip(w)
                    .step_by(per_provider)
                    .map(|r| (r.clone(), 2))
                    .collect(),
            });
        }
    }
    let totals = Arc::new(Totals::default());
    let owned: Vec<_> = owned
        .into_iter()
        .map(|o| Arc::new(tokio::sync::Mutex::new(o)))
        .collect();
    let (phase, bar) = Phase::start(opts, "feed-storm");
    let stats = workers(owned.len(), |w| {
        let (api, phase, mine, totals) =
            (api.clone(), phase.clone(), owned[w].clone(), totals.clone());
        async move {
            let mut stats = Stats::default();
            let mut mine = mine.lock().await;
            while !phase.stop.done() {
                let batch = storm_batch(&mut mine.events);
                let r = push(&api, &mine.provider, &mine.secret, &batch).await;
                if stats.reply("feed_push", &r, phase.live()) {
                    count(&totals, &r.body);
                }
            }
            stats
        }
    })
    .await?;
    let seconds = phase.seconds();
    bar.abort();
    eprintln!();
    let applied = totals.applied.load(Ordering::Relaxed);
    let notes = vec![
        format!(
            "{} providers × {} pushers, {} events each, {} messages per push",
            opts.feed_providers.len(),
            per_provider,
            events,
            MESSAGES_PER_PUSH
        ),
        format!(
            "messages applied {applied} ({:.0}/s), duplicates {}, gaps {}, rejected {}",
            applied as f64 / seconds.max(0.001),
            totals.duplicates.load(Ordering::Relaxed),
            totals.gaps.load(Ordering::Relaxed),
            totals.rejected.load(Ordering::Relaxed)
        ),
    ];
    Ok(Outcome {
        stats,
        seconds,
        memory_at_start: phase.memory_at_start,
        notes,
        extra: json!({"messages_applied": applied,
                      "messages_applied_per_s": applied as f64 / seconds.max(0.001),
                      "gaps": totals.gaps.load(Ordering::Relaxed),
                      "rejected": totals.rejected.load(Ordering::Relaxed)}),
    })
}

fn count(t: &Totals, body: &Value) {
    let n = |k: &str| body[k].as_u64().unwrap_or(0);
    t.applied.fetch_add(n("applied"), Ordering::Relaxed);
    t.duplicates.fetch_add(n("duplicates"), Ordering::Relaxed);
    t.gaps.fetch_add(n("gaps"), Ordering::Relaxed);
    t.rejected.fetch_add(n("rejected"), Ordering::Relaxed);
}

/// `MESSAGES_PER_PUSH` messages on random events of `events`: `odds`, one in 20 a `bet_stop`.
fn storm_batch(events: &mut [(String, u64)]) -> Value {
    let mut rng = rand::thread_rng();
    let mut msgs = Vec::with_capacity(MESSAGES_PER_PUSH);
    for _ in 0..MESSAGES_PER_PUSH {
        let Some((r, seq)) = events.choose_mut(&mut rng) else {
            break;
        };
        let s = *seq;
        *seq += 1;
        if rng.gen_ratio(1, 20) {
            msgs.push(json!({"seq": s, "event_ref": r, "type": "bet_stop", "reason": "storm"}));
        } else {
            let (a, b) = price_pair(&mut rng);
            msgs.push(
                json!({"seq": s, "event_ref": r, "type": "odds", "market": {"type": "moneyline"},
                             "prices": [{"name": "Home", "odds": a}, {"name": "Away", "odds": b}]}),
            );
        }
    }
    Value::Array(msgs)
}

/// Creates the events (seq 1 of each) with one moneyline, 100 fixtures per push.
async fn fixtures(
    api: &Api,
    p: &str,
    secret: &str,
    refs: &[String],
    sport: &str,
) -> anyhow::Result<()> {
    let start = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    for chunk in refs.chunks(100) {
        let msgs: Vec<Value> = chunk
            .iter()
            .map(|r| json!({"seq": 1, "event_ref": r, "type": "fixture", "sport": sport,
                             "home": format!("{r} H"), "away": format!("{r} A"), "start_time": start,
                             "markets": [{"type": "moneyline", "selections": [
                                 {"name": "Home", "odds": "1.90"}, {"name": "Away", "odds": "1.90"}]}]}))
            .collect();
        let r = push(api, p, secret, &Value::Array(msgs)).await;
        let r = r.expect_ok("fixture push")?;
        if r.body["applied"].as_u64() != Some(chunk.len() as u64) {
            anyhow::bail!("fixtures not all applied: {}", r.body);
        }
    }
    Ok(())
}

/// A signed push: `X-Feed-Signature` = hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub async fn push(api: &Api, provider: &str, secret: &str, body: &Value) -> Reply {
    let raw = body.to_string();
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{ts}.{raw}").as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    let started = std::time::Instant::now();
    let req = api
        .http
        .post(format!("{}/api/v1/feed/{provider}/messages", api.base))
        .header("content-type", "application/json")
        .header("X-Feed-Timestamp", ts)
        .header("X-Feed-Signature", sig)
        .body(raw);
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.json().await.unwrap_or(Value::Null);
            Reply {
                status,
                body,
                elapsed: started.elapsed(),
            }
        }
        Err(e) => Reply {
            status: 0,
            body: json!({"error": {"code": "transport", "message": e.to_string()}}),
            elapsed: started.elapsed(),
        },
    }
}
