//! Results of a run: JSON (everything), a Markdown table and an SVG latency-percentile
//! plot (written by hand), all under `results_dir` as `<time>-<scenario>[-tag].*`.
use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::scenarios::Outcome;
use crate::stats::{OpSummary, Stats};
use crate::verify::Verdict;
use crate::Opts;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_total_kb: u64,
    /// `/proc/loadavg` at the end of the run (the machine may be shared).
    pub loadavg: String,
}

impl Machine {
    pub fn now() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_total_kb = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let loadavg = std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_total_kb,
            loadavg,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub started_at: DateTime<Utc>,
    /// PASSED, FAILED (ledger or acknowledged bets broken) or UNVERIFIED (no database URL).
    pub status: String,
    pub machine: Machine,
    pub seconds: f64,
    pub ops: Vec<OpSummary>,
    pub bets_acknowledged: usize,
    pub errors_total: u64,
    pub verdict: Verdict,
    pub engine_peak_kb: Option<u64>,
    pub engine_rss_kb: Option<u64>,
    /// Peak and resident memory when the load phase began (after provisioning).
    pub engine_peak_at_start_kb: Option<u64>,
    pub engine_rss_at_start_kb: Option<u64>,
    pub notes: Vec<String>,
    pub extra: Value,
    pub command: String,
    /// CPU of the engine, Postgres and the generator over the load phase.
    pub cpu: Option<crate::cpu::CpuUse>,
}

impl RunReport {
    pub fn build(
        opts: &Opts,
        scenario: &str,
        started_at: DateTime<Utc>,
        outcome: &Outcome,
        verdict: Verdict,
        memory: Option<(u64, u64)>,
    ) -> RunReport {
        let status = match (verdict.ledger_clean, verdict.passed()) {
            (None, _) => "UNVERIFIED",
            (_, true) => "PASSED",
            _ => "FAILED",
        };
        RunReport {
            scenario: scenario.to_string(),
            started_at,
            status: status.to_string(),
            machine: Machine::now(),
            seconds: outcome.seconds,
            ops: outcome
                .stats
                .ops
                .iter()
                .map(|(name, o)| o.summary(name, outcome.seconds))
                .collect(),
            bets_acknowledged: outcome.stats.bet_ids.len(),
            errors_total: outcome.stats.errors_total(),
            verdict,
            engine_peak_kb: memory.map(|m| m.0),
            engine_rss_kb: memory.map(|m| m.1),
            engine_peak_at_start_kb: outcome.memory_at_start.map(|m| m.0),
            engine_rss_at_start_kb: outcome.memory_at_start.map(|m| m.1),
            notes: outcome.notes.clone(),
            extra: outcome.extra.clone(),
            command: format!(
                "winzo-load {scenario} --bettors {} --markets {} --concurrency {} --duration-s {}{}",
                opts.bettors,
                opts.markets,
                opts.concurrency,
                opts.duration_s,
                opts.max_ops.map(|m| format!(" --max-ops {m}")).unwrap_or_default()
            ),
            cpu: None,
        }
    }

    pub fn passed(&self) -> bool {
        self.status == "PASSED"
    }
}

