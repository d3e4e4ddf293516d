//! CPU time used during a load phase by the engine (`--engine-pid`), by Postgres (every
//! process of the cluster behind `--database-url`, found in `pg_stat_activity`, which lists
//! backends and background workers alike) and by this generator, read from `/proc`.
//!
//! On a shared machine this is what says where the cores went: per accepted operation, how
//! many microseconds of engine, database and generator CPU it took. Linux only; `None` where
//! a figure cannot be read.
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::Opts;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on every Linux this runs on).
const TICKS_PER_S: f64 = 100.0;

struct Sample {
    at: Instant,
    engine: Option<u64>,
    engine_switches: Option<u64>,
    postgres: Vec<(u32, u64)>,
    generator: u64,
}

static START: Mutex<Option<Sample>> = Mutex::new(None);

/// Cores used on average over the phase.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    pub seconds: f64,
    pub engine_cores: Option<f64>,
    pub postgres_cores: Option<f64>,
    pub generator_cores: f64,
    /// Context switches of the engine's threads (voluntary and not) over the phase: how
    /// often a thread gave up its core, mostly to wait for another thread's answer.
    pub engine_switches: Option<u64>,
}

impl CpuUse {
    /// Microseconds of CPU per operation: (engine, Postgres, generator).
    pub fn per_op_us(&self, ops: u64) -> (Option<f64>, Option<f64>, f64) {
        let per = |cores: f64| cores * self.seconds * 1e6 / ops.max(1) as f64;
        (
            self.engine_cores.map(per),
            self.postgres_cores.map(per),
            per(self.generator_cores),
        )
    }
}

/// utime + stime of a process, in ticks (1/100 s).
pub fn ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // state is field 3 overall, so utime (14) and stime (15) are at 11 and 12 here.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Context switches of every thread of a process so far (voluntary and involuntary, from
/// `/proc/<pid>/task/*/status`); threads that ended before are not counted.
pub fn switches(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        total += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Some(total)
}

async fn postgres_pids(opts: &Opts) -> Vec<u32> {
    let Some(url) = &opts.database_url else {
        return Vec::new();
    };
    let Ok((client, conn)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else {
        return Vec::new();
    };
    let task = tokio::spawn(conn);
    let pids = client
        .query("SELECT pid FROM pg_stat_activity", &[])
        .await
        .map(|rows| rows.iter().map(|r| r.get::<_, i32>(0) as u32).collect())
        .unwrap_or_default();
    drop(client);
    task.abort();
    pids
}

async fn sample(opts: &Opts) -> Sample {
    let postgres = postgres_pids(opts)
        .await
        .into_iter()
        .filter_map(|p| ticks(p).map(|t| (p, t)))
        .collect();
    Sample {
        at: Instant::now(),
        engine: opts.engine_pid.and_then(ticks),
        engine_switches: opts.engine_pid.and_then(switches),
        postgres,
        generator: ticks(std::process::id()).unwrap_or(0),
    }
}

/// Takes the phase's first sample (in the background: the phase starts at once).
pub fn begin(opts: &Opts) {
    let opts = opts.clone();
    tokio::spawn(async move {
        let s = sample(&opts).await;
        *START.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
    });
}

/// CPU used since [`begin`] (None if no phase began).
pub async fn end(opts: &Opts) -> Option<CpuUse> {
    let start = START.lock().unwrap_or_else(|p| p.into_inner()).take()?;
    let now = sample(opts).await;
    let seconds = now.at.duration_since(start.at).as_secs_f64();
    if seconds <= 0.0 {
        return None;
    }
    let cores = |ticks: u64| ticks as f64 / TICKS_PER_S / seconds;
    // Processes of the cluster present at both samples (pooled connections, background
    // workers); one that came or went in between is counted from its part only.
    let mut pg: u64 = 0;
    for (pid, t1) in &now.postgres {
        let t0 = start
            .postgres
            .iter()
            .find(|(p, _)| p == pid)
            .map_or(0, |(_, t)| *t);
        pg += t1.saturating_sub(t0);
    }
    Some(CpuUse {
        seconds,
        engine_cores: match (start.engine, now.engine) {
            (Some(a), Some(b)) => Some(cores(b.saturating_sub(a))),
            _ => None,
        },
        postgres_cores: (!now.postgres.is_empty()).then(|| cores(pg)),
        generator_cores: cores(now.generator.saturating_sub(start.generator)),
        engine_switches: match (start.engine_switches, now.engine_switches) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
    })
}
