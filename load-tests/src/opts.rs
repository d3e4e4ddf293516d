//! Settings of a load run (command-line flags of `winzo-load`; the smoke tests fill the
//! struct directly with tiny numbers).
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "winzo-load",
    about = "Load scenarios against a running Winzo engine"
)]
pub struct Opts {
    /// Scenarios to run in order: bets, parlays, inplay, fanout, feed-storm, match-day,
    /// cash-out, ws-compare.
    #[arg(required = true)]
    pub scenarios: Vec<String>,
    /// The engine's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A moderator or admin account (`winzo seed-demo` creates trader/trader-password-1).
    #[arg(long, default_value = "trader")]
    pub trader_login: String,
    #[arg(
        long,
        env = "WINZO_LOAD_TRADER_PASSWORD",
        default_value = "trader-password-1"
    )]
    pub trader_password: String,
    /// Bettors registered, logged in and funded per scenario.
    #[arg(long, default_value_t = 100)]
    pub bettors: usize,
    /// Funds deposited per bettor (money string).
    #[arg(long, default_value = "20000.00")]
    pub funds: String,
    /// Markets created (2 selections each) for the pre-match scenarios.
    #[arg(long, default_value_t = 1000)]
    pub markets: usize,
    #[arg(long, default_value_t = 10)]
    pub markets_per_event: usize,
    /// Concurrent bet senders.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Open loop (bets only): send this many bets per second at fixed times whatever the
    /// answers, each latency counted from the bet's scheduled time (no coordinated
    /// omission). The report's scenario is then `bets-open`.
    #[arg(long)]
    pub rate: Option<f64>,
    /// `bets` (closed loop): `rest` sends each bet as `POST /api/v1/bets`; `ws` as a
    /// `place_bet` on one WebSocket per sender (authenticated as one bettor each), the
    /// same bet path without an HTTP request per bet.
    #[arg(long, default_value = "rest", value_parser = ["rest", "ws"])]
    pub channel: String,
    /// Open loop: bets in flight at most; a bet due while this many wait is counted as the
    /// error `generator_saturated` instead of being sent late.
    #[arg(long, default_value_t = 20_000)]
    pub inflight_max: usize,
    /// How long each scenario's load phase lasts.
    #[arg(long, default_value_t = 20)]
    pub duration_s: u64,
    /// Stop a scenario after this many operations (whichever comes first).
    #[arg(long)]
    pub max_ops: Option<u64>,
    /// Postgres of the engine, for the acknowledged-bets check (and `check-ledger`).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The `winzo` binary that runs `check-ledger`.
    #[arg(long, default_value = "target/release/winzo")]
    pub winzo_bin: PathBuf,
    /// `WINZO_ENV` for `check-ledger` (its configuration profile).
    #[arg(long, default_value = "development")]
    pub winzo_env: String,
    #[arg(long, default_value = "load-tests/results")]
    pub results_dir: PathBuf,
    /// The engine's process id: its peak memory (VmHWM) and RSS go into the report.
    #[arg(long)]
    pub engine_pid: Option<u32>,
    /// WebSocket subscribers (fanout, match-day).
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// ws-compare: the plain serialize-once broadcaster's base URL (`plain_broadcaster`,
    /// tokio-tungstenite).
    #[arg(long)]
    pub broadcaster_url: Option<String>,
    /// ws-compare: the broadcaster's process id (its memory).
    #[arg(long)]
    pub broadcaster_pid: Option<u32>,
    /// ws-compare: the Node `ws` broadcaster's base URL (load-tests/node-broadcaster), a
    /// second baseline measured after the first.
    #[arg(long)]
    pub node_broadcaster_url: Option<String>,
    /// ws-compare: the Node broadcaster's process id (its memory).
    #[arg(long)]
    pub node_broadcaster_pid: Option<u32>,
    /// ws-compare: markets of the event the clients subscribe to (1 to 9).
    #[arg(long, default_value_t = 8)]
    pub compare_markets: usize,
    /// ws-compare: moves per second of each market in the fixed-rate phase.
    #[arg(long, default_value_t = 5)]
    pub fixed_moves_per_s: u64,
    /// Bet delay set on in-play markets (inplay, match-day).
    #[arg(long, default_value_t = 1000)]
    pub bet_delay_ms: u64,
    /// Price updates per second by the price mover (inplay, fanout, match-day).
    #[arg(long, default_value_t = 50)]
    pub price_moves_per_s: u64,
    /// A bet stop (suspend, new prices, resume) this often (inplay, match-day).
    #[arg(long, default_value_t = 10)]
    pub goal_every_s: u64,
    /// How long a bet stop lasts.
    #[arg(long, default_value_t = 2000)]
    pub bet_stop_ms: u64,
    /// Feed providers pushing at once (feed-storm); ids and secrets from `--feed-provider`.
    #[arg(long = "feed-provider", value_parser = parse_provider)]
    pub feed_providers: Vec<(String, String)>,
    /// Events per feed provider (feed-storm).
    #[arg(long, default_value_t = 20)]
    pub feed_events_per_provider: usize,
    /// Sport slug used by feed fixtures (must exist: `winzo seed-demo` makes football).
    #[arg(long, default_value = "football")]
    pub feed_sport: String,
    /// Request timeout.
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// A label added to the result files' names.
    #[arg(long, default_value = "")]
    pub tag: String,
}

fn parse_provider(s: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| "expected <provider id>:<secret>".to_string())
}

impl Opts {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_s)
    }

    /// Defaults with the given scenarios (what `winzo-load <scenarios>` would use).
    pub fn with_scenarios(scenarios: &[&str]) -> Opts {
        use clap::Parser;
        let mut args = vec!["winzo-load".to_string()];
        args.extend(scenarios.iter().map(|s| s.to_string()));
        Opts::parse_from(args)
    }
}
