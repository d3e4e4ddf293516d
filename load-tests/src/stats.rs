//! Per-operation statistics: a latency histogram of accepted answers, counts of refusals
//! and errors by code, the acknowledged bet ids; plus the shared live counters behind the
//! progress line.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use uuid::Uuid;

use crate::api::Reply;

/// Latencies are recorded in microseconds, 1 µs to 10 minutes, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds")
}

/// Statistics of one operation kind.
#[derive(Clone)]
pub struct OpStats {
    pub hist: Histogram<u64>,
    pub ok: u64,
    /// Answers the engine refused by rule (4xx business codes: `odds_changed`, ...).
    pub rejected: BTreeMap<String, u64>,
    /// Failures: 5xx, transport, and 4xx that only a broken client gets (400/401/404/405).
    pub errors: BTreeMap<String, u64>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            hist: histogram(),
            ok: 0,
            rejected: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }
}

/// Whether a non-2xx answer is a business refusal (expected under load) or an error.
pub fn is_rejection(status: u16) -> bool {
    matches!(status, 403 | 409 | 422 | 429)
}

/// What one worker (or the whole run, after merging) saw.
#[derive(Default, Clone)]
pub struct Stats {
    pub ops: BTreeMap<String, OpStats>,
    pub bet_ids: Vec<Uuid>,
}

impl Stats {
    pub fn op(&mut self, op: &str) -> &mut OpStats {
        self.ops.entry(op.to_string()).or_default()
    }

    /// Records an accepted operation's latency.
    pub fn ok(&mut self, op: &str, elapsed: Duration) {
        let s = self.op(op);
        s.ok += 1;
        let us = (elapsed.as_micros() as u64).clamp(1, 600_000_000);
        let _ = s.hist.record(us);
    }

    pub fn fail(&mut self, op: &str, code: String, rejection: bool) {
        let s = self.op(op);
        let map = if rejection {
            &mut s.rejected
        } else {
            &mut s.errors
        };
        *map.entry(code).or_default() += 1;
    }

    /// Records a REST answer; returns true when it was 2xx.
    pub fn reply(&mut self, op: &str, r: &Reply, live: &Live) -> bool {
        if r.ok() {
            self.ok(op, r.elapsed);
            live.ok.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            let rejection = is_rejection(r.status);
            self.fail(op, r.code(), rejection);
            let c = if rejection {
                &live.rejected
            } else {
                &live.errors
            };
            c.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Records a bet answer, keeping the id of an accepted bet.
    pub fn bet(&mut self, op: &str, r: &Reply, live: &Live) {
        if self.reply(op, r, live) {
            match r.id() {
                Ok(id) => self.bet_ids.push(id),
                Err(_) => self.fail(op, "accepted_without_id".into(), false),
            }
        }
    }

    pub fn merge(&mut self, other: Stats) {
        for (name, o) in other.ops {
            let s = self.op(&name);
            s.ok += o.ok;
            let _ = s.hist.add(&o.hist);
            for (k, v) in o.rejected {
                *s.rejected.entry(k).or_default() += v;
            }
            for (k, v) in o.errors {
                *s.errors.entry(k).or_default() += v;
            }
        }
        self.bet_ids.extend(other.bet_ids);
    }

    pub fn errors_total(&self) -> u64 {
        self.ops.values().flat_map(|o| o.errors.values()).sum()
    }

    pub fn ok_total(&self) -> u64 {
        self.ops.values().map(|o| o.ok).sum()
    }
}

/// Live counters shared by the workers (progress line, stop after `max_ops`).
#[derive(Default)]
pub struct Live {
    pub ok: AtomicU64,
    pub rejected: AtomicU64,
    pub errors: AtomicU64,
}

impl Live {
    pub fn total(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
            + self.rejected.load(Ordering::Relaxed)
            + self.errors.load(Ordering::Relaxed)
    }
}

/// When the load phase of a scenario ends: at `until` or after `max_ops` operations.
#[derive(Clone)]
pub struct Stop {
    pub until: Instant,
    pub max_ops: Option<u64>,
    pub live: Arc<Live>,
    /// Set to end early (e.g. subscribers once the load phase is over).
    pub halt: Arc<std::sync::atomic::AtomicBool>,
}

impl Stop {
    pub fn new(until: Instant, max_ops: Option<u64>, live: Arc<Live>) -> Stop {
        Stop {
            until,
            max_ops,
            live,
            halt: Arc::default(),
        }
    }

    pub fn done(&self) -> bool {
        self.halt.load(Ordering::Relaxed)
            || Instant::now() >= self.until
            || self.max_ops.is_some_and(|m| self.live.total() >= m)
    }

    pub fn halt(&self) {
        self.halt.store(true, Ordering::Relaxed);
    }
}

/// Prints `label  12s  ok 1234 (5678/s)  rejected 3  errors 0` every second on stderr
/// until aborted.
pub fn progress(label: String, live: Arc<Live>, quiet: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if quiet {
            return;
        }
        let start = Instant::now();
        let mut last = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let ok = live.ok.load(Ordering::Relaxed);
            eprint!(
                "\r{label}  {:>4}s  ok {ok} ({}/s)  rejected {}  errors {}      ",
                start.elapsed().as_secs(),
                ok - last,
                live.rejected.load(Ordering::Relaxed),
                live.errors.load(Ordering::Relaxed)
            );
            last = ok;
        }
    })
}

/// Percentile summary of one operation, for the reports.
#[derive(Debug, Clone, Serialize)]
pub struct OpSummary {
    pub op: String,
    pub ok: u64,
    pub per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub rejected: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
}

impl OpStats {
    pub fn summary(&self, op: &str, seconds: f64) -> OpSummary {
        let ms = |q: f64| self.hist.value_at_quantile(q) as f64 / 1000.0;
        OpSummary {
            op: op.to_string(),
            ok: self.ok,
            per_s: if seconds > 0.0 {
                self.ok as f64 / seconds
            } else {
                0.0
            },
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: self.hist.max() as f64 / 1000.0,
            rejected: self.rejected.clone(),
            errors: self.errors.clone(),
        }
    }
}
