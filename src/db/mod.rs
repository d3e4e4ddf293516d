//! Postgres access: the connection pool, migrations, and (in submodules) every SQL
//! statement the engine runs. Nothing user-supplied is ever formatted into SQL.
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::NoTls;

pub mod audit;
pub mod bet_answer;
pub mod bets;
pub mod cashout;
pub mod catalogue;

pub mod feed;
pub mod health;
pub mod kyc;
pub mod ledger;
pub mod maintenance;
pub mod markets;
pub mod settlement;
pub mod snapshot;
pub mod stakes;
pub mod users;
pub mod wallet;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Advisory-lock key that serializes migrations across engine nodes starting at once.
const MIGRATION_LOCK_KEY: i64 = 0x5749_4e5a_4f00_0001;

/// Builds the pool. Connections are opened lazily, so this never fails on a down database.
pub fn build_pool(settings: &DatabaseSettings) -> anyhow::Result<Pool> {
    let mut pg = tokio_postgres::Config::from_str(&settings.url).context("database.url")?;
    pg.connect_timeout(Duration::from_millis(settings.connect_timeout_ms));
    pg.application_name("winzo");
    pg.options(format!(
        "-c statement_timeout={} -c synchronous_commit=on",
        settings.statement_timeout_ms
    ));
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let wait = Some(Duration::from_millis(settings.pool_wait_timeout_ms));
    Pool::builder(manager)
        .max_size(settings.pool_max_size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait,
            create: Some(Duration::from_millis(settings.connect_timeout_ms)),
            recycle: Some(Duration::from_millis(settings.connect_timeout_ms)),
        })
        .build()
        .context("building the database pool")
}

/// Waits until Postgres answers, logging each failed attempt; gives up after the
/// configured number of retries with a clear error instead of panicking.
pub async fn wait_until_reachable(pool: &Pool, settings: &DatabaseSettings) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        match ping(pool).await {
            Ok(()) => return Ok(()),
            Err(err) => {
                attempt += 1;
                if attempt > settings.startup_retries_max {
                    return Err(err.context("Postgres unreachable; giving up"));
                }
                tracing::warn!(attempt, error = %format!("{err:#}"), "Postgres unreachable; retrying");
                tokio::time::sleep(Duration::from_millis(settings.startup_retry_interval_ms)).await;
            }
        }
    }
}

/// One cheap round trip: the readiness probe.
pub async fn ping(pool: &Pool) -> anyhow::Result<()> {
    let client = pool.get().await.context("getting a connection")?;
    client.simple_query("SELECT 1").await.context("SELECT 1")?;
    Ok(())
}

/// Applies every pending migration on a dedicated connection, under an advisory lock so
/// concurrent nodes do not race. Each migration runs in its own transaction, so a
/// failed one leaves the database as it was; applied ones are skipped.
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    migrate_to(url, None).await
}

/// [`migrate`], stopping after migration `target` when given (tests use it to build a
/// database as an older engine left it, then migrate the rest of the way).
pub async fn migrate_to(url: &str, target: Option<u32>) -> anyhow::Result<usize> {
    let (mut client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .context("connecting for migrations")?;
    let conn_task = tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(error = %err, "migration connection closed");
        }
    });
    // The runner creates its history table with IF NOT EXISTS: no NOTICE at every start.
    client
        .batch_execute("SET client_min_messages TO warning")
        .await
        .context("quieting migration notices")?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .context("taking the migration lock")?;
    let target = match target {
        Some(v) => refinery::Target::Version(v),
        None => refinery::Target::Latest,
    };
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .set_target(target)
        .run_async(&mut client)
        .await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    drop(client);
    conn_task.abort();
    let report = report.context("running migrations")?;
    unlock.context("releasing the migration lock")?;
    for m in report.applied_migrations() {
        tracing::info!(version = m.version(), name = m.name(), "migration applied");
    }
    Ok(report.applied_migrations().len())
}

/// Waits (at most `wait`) until no engine transaction that began before this call is
/// still running. After a crash, a batch whose COMMIT reached Postgres just before the
/// old process died may still be finishing; recovery must read after it, or the live
/// state would miss bets that are in fact committed. Transactions of other live nodes
/// that start later are not waited for.
pub async fn wait_for_older_transactions(pool: &Pool, wait: Duration) -> anyhow::Result<()> {
    let client = pool.get().await.context("getting a connection")?;
    let deadline = tokio::time::Instant::now() + wait;
    let started: chrono::DateTime<chrono::Utc> = client
        .query_one("SELECT clock_timestamp()", &[])
        .await?
        .get(0);
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = 'winzo' AND pid <> pg_backend_pid()
                   AND xact_start IS NOT NULL AND xact_start < $1",
                &[&started],
            )
            .await?
            .get(0);
        if n == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                transactions = n,
                "older transactions still running; recovering anyway"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    /// Maintenance database used by tests to create per-test databases.
    #[serde(default)]
    pub admin_url: Option<String>,
    /// Template database that per-test databases are cloned from.
    #[serde(default)]
    pub template: Option<String>,
    pub pool_max_size: usize,
    /// A request waiting longer than this for a pooled connection fails with 503.
    pub pool_wait_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub startup_retry_interval_ms: u64,
    pub startup_retries_max: u32,
    pub migrate_on_start: bool,
}

/// A database failure as one line: the driver's text and, for an error from Postgres, its
/// message (the driver's own text is only "db error").
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => e.to_string(),
    }
}

/// `From` the pool's and the driver's errors for an error enum with a `Db(String)` variant
/// (the services' errors: a database failure is the engine's, the caller may retry).
#[macro_export]
macro_rules! db_error_from {
    ($t:ty) => {
        impl From<deadpool_postgres::PoolError> for $t {
            fn from(e: deadpool_postgres::PoolError) -> Self {
                Self::Db(e.to_string())
            }
        }

        impl From<tokio_postgres::Error> for $t {
            fn from(e: tokio_postgres::Error) -> Self {
                Self::Db($crate::db::describe(&e))
            }
        }
    };
}
