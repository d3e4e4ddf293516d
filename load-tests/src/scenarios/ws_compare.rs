//! `ws-compare` (issue 16): the same WebSocket clients against the engine and then against
//! each baseline given, in the same run, with the same price moves: the plain serialize-once
//! broadcaster (`plain_broadcaster`, tokio-tungstenite, at `--broadcaster-url`) and the
//! minimal Node `ws` one (load-tests/node-broadcaster, at `--node-broadcaster-url`), each a
//! separate process. Their figures go into the JSON under `broadcaster` and `node_ws`, and
//! the engine's ratios against each into the notes.
//!
//! Per server: `--subscribers` clients (the fanout scenario's, [`crate::ws`]) subscribe to
//! one event of `--compare-markets` markets (8) and get their snapshot; the server's RSS
//! before and once it has settled gives the memory per idle connection. Then two phases of
//! `--duration-s` each, each followed by a drain until nothing more arrives (what arrives
//! then still counts for the latency of the phase before, not for its throughput):
//! - **saturation**: one price mover per market, each sending its next move as soon as
//!   the previous one is answered (one move in flight per market): delivered odds
//!   messages/s, publish-to-receive latency, and the server's peak RSS (sampled every
//!   100 ms) per connection;
//! - **fixed rate**: every market moves `--fixed-moves-per-s` (5) times a second on a
//!   schedule, whatever the answers: the latency at the same offered rate for both.
//!
//! A move is the engine's trading call `POST /api/v1/trading/markets/<id>/prices` changing
//! selection 0 only (so both servers send one price per message), each with a price not
//! used by the other markets (latency key). The broadcaster takes the same request with
//! `?event_id=<event>` (its topic; the engine ignores the query).
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use super::{Outcome, Phase};
use crate::api::Api;
use crate::provision::{self, Market};
use crate::stats::{Live, Stats, Stop};
use crate::ws::{self, Sent, SubResult};
use crate::{verify, Opts};

/// Distinct prices per market (the latency key cycles after this many moves).
const PRICES_PER_MARKET: u64 = 1000;
/// A drain between phases ends when no odds message arrived for this long...
const QUIET: Duration = Duration::from_millis(300);
/// ...or after this long, whatever still arrives.
const DRAIN_MAX: Duration = Duration::from_secs(30);
/// The idle memory is read once two readings this far apart differ by at most 1 %...
const RSS_SETTLE: Duration = Duration::from_millis(500);
/// ...or after this long.
const RSS_SETTLE_MAX: Duration = Duration::from_secs(10);

/// One server under test.
struct Target<'a> {
    /// Its key in the JSON (and its latency ops' infix).
    name: &'static str,
    /// What it is, in the ratio notes.
    label: &'static str,
    api: Api,
    pid: Option<u32>,
    token: Option<&'a str>,
}

/// What one phase on one server measured.
struct PhaseResult {
    seconds: f64,
    moves: u64,
    /// Latency op in the run's stats.
    op: String,
    peak_rss_kb: Option<u64>,
    /// Cores used by the server and by this process (the clients) over the phase.
    server_cores: Option<f64>,
    client_cores: Option<f64>,
}

