//! Operations that run on a timer inside the engine: the daily maintenance (once per day
//! across all nodes, under a Postgres advisory lock) and the refresh of the database
//! gauges of `/metrics`.
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, NaiveTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use serde_json::json;

use crate::db::maintenance as sql;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::metrics::Metrics;

/// What one VACUUM step did.
#[derive(Debug, Clone, Serialize)]
pub struct VacuumStep {
    pub table: String,
    /// For a partitioned table, the partitions vacuumed (the recent months and the default
    /// partition); empty for a plain table.
    pub partitions: Vec<String>,
    pub duration_ms: u64,
}

/// What pg_partman's maintenance changed in one partitioned table.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionStep {
    pub table: String,
    /// Partitions that appeared (months ahead).
    pub created: Vec<String>,
    /// Partitions that left the table under its retention (detached, or dropped when so
    /// configured).
    pub detached: Vec<String>,
    /// How many partitions the table has now (the default one included).
    pub attached: usize,
}

/// What a maintenance run did; also written to `system_events.details`.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceSummary {
    pub partitions: Vec<PartitionStep>,
    pub vacuumed: Vec<VacuumStep>,
    /// The jsonb returned by `daily_maintenance()` (rows deleted, tables analyzed).
    pub daily_maintenance: serde_json::Value,
    pub duration_ms: u64,
}

/// The result of [`run_maintenance_once`].
#[derive(Debug, Clone)]
pub enum MaintenanceOutcome {
    Ran(MaintenanceSummary),
    /// Another session (another node) holds the maintenance lock; nothing was done.
    Skipped,
}

/// Runs the daily maintenance now unless another session is running it: takes the advisory
/// lock with `pg_try_advisory_lock`, has pg_partman create the months ahead and apply the
/// configured retention, vacuums and analyzes the hot tables (a partitioned one through its
/// recent partitions) one statement at a time, calls `daily_maintenance()`, records the
/// outcome in `system_events`, unlocks.
/// The connection is then dropped rather than returned to the pool, so its session settings
/// (and the lock, should the unlock have failed) cannot leak into other work.
pub async fn run_maintenance_once(
    pool: &Pool,
    settings: &MaintenanceSettings,
) -> anyhow::Result<MaintenanceOutcome> {
    let client = pool.get().await.context("getting a connection")?;
    if !sql::try_lock(&client).await.context("maintenance lock")? {
        tracing::info!("daily maintenance skipped: another node holds the lock");
        return Ok(MaintenanceOutcome::Skipped);
    }
    let result = run_locked(&client, settings).await;
    let (severity, message, details) = match &result {
        Ok(summary) => (
            "info",
            "daily maintenance done".to_string(),
            serde_json::to_value(summary).unwrap_or_else(|_| json!({})),
        ),
        Err(err) => (
            "error",
            "daily maintenance failed".to_string(),
            json!({"error": format!("{err:#}")}),
        ),
    };
    if let Err(err) = sql::record_event(&client, severity, &message, &details).await {
        tracing::warn!(error = %err, "recording the maintenance run in system_events");
    }
    if let Err(err) = sql::unlock(&client).await {
        tracing::warn!(error = %err, "releasing the maintenance lock (the session closes anyway)");
    }
    drop(deadpool_postgres::Object::take(client));
    match result {
        Ok(summary) => {
            tracing::info!(summary = %details, "daily maintenance done");
            Ok(MaintenanceOutcome::Ran(summary))
        }
        Err(err) => Err(err),
    }
}

