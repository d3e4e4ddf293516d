//! The scenarios and what every run shares: the run sequence (load phase, verification,
//! report), the worker pool, bet bodies and a price generator.
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::Api;
use crate::report::{self, RunReport};
use crate::stats::{progress, Live, Stats, Stop};
use crate::{verify, Opts};

pub mod bets;
pub mod cash_out;
pub mod fanout;
pub mod feed_storm;
pub mod inplay;
pub mod match_day;
pub mod ws_compare;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Bets,
    Parlays,
    InPlay,
    Fanout,
    FeedStorm,
    MatchDay,
    CashOut,
    WsCompare,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Bets => "bets",
            Scenario::Parlays => "parlays",
            Scenario::InPlay => "inplay",
            Scenario::Fanout => "fanout",
            Scenario::FeedStorm => "feed-storm",
            Scenario::MatchDay => "match-day",
            Scenario::CashOut => "cash-out",
            Scenario::WsCompare => "ws-compare",
        }
    }
}

impl FromStr for Scenario {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Scenario> {
        Ok(match s {
            "bets" => Scenario::Bets,
            "parlays" => Scenario::Parlays,
            "inplay" => Scenario::InPlay,
            "fanout" => Scenario::Fanout,
            "feed-storm" => Scenario::FeedStorm,
            "match-day" => Scenario::MatchDay,
            "cash-out" => Scenario::CashOut,
            "ws-compare" => Scenario::WsCompare,
            other => anyhow::bail!(
                "unknown scenario {other:?} (bets, parlays, inplay, fanout, feed-storm, match-day, cash-out, ws-compare)"
            ),
        })
    }
}

/// What a scenario's load phase produced.
pub struct Outcome {
    pub stats: Stats,
    /// Length of the load phase (provisioning excluded).
    pub seconds: f64,
    /// Scenario-specific figures and remarks for the report.
    pub notes: Vec<String>,
    pub extra: Value,
    /// The engine's (peak, resident) memory in kB when the load phase started
    /// (after provisioning), with `--engine-pid`.
    pub memory_at_start: Option<(u64, u64)>,
}

/// Provisions, runs, verifies and writes the report of one scenario.
pub async fn run_scenario(opts: &Opts, scenario: Scenario) -> anyhow::Result<RunReport> {
    let api = Api::new(&opts.url, Duration::from_millis(opts.timeout_ms))?;
    api.wait_ready(Duration::from_secs(30)).await?;
    let started_at = chrono::Utc::now();
    let outcome = match scenario {
        Scenario::Bets => bets::run(&api, opts, false).await?,
        Scenario::Parlays => bets::run(&api, opts, true).await?,
        Scenario::InPlay => inplay::run(&api, opts).await?,
        Scenario::Fanout => fanout::run(&api, opts).await?,
        Scenario::FeedStorm => feed_storm::run(&api, opts).await?,
        Scenario::MatchDay => match_day::run(&api, opts).await?,
        Scenario::CashOut => cash_out::run(&api, opts).await?,
        Scenario::WsCompare => ws_compare::run(&api, opts).await?,
    };
    let cpu = crate::cpu::end(opts).await;
    let verdict = verify::verify(opts, &outcome.stats.bet_ids).await?;
    let memory = opts.engine_pid.and_then(verify::memory_kb);
    let name = match (scenario, opts.rate) {
        (Scenario::Bets, Some(_)) => "bets-open",
        _ => scenario.name(),
    };
    let mut report = RunReport::build(opts, name, started_at, &outcome, verdict, memory);
    report.cpu = cpu;
    report::write(opts, &report, &outcome.stats)?;
    Ok(report)
}

/// The shared pieces of a load phase.
#[derive(Clone)]
pub struct Phase {
    pub stop: Stop,
    pub started: Instant,
    pub memory_at_start: Option<(u64, u64)>,
}

impl Phase {
    /// Starts the clock (and the progress line) of a load phase.
    pub fn start(opts: &Opts, label: &str) -> (Phase, tokio::task::JoinHandle<()>) {
        let live = Arc::new(Live::default());
        let bar = progress(label.to_string(), live.clone(), opts.quiet);
        crate::cpu::begin(opts);
        let phase = Phase {
            stop: Stop::new(Instant::now() + opts.duration(), opts.max_ops, live),
            started: Instant::now(),
            memory_at_start: opts.engine_pid.and_then(verify::memory_kb),
        };
        (phase, bar)
    }

    pub fn live(&self) -> &Live {
        &self.stop.live
    }

    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Ends the phase now (its length, the progress line) with what it produced.
    pub fn outcome(
        &self,
        bar: tokio::task::JoinHandle<()>,
        stats: Stats,
        notes: Vec<String>,
        extra: Value,
    ) -> Outcome {
        let seconds = self.seconds();
        bar.abort();
        eprintln!();
        Outcome {
            stats,
            seconds,
            memory_at_start: self.memory_at_start,
            notes,
            extra,
        }
    }
}

/// Runs `n` workers (`f(worker index)`) to completion and merges what they saw.
pub async fn workers<F, Fut>(n: usize, f: F) -> anyhow::Result<Stats>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Stats> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut all = Stats::default();
    for h in handles {
        all.merge(h.await?);
    }
    Ok(all)
}

pub fn key() -> String {
    format!("ld-{}", Uuid::new_v4().simple())
}

/// A bet body: `legs` are (selection, odds); `kind` single, parlay or system.
pub fn bet_body(kind: &str, stake: &str, legs: &[(Uuid, String)], policy: &str) -> Value {
    let legs: Vec<Value> = legs
        .iter()
        .map(|(s, o)| json!({"selection_id": s, "odds": o}))
        .collect();
    let mut body = json!({"type": kind, "stake": stake, "legs": legs,
                          "odds_change": policy, "idempotency_key": key()});
    if kind == "system" {
        body["system_size"] = json!(2);
    }
    body
}

/// A random two-way price pair with a small overround (about 4%), as odds strings.
pub fn price_pair(rng: &mut impl Rng) -> (String, String) {
    let p: f64 = rng.gen_range(0.30..0.70);
    let over = 1.04;
    let a = 1.0 / (p * over);
    let b = 1.0 / ((1.0 - p) * over);
    (format!("{a:.4}"), format!("{b:.4}"))
}

pub async fn sleep_or_stop(stop: &Stop, d: Duration) {
    let until = Instant::now() + d;
    while !stop.done() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20).min(d)).await;
    }
}