pub async fn run(api: &Api, opts: &Opts) -> anyhow::Result<Outcome> {
    // The baselines given: (key, label, URL, pid).
    let given = [
        (
            "broadcaster",
            "tokio-tungstenite",
            &opts.broadcaster_url,
            opts.broadcaster_pid,
        ),
        (
            "node_ws",
            "Node ws",
            &opts.node_broadcaster_url,
            opts.node_broadcaster_pid,
        ),
    ];
    let mut baselines = Vec::new();
    for (name, label, url, pid) in given {
        let Some(url) = url else { continue };
        let api = Api::new(url, Duration::from_millis(opts.timeout_ms))?;
        api.wait_ready(Duration::from_secs(30)).await?;
        baselines.push(Target {
            name,
            label,
            api,
            pid,
            token: None,
        });
    }
    anyhow::ensure!(
        !baselines.is_empty(),
        "ws-compare needs --broadcaster-url and/or --node-broadcaster-url (a running broadcaster)"
    );
    if !ws::available(api).await {
        anyhow::bail!("this engine does not serve /ws: ws-compare needs the WebSocket server");
    }
    let trader = provision::trader(api, &opts.trader_login, &opts.trader_password).await?;
    // Each market's prices are 1.0500 + market/10 + up to 0.0999 (latency keys).
    anyhow::ensure!(
        (1..=9).contains(&opts.compare_markets),
        "--compare-markets: 1 to 9"
    );
    let n_markets = opts.compare_markets;
    let book = provision::book(api, &trader, 1, n_markets, Duration::from_secs(3 * 3600)).await?;
    // Both selections once at a price no move uses: from then on every move changes
    // selection 0 only, and the engine's message (the changed selections) carries the same
    // one price as the broadcaster's (the selections sent).
    for m in &book.markets {
        let body = json!({"prices": [{"selection_id": m.selections[0].0, "odds": "1.0400"},
                                     {"selection_id": m.selections[1].0, "odds": "1.9500"}]});
        api.post(
            &format!("/api/v1/trading/markets/{}/prices", m.id),
            Some(&trader),
            &body,
        )
        .await
        .expect_ok("opening prices")?;
    }
    let (phase, bar) = Phase::start(opts, "ws-compare");
    let mut stats = Stats::default();
    let mut notes = Vec::new();
    let mut extra = json!({"subscribers": opts.subscribers, "markets": n_markets,
                           "fixed_moves_per_s_per_market": opts.fixed_moves_per_s});
    let engine = Target {
        name: "engine",
        label: "the engine",
        api: api.clone(),
        pid: opts.engine_pid,
        token: Some(&trader),
    };
    for t in std::iter::once(&engine).chain(&baselines) {
        let (side, note) = side(t, &book.markets, book.events[0], opts, &mut stats).await;
        extra[t.name] = side;
        notes.push(note);
    }
    for b in &baselines {
        let ratio = |k: &str| {
            extra["engine"][k].as_f64().unwrap_or(f64::NAN)
                / extra[b.name][k].as_f64().unwrap_or(f64::NAN)
        };
        notes.push(format!(
            "engine/{}: throughput {:.2}×, p99 {:.2}×, peak memory per connection {:.2}×, fixed-rate p99 {:.2}× (vs {})",
            b.name,
            ratio("delivered_per_s"),
            ratio("p99_ms"),
            ratio("peak_kib_per_conn"),
            ratio("fixed_p99_ms"),
            b.label
        ));
    }
    Ok(phase.outcome(bar, stats, notes, extra))
}

