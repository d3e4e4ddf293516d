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
        "bets" | "bets-open" => "single",
        "parlays" => "parlay",
        "inplay" => "inplay_single",
        "fanout" => "ws_odds_delivery",
        "feed-storm" => "feed_push",
        "match-day" => "prematch_single",
        "cash-out" => "cash_out",
        "ws-compare" => "ws_engine_saturation",
        _ => "",
    }
}

fn target(scenario: &str) -> &'static str {
    match scenario {
        "bets" => "≥ 5× pgbench and ≥ 0.5× the batched ceiling (issue 16); p99 < 25 ms",
        "parlays" => "none of its own (bet path: issue 5)",
        "inplay" => "p50 ≈ bet delay; refusals only by rule",
        "fanout" => "≥ 300,000 msgs/s, p99 < 50 ms, < 20 KiB/idle conn (issue 6)",
        "feed-storm" => "bet_stop → refusal p99 < 1 ms in-engine (issue 6, feed_suspend_bench)",
        "match-day" => "other markets' p99 < 50 ms (issue 7)",
        "cash-out" => "none set; bet acceptance with cash-outs vs. alone (issue 18)",
        "ws-compare" => {
            "vs. each broadcaster (tokio-tungstenite, Node ws): ≥ 3× msgs/s, p99 and peak KiB/conn ≤ (issue 16)"
        }
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
    /// Engine, Postgres and load generator CPU per acknowledged bet, µs (with
    /// `--engine-pid`).
    cpu_per_bet_us: Option<(f64, f64, f64)>,
    /// Context switches of the engine's threads per acknowledged bet.
    switches_per_bet: Option<f64>,
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
            cpu_per_bet_us: cpu_per_bet(&v),
            switches_per_bet: switches_per_bet(&v),
        });
    }
    Ok(by)
}

fn cpu_per_bet(v: &Value) -> Option<(f64, f64, f64)> {
    let bets = v["bets_acknowledged"].as_f64().filter(|b| *b > 0.0)?;
    let cpu = &v["cpu"];
    let seconds = cpu["seconds"].as_f64()?;
    let per = |cores: f64| cores * seconds * 1e6 / bets;
    Some((
        per(cpu["engine_cores"].as_f64()?),
        per(cpu["postgres_cores"].as_f64()?),
        per(cpu["generator_cores"].as_f64().unwrap_or(0.0)),
    ))
}

fn switches_per_bet(v: &Value) -> Option<f64> {
    let bets = v["bets_acknowledged"].as_f64().filter(|b| *b > 0.0)?;
    Some(v["cpu"]["engine_switches"].as_f64()? / bets)
}

