//! `winzo-load summarize <dir>`: the table of a `make bench` run. For each scenario, the
//! median over its rounds (the rounds in brackets) of the bet throughput and the main
//! operation's latency, the errors, the engine's peak memory, the status of every round,
//! and the target of the issues with the gap; the pgbench baseline and the ratio
//! engine/baseline measured round by round in the same run.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// Operations that are not bets (trader, WebSocket and feed traffic).
fn is_bet_op(op: &str) -> bool {
    !matches!(op, "price_move" | "bet_stop" | "resume" | "feed_push")
        && !op.starts_with("ws_")
        && !op.starts_with("cash_out")
}

/// The operation whose latency a scenario's row shows.
fn main_op(scenario: &str) -> &'static str {
    match scenario {
        "bets" => "single",
        "parlays" => "parlay",
        "inplay" => "inplay_single",
        "fanout" => "ws_odds_delivery",
        "feed-storm" => "feed_push",
        "match-day" => "prematch_single",
        "cash-out" => "cash_out",
        _ => "",
    }
}

fn target(scenario: &str) -> &'static str {
    match scenario {
        "bets" => "≥ 20,000 bets/s, p99 < 25 ms, ≥ 3× pgbench (issue 5)",
        "parlays" => "none of its own (bet path: issue 5)",
        "inplay" => "p50 ≈ bet delay; refusals only by rule",
        "fanout" => "≥ 300,000 msgs/s, p99 < 50 ms, < 20 KiB/idle conn (issue 6)",
        "feed-storm" => "bet_stop → refusal p99 < 1 ms in-engine (issue 6, feed_suspend_bench)",
        "match-day" => "other markets' p99 < 50 ms (issue 7)",
        "cash-out" => "none set; bet acceptance with cash-outs vs. alone (issue 18)",
        _ => "",
    }
}

struct Round {
    run: String,
    status: String,
    bets_per_s: f64,
    main: Option<Value>,
    errors: u64,
    peak_kb: u64,
    rss_start_kb: u64,
    rss_end_kb: u64,
    extra: Value,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn load_rounds(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<Round>>> {
    let mut by: BTreeMap<String, Vec<Round>> = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f)?)?;
        let scenario = v["scenario"].as_str().unwrap_or("?").to_string();
        let ops = v["ops"].as_array().cloned().unwrap_or_default();
        let per_s = |o: &Value| o["per_s"].as_f64().unwrap_or(0.0);
        let name = |o: &Value| o["op"].as_str().unwrap_or("").to_string();
        let stem = f
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        by.entry(scenario.clone()).or_default().push(Round {
            run: stem.rsplit('-').next().unwrap_or("").to_string(),
            status: v["status"].as_str().unwrap_or("?").to_string(),
            bets_per_s: ops.iter().filter(|o| is_bet_op(&name(o))).map(per_s).sum(),
            main: ops.iter().find(|o| name(o) == main_op(&scenario)).cloned(),
            errors: v["errors_total"].as_u64().unwrap_or(0),
            peak_kb: v["engine_peak_kb"].as_u64().unwrap_or(0),
            rss_start_kb: v["engine_rss_at_start_kb"].as_u64().unwrap_or(0),
            rss_end_kb: v["engine_rss_kb"].as_u64().unwrap_or(0),
            extra: v["extra"].clone(),
        });
    }
    Ok(by)
}

/// (run tag, tps) of every `pgbench-<run>.txt`.
fn pgbench(dir: &Path) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(run) = name
            .strip_prefix("pgbench-")
            .and_then(|n| n.strip_suffix(".txt"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if let Some(tps) = text
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|t| t.parse().ok())
        {
            out.insert(run.to_string(), tps);
        }
    }
    out
}

