//! Smoke runs of every scenario with tiny numbers (seconds), so the load tool cannot rot:
//! the real `target/debug/winzo serve` (built by `make test` before the tests) against a
//! fresh database cloned from the test template and seeded with `winzo seed-demo` (demo
//! sports, trader/trader-password-1), then each scenario through the library; every run must be PASSED
//! (check-ledger clean, every acknowledged bet in Postgres) with no errors.
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use tokio_postgres::NoTls;
use uuid::Uuid;
use winzo_load::{run_scenario, Opts, Scenario};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn winzo_bin() -> PathBuf {
    repo().join("target/debug/winzo")
}

/// A running engine on its own database; killed (by its pid) when dropped.
struct Engine {
    child: Child,
    url: String,
    db_url: String,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn fresh_database() -> String {
    let settings = winzo::config::load_for("test").expect("config/test.toml");
    let admin_url = settings
        .database
        .admin_url
        .clone()
        .expect("database.admin_url");
    let template = std::env::var("WINZO__DATABASE__TEMPLATE")
        .ok()
        .or(settings.database.template.clone())
        .expect("database.template");
    let (admin, conn) = tokio_postgres::connect(&admin_url, NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(conn);
    let name = format!("t_{}", Uuid::new_v4().simple());
    let mut tries = 0;
    while let Err(e) = admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .await
    {
        tries += 1;
        assert!(tries < 50, "cloning {template}: {e}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (base, _) = admin_url.rsplit_once('/').expect("url path");
    format!("{base}/{name}")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_engine() -> Engine {
    let db_url = fresh_database().await;
    // The demo catalogue (sports for feed fixtures) and trader/trader-password-1.
    let seeded = Command::new(winzo_bin())
        .arg("seed-demo")
        .current_dir(repo())
        .env("WINZO_ENV", "test")
        .env("DATABASE_URL", &db_url)
        .stdout(Stdio::null())
        .status()
        .expect("winzo seed-demo");
    assert!(seeded.success(), "seed-demo failed");
    let port = free_port();
    let child = Command::new(winzo_bin())
        .arg("serve")
        .current_dir(repo())
        .env("WINZO_ENV", "test")
        .env("DATABASE_URL", &db_url)
        .env("WINZO__SERVER__PORT", port.to_string())
        .env("WINZO__DATABASE__MIGRATE_ON_START", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("target/debug/winzo (cargo build --bins first)");
    Engine {
        child,
        url: format!("http://127.0.0.1:{port}"),
        db_url,
    }
}

fn tiny(engine: &Engine, scenario: &str) -> Opts {
    let mut o = Opts::with_scenarios(&[scenario]);
    o.url = engine.url.clone();
    o.trader_login = "trader".into();
    o.trader_password = "trader-password-1".into();
    o.bettors = 3;
    o.funds = "1000.00".into();
    o.markets = 6;
    o.markets_per_event = 2;
    o.concurrency = 4;
    o.duration_s = 2;
    o.max_ops = Some(40);
    o.database_url = Some(engine.db_url.clone());
    o.winzo_bin = winzo_bin();
    o.winzo_env = "test".into();
    o.results_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("load-smoke");
    o.subscribers = 5;
    o.bet_delay_ms = 50;
    o.price_moves_per_s = 20;
    o.goal_every_s = 1;
    o.bet_stop_ms = 200;
    o.quiet = true;
    o.engine_pid = Some(engine.child.id());
    // The provider of config/default.toml (a development/test secret).
    o.feed_providers = vec![("demo".into(), "dev-only-demo-feed-secret".into())];
    o.feed_events_per_provider = 4;
    o.feed_sport = "football".into();
    o
}

async fn passes(
    opts: &Opts,
    scenario: Scenario,
    needs_bets: bool,
) -> winzo_load::report::RunReport {
    let r = run_scenario(opts, scenario)
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", scenario.name()));
    let md = winzo_load::report::markdown(&r);
    assert_eq!(r.status, "PASSED", "{md}\n{}", r.verdict.ledger_output);
    assert_eq!(r.errors_total, 0, "{md}");
    if needs_bets {
        assert!(r.bets_acknowledged > 0, "no bet accepted:\n{md}");
    }
    assert!(r.engine_peak_kb.is_some_and(|kb| kb > 0), "{md}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bet_scenarios_run_and_leave_a_clean_ledger() {
    let engine = start_engine().await;
    for (name, s) in [
        ("bets", Scenario::Bets),
        ("parlays", Scenario::Parlays),
        ("inplay", Scenario::InPlay),
        ("match-day", Scenario::MatchDay),
    ] {
        passes(&tiny(&engine, name), s, true).await;
    }
    // The open loop: singles at a fixed rate, reported as bets-open, and the summary's
    // curve (table and plot) over the folder.
    let mut open = tiny(&engine, "bets");
    open.rate = Some(20.0);
    open.max_ops = None;
    let r = passes(&open, Scenario::Bets, true).await;
    assert_eq!(r.scenario, "bets-open");
    assert_eq!(r.extra["offered_per_s"].as_f64(), Some(20.0));
    let summary = winzo_load::summary::summarize(&open.results_dir).expect("summary");
    assert!(summary.contains("Open loop"), "{summary}");
    assert!(open.results_dir.join("curve.svg").exists());
    let out = std::fs::read_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("load-smoke"))
        .expect("results written")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "svg"))
        .count();
    assert!(out >= 4, "an SVG plot per run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_moving_prices_to_every_subscriber() {
    let engine = start_engine().await;
    let r = passes(&tiny(&engine, "fanout"), Scenario::Fanout, false).await;
    let md = winzo_load::report::markdown(&r);
    assert_eq!(r.extra["ready"], 5, "{md}");
    assert!(r.extra["delivered"].as_u64().unwrap_or(0) >= 5, "{md}");
    assert!(
        r.ops.iter().any(|o| o.op == "ws_odds_delivery" && o.ok > 0),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_storm_pushes_are_applied() {
    let engine = start_engine().await;
    let r = passes(&tiny(&engine, "feed-storm"), Scenario::FeedStorm, false).await;
    let md = winzo_load::report::markdown(&r);
    assert!(
        r.extra["messages_applied"].as_u64().unwrap_or(0) > 0,
        "{md}"
    );
    assert_eq!(r.extra["gaps"], 0, "{md}");
}
