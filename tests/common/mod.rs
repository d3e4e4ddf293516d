//! Integration-test harness: a fresh database per test cloned from the migrated template,
//! and the real engine started on port 0 against it (the spawn_app pattern).
#![allow(dead_code)]

pub mod engine;
pub mod fixtures;
pub mod netcut;
pub mod pgcluster;
pub mod property;

use std::future::Future;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};
use uuid::Uuid;
use winzo::config::Settings;
use winzo::startup::Application;

/// How often [`wait_until`] asks again.
pub const POLL: Duration = Duration::from_millis(20);

/// Waits for an observable condition instead of a guessed pause: asks `check` (a database
/// read, an HTTP call, a look at a socket...) every [`POLL`] until it answers true, and
/// fails the test naming `what` once `deadline` has passed without it. A panic inside
/// `check` (an assert on what it saw) fails the test at once.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_until_every(what, deadline, POLL, check).await
}

/// [`wait_until`] asking every `every` instead: for a check that acts as well as looks
/// (a client retrying, an attacker replaying), whose pace is part of what is tested.
pub async fn wait_until_every<F, Fut>(what: &str, deadline: Duration, every: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Test settings: `config/test.toml` (services of the `test` profile).
pub fn test_settings() -> Settings {
    winzo::config::load_for("test").expect("config/test.toml loads")
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("database url has a path");
    format!("{base}/{db}")
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("connecting to {url}: {e} (run `make test`, which starts the test services)")
        });
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A fresh, migrated database for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub client: Client,
}

impl TestDb {
    pub async fn new() -> TestDb {
        TestDb::create(true).await
    }

    /// An empty database (no migration applied), for tests that migrate it themselves.
    pub async fn empty() -> TestDb {
        TestDb::create(false).await
    }

    async fn create(from_template: bool) -> TestDb {
        let settings = test_settings();
        let admin_url = settings
            .database
            .admin_url
            .clone()
            .expect("database.admin_url");
        let template = settings
            .database
            .template
            .clone()
            .expect("database.template");
        let name = format!("t_{}", Uuid::new_v4().simple());
        let admin = connect(&admin_url).await;
        // Cloning needs the template to be idle; retry briefly if another test is cloning it.
        let sql = if from_template {
            format!("CREATE DATABASE {name} TEMPLATE {template}")
        } else {
            format!("CREATE DATABASE {name}")
        };
        let mut attempts = 0;
        loop {
            match admin.batch_execute(&sql).await {
                Ok(()) => break,
                Err(e) if attempts < 50 => {
                    attempts += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("creating {name} from {template}: {e}"),
            }
        }
        let url = replace_db(&admin_url, &name);
        let client = connect(&url).await;
        TestDb { name, url, client }
    }
}

/// The real engine running in its own thread (its own actix system), on a free port.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db: TestDb,
    pub http: reqwest::Client,
    pub settings: Settings,
    handle: actix_web::dev::ServerHandle,
}

/// Starts the engine against a fresh database with the test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], letting the test adjust settings first (short delays, limits).
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new().await;
    start_on(db, adjust).await
}

/// A second engine on the database of an earlier one (a restart): live state is
/// recovered from Postgres.
pub async fn spawn_app_on(db: &TestDb) -> TestApp {
    let client = connect(&db.url).await;
    let db = TestDb {
        name: db.name.clone(),
        url: db.url.clone(),
        client,
    };
    start_on(db, |_| {}).await
}

/// The engine against any database URL (e.g. a private cluster), with adjusted settings.
pub async fn spawn_app_at(url: &str, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let client = connect(url).await;
    let db = TestDb {
        name: String::new(),
        url: url.to_string(),
        client,
    };
    start_on(db, adjust).await
}

async fn start_on(db: TestDb, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    settings.database.url = db.url.clone();
    settings.database.migrate_on_start = false;
    settings.server.port = 0;
    settings.bridge.channel_prefix = bridge_prefix(&db.url);
    adjust(&mut settings);
    let app_settings = settings.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            match Application::build(app_settings).await {
                Ok(app) => {
                    let _ = tx.send(Ok((app.port(), app.handle())));
                    let _ = app.run_until_stopped().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("{e:#}")));
                }
            }
        });
    });
    let (port, handle) =
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .expect("join")
            .expect("engine started in time")
            .unwrap_or_else(|e| panic!("engine failed to start: {e}"));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        db,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        settings,
        handle,
    }
}

/// The Redis channel prefix of the topic bridge for engines on `db_url`: engines of one
/// test (a restart, several nodes) share their topics, tests running at once on the same
/// Redis never see each other's messages (e.g. the staff `trading` topic's bets).
pub fn bridge_prefix(db_url: &str) -> String {
    let path = db_url.split('?').next().unwrap_or(db_url);
    let db = path.rsplit('/').next().unwrap_or(path);
    format!("winzo:test:{db}:topic:")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// The value of the first `/metrics` line starting with `line_start` (metric name and
/// labels, e.g. `winzo_bets_total{channel="rest",outcome="accepted"} `), 0 when absent.
pub async fn metric(app: &TestApp, line_start: &str) -> u64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .map_or(0, |v| v.trim().parse().expect("an integer counter"))
}