fn fmt_runs(v: &[f64], digits: usize) -> String {
    v.iter()
        .map(|x| format!("{x:.digits$}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

pub fn summarize(dir: &Path) -> anyhow::Result<String> {
    let rounds = load_rounds(dir)?;
    let pg = pgbench(dir);
    let mut s = String::new();
    let _ = writeln!(s, "## make bench — {}\n", dir.display());
    let _ = writeln!(s, "Medians over the rounds (each round in brackets). Latency columns are the scenario's main operation.\n");
    let _ = writeln!(s, "| scenario | rounds | bets/s | main op | p50 ms | p95 ms | p99 ms | max ms | errors | engine peak MiB | RSS start→end MiB | target |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (scenario, rs) in &rounds {
        let q = |k: &str| -> Vec<f64> {
            rs.iter()
                .map(|r| {
                    r.main
                        .as_ref()
                        .and_then(|m| m[k].as_f64())
                        .unwrap_or(f64::NAN)
                })
                .collect()
        };
        let bets: Vec<f64> = rs.iter().map(|r| r.bets_per_s).collect();
        let p99 = q("p99_ms");
        let _ = writeln!(
            s,
            "| {scenario} | {} | {} | {} | {:.2} | {:.2} | {:.2} ({}) | {:.2} | {} | {:.0} | {:.0}→{:.0} | {} |",
            rs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>().join(", "),
            if bets.iter().all(|b| *b == 0.0) {
                "—".to_string()
            } else {
                format!("{:.0} ({})", median(bets.clone()), fmt_runs(&bets, 0))
            },
            main_op(scenario),
            median(q("p50_ms")),
            median(q("p95_ms")),
            median(p99.clone()),
            fmt_runs(&p99, 1),
            median(q("max_ms")),
            rs.iter().map(|r| r.errors).sum::<u64>(),
            rs.iter().map(|r| r.peak_kb).max().unwrap_or(0) as f64 / 1024.0,
            median(rs.iter().map(|r| r.rss_start_kb as f64).collect()) / 1024.0,
            median(rs.iter().map(|r| r.rss_end_kb as f64).collect()) / 1024.0,
            target(scenario)
        );
    }
    if let Some(bets) = rounds.get("bets") {
        let ratios: Vec<(String, f64, f64)> = bets
            .iter()
            .filter_map(|r| {
                pg.get(&r.run)
                    .map(|tps| (r.run.clone(), r.bets_per_s, *tps))
            })
            .collect();
        let _ = writeln!(
            s,
            "\nBaseline (pgbench, one SQL transaction per bet, 16 clients), same rounds:\n"
        );
        let _ = writeln!(s, "| round | engine bets/s | pgbench bets/s | ratio |");
        let _ = writeln!(s, "|---|---|---|---|");
        for (run, e, p) in &ratios {
            let _ = writeln!(s, "| {run} | {e:.0} | {p:.0} | {:.2}× |", e / p);
        }
        let med = median(ratios.iter().map(|r| r.1 / r.2).collect());
        let _ = writeln!(
            s,
            "\nMedian ratio engine/baseline: {med:.2}× (target ≥ 3×)."
        );
    }
    for key in [
        "delivered_per_s",
        "rss_per_idle_subscriber_kib",
        "messages_applied_per_s",
        "cash_outs_per_s",
        "cash_out_p99_ms",
        "bets_per_s_alone",
        "bets_per_s_with_cash_out",
        "bet_p99_ms_alone",
        "bet_p99_ms_with_cash_out",
    ] {
        for (scenario, rs) in &rounds {
            let v: Vec<f64> = rs.iter().filter_map(|r| r.extra[key].as_f64()).collect();
            if !v.is_empty() {
                let _ = writeln!(
                    s,
                    "\n{scenario}: {key} median {:.1} ({})",
                    median(v.clone()),
                    fmt_runs(&v, 1)
                );
            }
        }
    }
    if let Ok(mem) = std::fs::read_to_string(dir.join("engine-memory.txt")) {
        let _ = writeln!(
            s,
            "\nEngine memory once ready, before any provisioning (kB):\n"
        );
        for line in mem.lines() {
            let _ = writeln!(s, "- {line}");
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(
        s,
        "\nLoad average at the end: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(s)
}