fn codes(m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "0".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Markdown form: a heading, the context and one row per operation.
pub fn markdown(r: &RunReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### {} — {} ({})\n",
        r.scenario,
        r.status,
        r.started_at.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        s,
        "- Machine: {} cores, {:.1} GiB, load average {} at the end",
        r.machine.cores,
        r.machine.memory_total_kb as f64 / 1048576.0,
        r.machine.loadavg
    );
    let _ = writeln!(
        s,
        "- Command: `{}`; load phase {:.1} s",
        r.command, r.seconds
    );
    for n in &r.notes {
        let _ = writeln!(s, "- {n}");
    }
    if r.engine_peak_kb.is_some() {
        let mib = |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0));
        let _ = writeln!(
            s,
            "- Engine memory (MiB): peak (VmHWM) {} at the end, {} when the load phase began; resident {} at the end, {} at the start",
            mib(r.engine_peak_kb),
            mib(r.engine_peak_at_start_kb),
            mib(r.engine_rss_kb),
            mib(r.engine_rss_at_start_kb)
        );
    }
    if let Some(cpu) = &r.cpu {
        let ok: u64 = r.ops.iter().map(|o| o.ok).sum();
        let (e, p, g) = cpu.per_op_us(ok);
        let f = |v: Option<f64>, d: usize| v.map_or("?".into(), |v| format!("{v:.d$}"));
        let _ = writeln!(
            s,
            "- CPU in the load phase (cores): engine {}, Postgres {}, generator {:.2}; per accepted operation: engine {} µs, Postgres {} µs, generator {:.0} µs",
            f(cpu.engine_cores, 2),
            f(cpu.postgres_cores, 2),
            cpu.generator_cores,
            f(e, 0),
            f(p, 0),
            g
        );
    }
    let _ = writeln!(
        s,
        "- Correctness: check-ledger {}, acknowledged bets {} of which missing {}\n",
        match r.verdict.ledger_clean {
            Some(true) => "clean",
            Some(false) => "VIOLATIONS",
            None => "not run",
        },
        r.verdict.acknowledged_bets,
        r.verdict.missing_bets.map_or("?".into(), |m| m.to_string())
    );
    let _ = writeln!(
        s,
        "| operation | ok | ok/s | p50 ms | p95 ms | p99 ms | max ms | refused | errors |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for o in &r.ops {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            o.op,
            o.ok,
            o.per_s,
            o.p50_ms,
            o.p95_ms,
            o.p99_ms,
            o.max_ms,
            codes(&o.rejected),
            codes(&o.errors)
        );
    }
    s
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Latency by percentile (x: 0%, 90%, 99%, 99.9%, 99.99% on a log scale of 1/(1-q);
/// y: milliseconds, log scale), one line per operation.
pub fn svg(r: &RunReport, stats: &Stats) -> String {
    let (w, h, left, bottom, top, right) = (800.0, 480.0, 70.0, 50.0, 40.0, 200.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let xs: Vec<f64> = (0..=40).map(|i| f64::from(i) / 10.0).collect();
    let mut lines = Vec::new();
    let mut y_max: f64 = 1.0;
    for (name, o) in &stats.ops {
        if o.ok == 0 {
            continue;
        }
        let pts: Vec<(f64, f64)> = xs
            .iter()
            .map(|x| {
                (
                    *x,
                    o.hist.value_at_quantile(1.0 - 10f64.powf(-x)).max(1) as f64 / 1000.0,
                )
            })
            .collect();
        y_max = pts.iter().fold(y_max, |m, p| m.max(p.1));
        lines.push((name.clone(), pts));
    }
    let y_lo = -2.0f64; // 0.01 ms
    let y_hi = y_max.log10().ceil().max(y_lo + 1.0);
    let px = |x: f64| left + x / 4.0 * pw;
    let py = |ms: f64| top + ph - (ms.max(0.01).log10() - y_lo) / (y_hi - y_lo) * ph;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"24\" font-size=\"15\">{} — latency by percentile ({})</text>",
        r.scenario, r.status
    );
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%"].iter().enumerate() {
        let x = px(i as f64);
        let _ = writeln!(s, "<line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{label}</text>", top + ph, top + ph + 18.0);
    }
    let mut e = y_lo as i32;
    while f64::from(e) <= y_hi {
        let y = py(10f64.powi(e));
        let _ = writeln!(s, "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} ms</text>", left + pw, left - 6.0, y + 4.0, 10f64.powi(e));
        e += 1;
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">percentile</text>",
        left + pw / 2.0,
        h - 8.0
    );
    for (i, (name, pts)) in lines.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(x, ms)| format!("{:.1},{:.1}", px(*x), py(*ms)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        let ly = top + 16.0 * i as f64 + 10.0;
        let _ = writeln!(s, "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"4\" fill=\"{c}\"/><text x=\"{}\" y=\"{}\">{name}</text>", left + pw + 12.0, ly - 4.0, left + pw + 30.0, ly);
    }
    s.push_str("</svg>\n");
    s
}

/// Writes `<stem>.json`, `<stem>.md` and `<stem>.svg`; returns the stem.
pub fn write(opts: &Opts, r: &RunReport, stats: &Stats) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&opts.results_dir)?;
    let tag = if opts.tag.is_empty() {
        String::new()
    } else {
        format!("-{}", opts.tag)
    };
    let stem = opts.results_dir.join(format!(
        "{}-{}{tag}",
        r.started_at.format("%Y%m%d-%H%M%S"),
        r.scenario
    ));
    std::fs::write(
        stem.with_extension("json"),
        serde_json::to_string_pretty(r)?,
    )?;
    std::fs::write(stem.with_extension("md"), markdown(r))?;
    std::fs::write(stem.with_extension("svg"), svg(r, stats))?;
    Ok(stem)
}