async fn run_locked(
    client: &tokio_postgres::Client,
    settings: &MaintenanceSettings,
) -> anyhow::Result<MaintenanceSummary> {
    let started = Instant::now();
    sql::set_statement_timeout(client, settings.statement_timeout_ms).await?;
    let partitions = keep_partitions(client, &settings.partitions).await?;
    let mut vacuumed = Vec::with_capacity(sql::HOT_TABLES.len());
    for table in sql::HOT_TABLES {
        let t = Instant::now();
        let parts = sql::vacuum_analyze(client, table)
            .await
            .with_context(|| format!("VACUUM (ANALYZE) {table}"))?;
        vacuumed.push(VacuumStep {
            table: table.to_string(),
            partitions: parts,
            duration_ms: t.elapsed().as_millis() as u64,
        });
    }
    let daily_maintenance = sql::daily_function(client)
        .await
        .context("SELECT daily_maintenance()")?;
    Ok(MaintenanceSummary {
        partitions,
        vacuumed,
        daily_maintenance,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Writes the configured policy of every partitioned table into pg_partman's
/// configuration, runs pg_partman's maintenance and reports what it changed.
async fn keep_partitions(
    client: &tokio_postgres::Client,
    settings: &PartitionSettings,
) -> anyhow::Result<Vec<PartitionStep>> {
    let mut before = Vec::with_capacity(sql::PARTITIONED_TABLES.len());
    for table in sql::PARTITIONED_TABLES {
        let policy = sql::PartitionPolicy {
            table,
            premake: settings.premake_months,
            retention: settings.retention_of(table),
            keep_detached: settings.keep_detached,
        };
        sql::set_partition_policy(client, &policy)
            .await
            .with_context(|| format!("partition policy of {table}"))?;
        before.push(sql::partitions(client, table).await?);
    }
    sql::partman_maintenance(client)
        .await
        .context("CALL partman.run_maintenance_proc()")?;
    let mut steps = Vec::with_capacity(before.len());
    for (table, before) in sql::PARTITIONED_TABLES.iter().zip(before) {
        let after = sql::partitions(client, table).await?;
        steps.push(PartitionStep {
            table: table.to_string(),
            created: after
                .iter()
                .filter(|p| !before.contains(p))
                .cloned()
                .collect(),
            detached: before
                .iter()
                .filter(|p| !after.contains(p))
                .cloned()
                .collect(),
            attached: after.len(),
        });
    }
    Ok(steps)
}

/// Parses `maintenance.daily_at_utc` (`"HH:MM"`).
pub fn parse_daily_at(s: &str) -> anyhow::Result<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .with_context(|| format!("maintenance.daily_at_utc must be \"HH:MM\" (UTC), not {s:?}"))
}

/// The first instant strictly after `now` whose UTC time of day is `at`.
pub fn next_run_after(now: DateTime<Utc>, at: NaiveTime) -> DateTime<Utc> {
    let today = now.date_naive().and_time(at).and_utc();
    if today > now {
        today
    } else {
        today + chrono::Duration::days(1)
    }
}

/// What the timers of this module need: the pool, their settings, the metrics they
/// feed and whether live state has been recovered (the readiness gauge).
#[derive(Clone)]
pub struct MaintenanceHandles {
    pub db: Pool,
    pub maintenance: MaintenanceSettings,
    pub monitoring: MonitoringSettings,
    pub metrics: Arc<Metrics>,
    pub recovered: Arc<AtomicBool>,
    /// Bonus expiry: due bonuses retracted, due free bets expired (`[bonus]
    /// expiry_interval_ms`).
    pub bonus: crate::app::bonus::BonusService,
}

/// Starts the timers of this module: the daily maintenance (when enabled) and the gauge
/// refresh. Fails on a malformed `daily_at_utc` so a bad setting stops the start-up.
pub fn spawn(handles: MaintenanceHandles) -> anyhow::Result<()> {
    if handles.maintenance.enabled {
        let at = parse_daily_at(&handles.maintenance.daily_at_utc)?;
        let h = handles.clone();
        tokio::spawn(async move { maintenance_loop(h, at).await });
    }
    let bonus = handles.bonus.clone();
    tokio::spawn(async move { bonus_expiry_loop(bonus).await });
    tokio::spawn(async move { gauges_loop(handles).await });
    Ok(())
}

/// Every `[bonus] expiry_interval_ms`: retracts what is left of expired bonuses (through
/// the users' wallet shards) and marks expired free bets.
async fn bonus_expiry_loop(bonus: crate::app::bonus::BonusService) {
    let period = Duration::from_millis(bonus.settings.expiry_interval_ms.max(10));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match bonus.expire_due().await {
            Ok((0, 0)) => {}
            Ok((bonuses, free_bets)) => {
                tracing::info!(bonuses, free_bets, "bonuses and free bets expired")
            }
            Err(e) => tracing::warn!(error = %e, "bonus expiry round failed"),
        }
    }
}

async fn maintenance_loop(h: MaintenanceHandles, at: NaiveTime) {
    loop {
        let now = Utc::now();
        let next = next_run_after(now, at);
        tracing::info!(next = %next, "daily maintenance scheduled");
        let wait = (next - now).to_std().unwrap_or(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        let outcome = match run_maintenance_once(&h.db, &h.maintenance).await {
            Ok(MaintenanceOutcome::Ran(_)) => "ran",
            Ok(MaintenanceOutcome::Skipped) => "skipped",
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "daily maintenance failed");
                "failed"
            }
        };
        h.metrics
            .db
            .maintenance_runs_total
            .with_label_values(&[outcome])
            .inc();
        // Never run twice within the same minute, however the clock moves.
        tokio::time::sleep(Duration::from_secs(61)).await;
    }
}

