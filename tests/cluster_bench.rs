//! Bets per second with one engine node and with three (issue 20), on this machine: run by
//! `scripts/bench-cluster.sh` (ignored in the normal suite: it measures, it does not test).
//!
//! Each measurement starts real `winzo serve` processes (the build under test) on a fresh
//! database: one node as `make run` has it (no leases), then three nodes sharing events by
//! lease. The same bettors place 1.00 singles back to back on six events for the same time,
//! through every node in turn; the acknowledged bets per second are printed, and every
//! acknowledged bet is checked to be in the database once with its debit.
mod common;
mod markets_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::engine::{free_port, spawn_engine, wait_ready, Engine};
use markets_support::{account, create_catalogue, create_event};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;
use winzo::auth::Role;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn nodes(db_url: &str, n: usize, http: &reqwest::Client) -> Vec<(Engine, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let id = format!("b{i}");
        let env: Vec<(&str, &str)> = if n == 1 {
            Vec::new()
        } else {
            vec![
                ("WINZO__CLUSTER__ENABLED", "true"),
                ("WINZO__CLUSTER__NODE_ID", &id),
                ("WINZO__CLUSTER__ADVERTISE_ADDR", &base),
            ]
        };
        let engine = spawn_engine(db_url, port, &env);
        wait_ready(http, &base).await;
        out.push((engine, base));
    }
    out
}

/// Acknowledged bets per second through `n` nodes.
async fn measure(n: usize) -> f64 {
    let bettors = env_or("BENCH_BETTORS", 12) as usize;
    let seconds = env_or("BENCH_SECONDS", 15);
    let db = common::TestDb::new().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let (_, admin) = account(&db.client, Role::Admin).await;
    let started = nodes(&db.url, n, &http).await;
    let bases: Vec<String> = started.iter().map(|(_, b)| b.clone()).collect();
    let catalogue = create_catalogue(&http, &bases[0], &admin).await;
    let mut selections = Vec::new();
    for _ in 0..6 {
        selections.push(
            create_event(&http, &bases[0], &admin, &catalogue)
                .await
                .selections[0][0],
        );
    }
    if n > 1 {
        common::wait_until(
            "every node to own events",
            Duration::from_secs(60),
            || async {
                let owners: i64 = db
                    .client
                    .query_one(
                        "SELECT count(DISTINCT node_id) FROM event_leases WHERE expires_at > now()",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                owners == n as i64
            },
        )
        .await;
    }
    let users = common::fixtures::funded_users(&db.client, Decimal::from(1_000_000), bettors).await;
    let settings = winzo::config::load_for("test").unwrap();
    let redis = winzo::redis_client::connect(&settings.redis).unwrap();
    let mut tokens = Vec::new();
    for u in &users {
        tokens.push(
            winzo::auth::session::create(&redis, (*u).into(), Role::User, 3600)
                .await
                .unwrap()
                .0,
        );
    }
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for (b, token) in tokens.into_iter().enumerate() {
        let (http, bases, selections) = (http.clone(), bases.clone(), selections.clone());
        let (acked, refused, stop) = (acked.clone(), refused.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut i = b;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"type": "single", "stake": "1.00",
                                  "idempotency_key": format!("bench-{b}-{i}"),
                                  "legs": [{"selection_id": selections[i % selections.len()],
                                            "odds": "1.9091"}]});
                let r = http
                    .post(format!("{}/api/v1/bets", bases[i % bases.len()]))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => acked.fetch_add(1, Ordering::Relaxed),
                    _ => refused.fetch_add(1, Ordering::Relaxed),
                };
                i += 1;
            }
        }));
    }
    // The measured window: `seconds` of betting, then every bettor stops.
    let mut tick = tokio::time::interval(Duration::from_secs(seconds));
    tick.tick().await;
    tick.tick().await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let acked = acked.load(Ordering::Relaxed);
    let stored: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM bets b JOIN transactions t
               ON t.related_bet_id = b.id AND t.type = 'bet_debit'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        stored as u64 >= acked,
        "every acknowledged bet stored with its debit"
    );
    let rate = acked as f64 / elapsed;
    println!(
        "bench: {n} node(s), {bettors} bettors, {elapsed:.1} s: {acked} bets acknowledged \
         ({rate:.0} bets/s), {} refused or unanswered, {stored} stored",
        refused.load(Ordering::Relaxed)
    );
    let _: Vec<Uuid> = users;
    drop(started);
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: scripts/bench-cluster.sh"]
async fn bets_per_second_with_one_and_with_three_nodes() {
    // Rounds alternate one node and three, so a change in the machine's load hits both.
    let rounds = env_or("BENCH_ROUNDS", 3).max(1);
    let (mut one, mut three) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        one.push(measure(1).await);
        three.push(measure(3).await);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (one, three) = (median(&mut one), median(&mut three));
    println!(
        "bench: medians of {rounds} rounds: one node {one:.0} bets/s, three nodes {three:.0} \
         bets/s (ratio {:.2})",
        three / one.max(1.0)
    );
}