/// The whole sequence on one server: its figures (JSON) and a one-line note.
async fn side(
    t: &Target<'_>,
    markets: &[Market],
    event: Uuid,
    opts: &Opts,
    stats: &mut Stats,
) -> (Value, String) {
    let rss = || t.pid.and_then(verify::memory_kb).map(|m| m.1);
    let sent: Sent = Arc::new(RwLock::new(HashMap::new()));
    let rss_before = rss();
    let phase = Arc::new(ws::Phases::default());
    let subs_stop = Stop::new(
        Instant::now() + Duration::from_secs(3600),
        None,
        Arc::new(Live::default()),
    );
    let wait = Duration::from_secs(60 + opts.subscribers as u64 / 100);
    let (tasks, ready) = ws::subscribe_many(
        &t.api,
        &format!("event:{event}"),
        opts.subscribers,
        &sent,
        &subs_stop,
        wait,
        Some(phase.clone()),
    )
    .await;
    let rss_idle = settled(rss).await;
    // Phases 1 (saturation) and 3 (fixed rate); 2 and 4 are their drains.
    phase.phase.store(1, Ordering::Relaxed);
    let sat = moves(t, markets, event, &sent, opts, None, stats).await;
    phase.phase.store(2, Ordering::Relaxed);
    drained(&phase).await;
    phase.phase.store(3, Ordering::Relaxed);
    let fixed = moves(
        t,
        markets,
        event,
        &sent,
        opts,
        Some(opts.fixed_moves_per_s),
        stats,
    )
    .await;
    phase.phase.store(4, Ordering::Relaxed);
    drained(&phase).await;
    subs_stop.halt();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap_or_default());
    }
    let (closed, failed) = (
        results.iter().filter(|r| r.closed_early).count(),
        results.iter().filter(|r| !r.connected).count(),
    );
    let (sat_delivered, fixed_delivered) = (
        tally(stats, &results, &[1, 2], &sat.op),
        tally(stats, &results, &[3, 4], &fixed.op),
    );
    // Throughput counts what arrived within each phase only (not its drain).
    let in_phase = |p: usize| -> u64 {
        results
            .iter()
            .filter_map(|r| r.phases.get(p))
            .map(|x| x.odds)
            .sum()
    };
    let (sat_in, fixed_in) = (in_phase(1), in_phase(3));
    let per_conn = |kb: Option<u64>| match (kb, rss_before) {
        (Some(a), Some(b)) if ready > 0 => Some(a.saturating_sub(b) as f64 / ready as f64),
        _ => None,
    };
    let q = |op: &str, p: f64| {
        stats
            .ops
            .get(op)
            .filter(|o| !o.hist.is_empty())
            .map(|o| o.hist.value_at_quantile(p) as f64 / 1000.0)
    };
    let v = json!({
        "ready": ready, "closed_early": closed, "connect_failed": failed,
        "rss_before_kb": rss_before, "rss_idle_kb": rss_idle,
        "idle_kib_per_conn": per_conn(rss_idle),
        "moves": sat.moves, "moves_per_s": sat.moves as f64 / sat.seconds.max(0.001),
        "delivered": sat_in, "delivered_with_drain": sat_delivered, "delivered_per_s": sat_in as f64 / sat.seconds.max(0.001),
        "p50_ms": q(&sat.op, 0.5), "p99_ms": q(&sat.op, 0.99), "max_ms": q(&sat.op, 1.0),
        "peak_rss_kb": sat.peak_rss_kb, "peak_kib_per_conn": per_conn(sat.peak_rss_kb),
        "fixed_moves": fixed.moves, "fixed_offered_per_s": fixed.moves as f64 / fixed.seconds.max(0.001) * ready as f64,
        "fixed_delivered": fixed_in, "fixed_delivered_with_drain": fixed_delivered,
        "fixed_delivered_per_s": fixed_in as f64 / fixed.seconds.max(0.001),
        "fixed_p50_ms": q(&fixed.op, 0.5), "fixed_p99_ms": q(&fixed.op, 0.99),
        "fixed_peak_rss_kb": fixed.peak_rss_kb,
        "fixed_peak_kib_per_conn": per_conn(fixed.peak_rss_kb),
        "server_cores": sat.server_cores, "client_cores": sat.client_cores,
        "server_us_per_delivered": sat.server_cores.map(|c| c * sat.seconds * 1e6 / sat_in.max(1) as f64),
        "client_us_per_delivered": sat.client_cores.map(|c| c * sat.seconds * 1e6 / sat_in.max(1) as f64),
        "fixed_server_cores": fixed.server_cores, "fixed_client_cores": fixed.client_cores,
        "load_average": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    });
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let note = format!(
        "{}: {ready} clients ready ({closed} closed early, {failed} failed to connect); saturation {:.0} moves/s, {:.0} msgs/s delivered, p50 {:.1} ms, p99 {:.1} ms, peak {:.1} KiB/conn, server {:.2} cores ({:.1} µs per delivered message), clients {:.2} cores; fixed rate {:.0} msgs/s, p99 {:.1} ms; idle {:.1} KiB/conn",
        t.name,
        f("moves_per_s"),
        f("delivered_per_s"),
        f("p50_ms"),
        f("p99_ms"),
        f("peak_kib_per_conn"),
        f("server_cores"),
        f("server_us_per_delivered"),
        f("client_cores"),
        f("fixed_delivered_per_s"),
        f("fixed_p99_ms"),
        f("idle_kib_per_conn"),
    );
    (v, note)
}

/// Adds the latencies of `phases` of every subscriber to op `op`: the deliveries counted.
fn tally(stats: &mut Stats, results: &[SubResult], phases: &[usize], op: &str) -> u64 {
    let mut n = 0;
    for r in results {
        for p in phases.iter().filter_map(|&p| r.phases.get(p)) {
            n += p.odds;
            for us in &p.latencies_us {
                stats.ok(op, Duration::from_micros(u64::from(*us)));
            }
        }
    }
    n
}

/// Selection 0's price for move `k` of market `m`: each market has its own range.
fn price(m: usize, k: u64) -> String {
    let ten_thousandths = 500 + m as u64 * PRICES_PER_MARKET + k % PRICES_PER_MARKET;
    format!("1.{ten_thousandths:04}")
}