/// Refreshes the `winzo_db_*` gauges now and then every `db_health_refresh_interval_s`.
async fn gauges_loop(h: MaintenanceHandles) {
    let period = Duration::from_secs(h.monitoring.db_health_refresh_interval_s.max(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match refresh_gauges(&h.db, &h.monitoring, &h.metrics).await {
            Ok(()) => h
                .metrics
                .db
                .ready
                .set(i64::from(h.recovered.load(Ordering::Acquire))),
            Err(err) => {
                h.metrics.db.ready.set(0);
                tracing::warn!(error = %format!("{err:#}"), "refreshing the database gauges");
            }
        }
    }
}

/// One refresh of the database gauges.
pub async fn refresh_gauges(
    db: &Pool,
    mon: &MonitoringSettings,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    let client = db.get().await.context("getting a connection")?;
    let figures = crate::db::health::gauge_figures(
        &**client,
        mon.slow_statement_mean_ms,
        mon.dead_tuple_tables_max,
    )
    .await?;
    metrics.db.set(&figures);
    Ok(())
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct MaintenanceSettings {
    /// Whether this node schedules the daily maintenance at all.
    pub enabled: bool,
    /// `"HH:MM"` in UTC; checked when the engine starts.
    pub daily_at_utc: String,
    /// statement_timeout for the maintenance session (VACUUM can take long).
    pub statement_timeout_ms: u64,
    /// The monthly partitions of audit_log, bets and transactions.
    pub partitions: PartitionSettings,
}

/// `[maintenance.partitions]`: what pg_partman keeps (docs/operations.md, "Partitions").
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PartitionSettings {
    /// Months of partitions kept ready ahead of the current one.
    pub premake_months: i32,
    /// How long a month of each table stays attached after it ended, as a Postgres interval
    /// (`"12 months"`); absent: every month stays.
    #[serde(default)]
    pub audit_log_retention: Option<String>,
    #[serde(default)]
    pub bets_retention: Option<String>,
    #[serde(default)]
    pub transactions_retention: Option<String>,
    /// A month past retention is detached and kept as a plain table (true), or dropped.
    pub keep_detached: bool,
}

impl PartitionSettings {
    /// The retention of `table` (one of `db::maintenance::PARTITIONED_TABLES`); an empty
    /// string counts as absent.
    pub fn retention_of(&self, table: &str) -> Option<&str> {
        let r = match table {
            "audit_log" => &self.audit_log_retention,
            "bets" => &self.bets_retention,
            "transactions" => &self.transactions_retention,
            _ => &None,
        };
        r.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
}
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MonitoringSettings {
    /// Period of the database gauges' refresh (a timer, not per scrape).
    pub db_health_refresh_interval_s: u64,
    /// Rows per section of the db-health answer.
    pub db_health_rows_max: i64,
    /// Tables reported in `winzo_db_dead_tuples{table}` (bounds the label set).
    pub dead_tuple_tables_max: i64,
    /// Mean execution time above which a statement counts as slow.
    pub slow_statement_mean_ms: f64,
    /// Dead tuples above which a table is listed in db-health.
    pub dead_tuples_min: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn daily_at_parses_hours_and_minutes_only() {
        assert_eq!(
            parse_daily_at("02:00").unwrap(),
            NaiveTime::from_hms_opt(2, 0, 0).unwrap()
        );
        assert!(parse_daily_at("2am").is_err());
        assert!(parse_daily_at("25:00").is_err());
        assert!(parse_daily_at("").is_err());
    }

    #[test]
    fn next_run_is_today_if_still_ahead_else_tomorrow() {
        let at = NaiveTime::from_hms_opt(2, 0, 0).unwrap();
        let before = Utc.with_ymd_and_hms(2026, 3, 1, 1, 59, 0).unwrap();
        assert_eq!(
            next_run_after(before, at),
            Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap()
        );
        let exactly = Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap();
        assert_eq!(
            next_run_after(exactly, at),
            Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0).unwrap()
        );
        let after = Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap();
        assert_eq!(
            next_run_after(after, at),
            Utc.with_ymd_and_hms(2027, 1, 1, 2, 0, 0).unwrap()
        );
    }
}