/// The batches of the ceiling with every trigger and foreign key on
/// (`pgbench-checked-<run>.txt`, beside `pgbench-batch-<run>.txt`): what the database's own
/// checks cost at the same batch size, and the engine against that.
fn checked_batches(s: &mut String, bets: &[Round], pg: &BTreeMap<String, f64>) {
    let rows: Vec<(String, f64, f64, f64)> = bets
        .iter()
        .filter_map(|r| {
            let checked = pg.get(&format!("checked-{}", r.run))? * 100.0;
            let bare = pg.get(&format!("batch-{}", r.run))? * 100.0;
            Some((r.run.clone(), r.bets_per_s, checked, bare))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nThe same batches with every trigger and foreign key on (what the engine's batches run), same rounds:\n"
    );
    let _ = writeln!(
        s,
        "| round | engine bets/s | checked batches bets/s | checked / ceiling | engine / checked |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (run, e, c, b) in &rows {
        let _ = writeln!(
            s,
            "| {run} | {e:.0} | {c:.0} | {:.2}× | {:.2}× |",
            c / b,
            e / c
        );
    }
    let _ = writeln!(
        s,
        "\nMedian: checked batches {:.2}× the ceiling; engine {:.2}× the checked batches.",
        median(rows.iter().map(|r| r.2 / r.3).collect()),
        median(rows.iter().map(|r| r.1 / r.2).collect())
    );
}

/// `ws-compare`: the engine against each baseline its rounds measured (the plain
/// serialize-once broadcaster, tokio-tungstenite, under `broadcaster`; the Node `ws` one
/// under `node_ws`), per round (each measured in it with the same clients) and the medians,
/// with issue 16's targets.
fn ws_compare(s: &mut String, rounds: &[Round]) {
    for (key, what) in [
        (
            "broadcaster",
            "the plain serialize-once broadcaster (tokio-tungstenite)",
        ),
        ("node_ws", "the Node `ws` broadcaster"),
    ] {
        let with: Vec<&Round> = rounds.iter().filter(|r| r.extra[key].is_object()).collect();
        if !with.is_empty() {
            ws_baseline(s, &with, key, what);
        }
    }
}

/// The table and medians of the engine against one baseline (`key` in the rounds' JSON).
fn ws_baseline(s: &mut String, rounds: &[&Round], key: &str, what: &str) {
    let f = |r: &Round, side: &str, k: &str| r.extra[side][k].as_f64().unwrap_or(f64::NAN);
    let _ = writeln!(
        s,
        "\nWebSocket fan-out against {what} (`ws-compare`: the same clients, engine then {key} in each round; engine / {key}):\n"
    );
    let _ = writeln!(
        s,
        "| round | clients | msgs/s at saturation | ratio | p99 ms | peak KiB/conn | server CPU µs/msg | fixed-rate msgs/s | fixed-rate p99 ms | idle KiB/conn |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    let pair =
        |r: &Round, k: &str, d: usize| format!("{:.d$} / {:.d$}", f(r, "engine", k), f(r, key, k));
    let ratio = |r: &Round, k: &str| f(r, "engine", k) / f(r, key, k);
    for r in rounds {
        let _ = writeln!(
            s,
            "| {} | {:.0} / {:.0} | {} | {:.2}× | {} | {} | {} | {} | {} | {} |",
            r.run,
            f(r, "engine", "ready"),
            f(r, key, "ready"),
            pair(r, "delivered_per_s", 0),
            ratio(r, "delivered_per_s"),
            pair(r, "p99_ms", 1),
            pair(r, "peak_kib_per_conn", 1),
            pair(r, "server_us_per_delivered", 2),
            pair(r, "fixed_delivered_per_s", 0),
            pair(r, "fixed_p99_ms", 1),
            pair(r, "idle_kib_per_conn", 1),
        );
    }
    let med = |g: &dyn Fn(&Round) -> f64| median(rounds.iter().map(|r| g(r)).collect());
    let verdict = |ok: bool| if ok { "met" } else { "not met" };
    let throughput = med(&|r| ratio(r, "delivered_per_s"));
    let p99 = med(&|r| ratio(r, "p99_ms"));
    let peak = med(&|r| ratio(r, "peak_kib_per_conn"));
    let fixed = med(&|r| ratio(r, "fixed_p99_ms"));
    let idle = med(&|r| f(r, "engine", "idle_kib_per_conn"));
    let _ = writeln!(
        s,
        "\nMedians (engine / {key}, per round): throughput {throughput:.2}× (target ≥ 3×: {}); p99 at saturation {p99:.2}× (≤ 1×: {}); peak memory per connection {peak:.2}× (≤ 1×: {}); fixed-rate p99 {fixed:.2}× (≤ 1×: {}); engine memory per idle connection {idle:.1} KiB (< 20 KiB: {}).",
        verdict(throughput >= 3.0),
        verdict(p99 <= 1.0),
        verdict(peak <= 1.0),
        verdict(fixed <= 1.0),
        verdict(idle < 20.0),
    );
}

/// One open-loop run: its round, offered bets/s, that as a fraction of the round's
/// closed-loop peak, acknowledged bets/s, p50 and p99 ms.
struct CurvePoint {
    run: String,
    offered: f64,
    fraction: f64,
    acknowledged: f64,
    p50: f64,
    p99: f64,
}

/// The open-loop rounds (`bets-open`), sorted by round and rate. Also
/// writes `curve.svg` into `dir`. Answers the table and the median p99 at half the peak.
fn open_loop_curve(dir: &Path, rounds: &BTreeMap<String, Vec<Round>>) -> Option<String> {
    let open = rounds.get("bets-open")?;
    let peaks: BTreeMap<&str, f64> = rounds
        .get("bets")
        .map(|rs| rs.iter().map(|r| (r.run.as_str(), r.bets_per_s)).collect())
        .unwrap_or_default();
    let mut points: Vec<CurvePoint> = open
        .iter()
        .map(|r| {
            let offered = r.extra["offered_per_s"].as_f64().unwrap_or(f64::NAN);
            let peak = peaks.get(r.run.as_str()).copied().unwrap_or(f64::NAN);
            let m = |k: &str| {
                r.main
                    .as_ref()
                    .and_then(|m| m[k].as_f64())
                    .unwrap_or(f64::NAN)
            };
            CurvePoint {
                run: r.run.clone(),
                offered,
                fraction: offered / peak,
                acknowledged: r.bets_per_s,
                p50: m("p50_ms"),
                p99: m("p99_ms"),
            }
        })
        .collect();
    points.sort_by(|a, b| a.run.cmp(&b.run).then(a.offered.total_cmp(&b.offered)));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nOpen loop (fixed-rate singles; latency from each bet's scheduled time), plot `curve.svg`:\n"
    );
    let _ = writeln!(
        s,
        "| round | offered bets/s | of the round's peak | acknowledged bets/s | p50 ms | p99 ms |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for p in &points {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} |",
            p.run, p.offered, p.fraction, p.acknowledged, p.p50, p.p99
        );
    }
    let half: Vec<f64> = points
        .iter()
        .filter(|p| (p.fraction - 0.5).abs() < 0.05)
        .map(|p| p.p99)
        .collect();
    if !half.is_empty() {
        let _ = writeln!(
            s,
            "\np99 at half the peak: median {:.2} ms ({}) (target < 25 ms, issue 16).",
            median(half.clone()),
            fmt_runs(&half, 2)
        );
    }
    let _ = std::fs::write(dir.join("curve.svg"), curve_svg(&points));
    Some(s)
}

/// Offered rate (x) against p50 and p99 (y, ms), one line pair per round.
fn curve_svg(points: &[CurvePoint]) -> String {
    let (w, h, l, b) = (720.0, 420.0, 70.0, 50.0);
    let finite = |x: &f64| x.is_finite();
    let xmax = points
        .iter()
        .map(|p| p.offered)
        .filter(finite)
        .fold(1.0, f64::max)
        * 1.05;
    let ymax = points
        .iter()
        .flat_map(|p| [p.p50, p.p99])
        .filter(finite)
        .fold(1.0, f64::max)
        * 1.1;
    let x = |v: f64| l + (v / xmax) * (w - l - 20.0);
    let y = |v: f64| (h - b) - (v / ymax) * (h - b - 30.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let _ = writeln!(
        s,
        "<text x=\"{l}\" y=\"18\">Open-loop singles: offered rate against p50 (blue) and p99 (red), one line per round</text>"
    );
    let _ = writeln!(
        s,
        "<line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{l}\" y1=\"30\" x2=\"{l}\" y2=\"{}\" stroke=\"black\"/>",
        h - b,
        w - 20.0,
        h - b,
        h - b
    );
    for i in 0..=5 {
        let (xv, yv) = (xmax * i as f64 / 5.0, ymax * i as f64 / 5.0);
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{xv:.0}</text><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{yv:.1}</text>",
            x(xv),
            h - b + 18.0,
            l - 6.0,
            y(yv) + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">offered bets/s</text><text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">latency ms</text>",
        (l + w) / 2.0,
        h - 12.0,
        h / 2.0,
        h / 2.0
    );
    let mut runs: Vec<&str> = points.iter().map(|p| p.run.as_str()).collect();
    runs.dedup();
    for run in runs {
        for (color, p99) in [("#1f5fbf", false), ("#c0392b", true)] {
            let pts: Vec<String> = points
                .iter()
                .filter(|p| p.run == run)
                .map(|p| (p.offered, if p99 { p.p99 } else { p.p50 }))
                .filter(|(a, v)| a.is_finite() && v.is_finite())
                .map(|(a, v)| format!("{:.1},{:.1}", x(a), y(v)))
                .collect();
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
                pts.join(" ")
            );
            for p in &pts {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    s,
                    "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{color}\"/>"
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "<line x1=\"{l}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#888\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#888\">25 ms</text>",
        y(25.0),
        w - 20.0,
        y(25.0),
        w - 22.0,
        y(25.0) - 3.0
    );
    s.push_str("</svg>\n");
    s
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
    for (scenario, rs) in rounds.iter().filter(|(s, _)| *s != "bets-open") {
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
            "\nMedian ratio engine/baseline: {med:.2}× (target ≥ 5×, issue 16)."
        );
        let cpu: Vec<(f64, f64, f64)> = bets.iter().filter_map(|r| r.cpu_per_bet_us).collect();
        if !cpu.is_empty() {
            let e: Vec<f64> = cpu.iter().map(|c| c.0).collect();
            let p: Vec<f64> = cpu.iter().map(|c| c.1).collect();
            let _ = writeln!(
                s,
                "\nCPU per acknowledged bet (bets): engine {:.0} µs ({}), Postgres {:.0} µs ({}).",
                median(e.clone()),
                fmt_runs(&e, 0),
                median(p.clone()),
                fmt_runs(&p, 0)
            );
            // The generator is the same binary doing the same work per bet in every round,
            // so between rounds of one build its CPU per bet moves with the machine, and
            // dividing by it takes most of a shared machine's drift out. Between two engines
            // it is no yardstick: its own cost per bet falls as the engine answers faster
            // (more answers per wake-up), so it understates the faster engine's gain.
            let by_generator: Vec<(f64, f64)> = cpu
                .iter()
                .filter(|c| c.2 > 0.0)
                .map(|c| (c.0 / c.2, c.1 / c.2))
                .collect();
            if !by_generator.is_empty() {
                let e: Vec<f64> = by_generator.iter().map(|c| c.0).collect();
                let p: Vec<f64> = by_generator.iter().map(|c| c.1).collect();
                let _ = writeln!(
                    s,
                    "\nThe same in units of the load generator's own CPU per bet (steadier \
                     between rounds of one build; not a yardstick between two engines, as the \
                     generator's cost per bet falls when the engine answers faster): \
                     engine {:.2}× ({}), Postgres {:.2}× ({}).",
                    median(e.clone()),
                    fmt_runs(&e, 2),
                    median(p.clone()),
                    fmt_runs(&p, 2)
                );
            }
        }
        let switches: Vec<f64> = bets.iter().filter_map(|r| r.switches_per_bet).collect();
        if !switches.is_empty() {
            let _ = writeln!(
                s,
                "\nContext switches of the engine's threads per acknowledged bet (bets): {:.2} ({}).",
                median(switches.clone()),
                fmt_runs(&switches, 2)
            );
        }
        // pgbench-batch-<run>.txt: 100 bets per transaction, so bets/s = tps × 100.
        let ceiling: Vec<(String, f64, f64)> = bets
            .iter()
            .filter_map(|r| {
                pg.get(&format!("batch-{}", r.run))
                    .map(|tps| (r.run.clone(), r.bets_per_s, tps * 100.0))
            })
            .collect();
        if !ceiling.is_empty() {
            let _ = writeln!(
                s,
                "\nBatched ceiling (pgbench, 100 bets per transaction, no triggers), same rounds:\n"
            );
            let _ = writeln!(s, "| round | engine bets/s | ceiling bets/s | ratio |");
            let _ = writeln!(s, "|---|---|---|---|");
            for (run, e, c) in &ceiling {
                let _ = writeln!(s, "| {run} | {e:.0} | {c:.0} | {:.2}× |", e / c);
            }
            let med = median(ceiling.iter().map(|r| r.1 / r.2).collect());
            let _ = writeln!(
                s,
                "\nMedian ratio engine/ceiling: {med:.2}× (target ≥ 0.5×, issue 16)."
            );
        }
        checked_batches(&mut s, bets, &pg);
    }
    if let Some(rs) = rounds.get("ws-compare") {
        ws_compare(&mut s, rs);
    }
    if let Some(curve) = open_loop_curve(dir, &rounds) {
        s.push_str(&curve);
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

#[cfg(test)]
mod tests {
    use super::{main_op, summarize};

    /// The summary of a results folder holding `files` (name, content).
    fn summary_of(label: &str, files: &[(String, String)]) -> String {
        let dir =
            std::env::temp_dir().join(format!("winzo-summary-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let text = summarize(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        text
    }

    #[test]
    fn the_open_loop_rounds_report_the_singles_latency() {
        assert_eq!(main_op("bets-open"), "single");
        assert_eq!(main_op("bets"), "single");
    }

    #[test]
    fn a_round_reports_the_checked_batches_and_the_switches_per_bet() {
        let round = serde_json::json!({
            "scenario": "bets", "status": "PASSED", "errors_total": 0,
            "bets_acknowledged": 1000,
            "ops": [{"op": "single", "per_s": 2000.0, "p50_ms": 1.0, "p95_ms": 2.0,
                     "p99_ms": 3.0, "max_ms": 4.0}],
            "cpu": {"seconds": 1.0, "engine_cores": 0.2, "postgres_cores": 0.3,
                    "generator_cores": 0.1, "engine_switches": 1500}
        });
        let mut files = vec![(
            "20261207-000000-bets-run1.json".to_string(),
            round.to_string(),
        )];
        for (file, tps) in [
            ("run1", 500.0),
            ("batch-run1", 200.0),
            ("checked-run1", 80.0),
        ] {
            files.push((
                format!("pgbench-{file}.txt"),
                format!("number of transactions actually processed: 1\ntps = {tps} (without initial connection time)\n"),
            ));
        }
        let text = summary_of("bets", &files);
        // 8,000 checked bets/s against a 20,000 ceiling; the engine's 2,000 is 0.25x of it.
        assert!(
            text.contains("| run1 | 2000 | 8000 | 0.40× | 0.25× |"),
            "{text}"
        );
        assert!(
            text.contains("per acknowledged bet (bets): 1.50 (1.50)"),
            "{text}"
        );
        // 200 and 300 µs of engine and Postgres against the generator's 100.
        assert!(
            text.contains("answers faster): engine 2.00× (2.00), Postgres 3.00× (3.00)"),
            "{text}"
        );
    }

    #[test]
    fn a_ws_compare_round_reports_the_ratios_against_each_broadcaster() {
        let side = |per_s: f64, p99: f64, peak: f64, fixed_p99: f64, idle: f64| {
            serde_json::json!({"ready": 10000, "delivered_per_s": per_s, "p99_ms": p99,
                "peak_kib_per_conn": peak, "fixed_delivered_per_s": 400000.0,
                "fixed_p99_ms": fixed_p99, "idle_kib_per_conn": idle,
                "server_us_per_delivered": 1.5})
        };
        let round = serde_json::json!({
            "scenario": "ws-compare", "status": "PASSED", "errors_total": 0,
            "ops": [{"op": "ws_engine_saturation", "per_s": 1.0, "p50_ms": 100.0,
                     "p95_ms": 200.0, "p99_ms": 300.0, "max_ms": 400.0}],
            "extra": {"engine": side(300000.0, 300.0, 30.0, 80.0, 17.5),
                      "broadcaster": side(100000.0, 250.0, 12.0, 100.0, 8.0),
                      "node_ws": side(150000.0, 600.0, 15.0, 40.0, 9.0)}
        });
        let text = summary_of(
            "ws",
            &[(
                "20261207-000000-ws-compare-run1.json".to_string(),
                round.to_string(),
            )],
        );
        assert!(
            text.contains("| run1 | 10000 / 10000 | 300000 / 100000 | 3.00× | 300.0 / 250.0 | 30.0 / 12.0 | 1.50 / 1.50 | 400000 / 400000 | 80.0 / 100.0 | 17.5 / 8.0 |"),
            "{text}"
        );
        assert!(
            text.contains("Medians (engine / broadcaster, per round): throughput 3.00× (target ≥ 3×: met); p99 at saturation 1.20× (≤ 1×: not met); peak memory per connection 2.50× (≤ 1×: not met); fixed-rate p99 0.80× (≤ 1×: met); engine memory per idle connection 17.5 KiB (< 20 KiB: met)"),
            "{text}"
        );
        // The second baseline: a table and medians of its own.
        assert!(text.contains("against the Node `ws` broadcaster"), "{text}");
        assert!(
            text.contains(
                "| run1 | 10000 / 10000 | 300000 / 150000 | 2.00× | 300.0 / 600.0 | 30.0 / 15.0 |"
            ),
            "{text}"
        );
        assert!(
            text.contains("Medians (engine / node_ws, per round): throughput 2.00× (target ≥ 3×: not met); p99 at saturation 0.50× (≤ 1×: met); peak memory per connection 2.00× (≤ 1×: not met); fixed-rate p99 2.00× (≤ 1×: not met)"),
            "{text}"
        );
    }
}