/// One phase of moves on every market: closed loop (`per_s` None: each market's next move
/// once the previous is answered) or on a schedule of `per_s` moves a second per market.
async fn moves(
    t: &Target<'_>,
    markets: &[Market],
    event: Uuid,
    sent: &Sent,
    opts: &Opts,
    per_s: Option<u64>,
    stats: &mut Stats,
) -> PhaseResult {
    let label = if per_s.is_some() {
        "fixed"
    } else {
        "saturation"
    };
    let stop = Stop::new(
        Instant::now() + opts.duration(),
        None,
        Arc::new(Live::default()),
    );
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(peak_rss(t.pid, sampling.clone()));
    let started = Instant::now();
    let ticks = || {
        (
            t.pid.and_then(crate::cpu::ticks),
            crate::cpu::ticks(std::process::id()),
        )
    };
    let ticks_before = ticks();
    let mut movers = Vec::new();
    for (i, m) in markets.iter().enumerate() {
        let (api, sent, stop) = (t.api.clone(), sent.clone(), stop.clone());
        let token = t.token.map(str::to_string);
        let path = format!("/api/v1/trading/markets/{}/prices?event_id={event}", m.id);
        let selection = m.selections[0].0;
        let op = format!("ws_{}_move", t.name);
        movers.push(tokio::spawn(async move {
            mover(api, token, path, selection, i, sent, stop, per_s, op).await
        }));
    }
    let mut moved = 0;
    for h in movers {
        if let Ok(s) = h.await {
            moved += s.ok_total();
            stats.merge(s);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let ticks_after = ticks();
    // Clock ticks are hundredths of a second.
    let cores =
        |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / 100.0 / seconds);
    sampling.store(false, Ordering::Relaxed);
    PhaseResult {
        seconds,
        moves: moved,
        op: format!("ws_{}_{label}", t.name),
        peak_rss_kb: sampler.await.ok().flatten(),
        server_cores: cores(ticks_before.0, ticks_after.0),
        client_cores: cores(ticks_before.1, ticks_after.1),
    }
}

#[allow(clippy::too_many_arguments)]
async fn mover(
    api: Api,
    token: Option<String>,
    path: String,
    selection: Uuid,
    market: usize,
    sent: Sent,
    stop: Stop,
    per_s: Option<u64>,
    op: String,
) -> Stats {
    let mut stats = Stats::default();
    let mut k = 0u64;
    let send = |k: u64| {
        let odds = price(market, k);
        if let Ok(mut s) = sent.write() {
            s.insert(odds.clone(), Instant::now());
        }
        let body = json!({"prices": [{"selection_id": selection, "odds": odds}]});
        let (api, path, token) = (api.clone(), path.clone(), token.clone());
        async move { api.post(&path, token.as_deref(), &body).await }
    };
    match per_s {
        None => {
            while !stop.done() {
                k += 1;
                let r = send(k).await;
                stats.reply(&op, &r, &stop.live);
            }
        }
        Some(rate) => {
            // Open loop: each move at its time, whatever the answers of the earlier ones.
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            let mut inflight = Vec::new();
            while !stop.done() {
                tick.tick().await;
                if stop.done() {
                    break;
                }
                k += 1;
                inflight.push(tokio::spawn(send(k)));
            }
            for h in inflight {
                if let Ok(r) = h.await {
                    stats.reply(&op, &r, &stop.live);
                }
            }
        }
    }
    stats
}

/// The largest RSS (kB) of `pid` sampled every 100 ms while `on`.
async fn peak_rss(pid: Option<u32>, on: Arc<AtomicBool>) -> Option<u64> {
    let pid = pid?;
    let mut peak = None;
    let mut every = tokio::time::interval(Duration::from_millis(100));
    while on.load(Ordering::Relaxed) {
        every.tick().await;
        peak = peak.max(verify::memory_kb(pid).map(|m| m.1));
    }
    peak
}

/// Waits until the subscribers' odds messages stop arriving (no new one for `QUIET`), at
/// most `DRAIN_MAX`.
async fn drained(phases: &ws::Phases) {
    let until = Instant::now() + DRAIN_MAX;
    let mut every = tokio::time::interval(QUIET);
    every.tick().await;
    let mut last = phases.received.load(Ordering::Relaxed);
    while Instant::now() < until {
        every.tick().await;
        let now = phases.received.load(Ordering::Relaxed);
        if now == last {
            return;
        }
        last = now;
    }
}

/// The RSS once two readings `RSS_SETTLE` apart differ by at most 1 % (at most
/// `RSS_SETTLE_MAX`): the memory of idle connections, not of their set-up.
async fn settled(rss: impl Fn() -> Option<u64>) -> Option<u64> {
    let until = Instant::now() + RSS_SETTLE_MAX;
    let mut every = tokio::time::interval(RSS_SETTLE);
    every.tick().await;
    let mut last = rss();
    while Instant::now() < until {
        every.tick().await;
        let now = rss();
        if let (Some(a), Some(b)) = (last, now) {
            if a.abs_diff(b) * 100 <= a {
                return now;
            }
        }
        last = now;
    }
    last
}
