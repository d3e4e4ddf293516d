//! The database monitoring queries of the seed, corrected for Postgres 15, and the WAL
//! archiver's state. They feed `GET /api/v1/trading/db-health` and the `winzo_db_*` gauges.
//!
//! Corrections to the seed's drafts (docs/operations.md, "Monitoring"):
//! - `pg_stat_statements` names its timings `total_exec_time` / `mean_exec_time` since
//!   Postgres 13 (the draft's `total_time` / `mean_time` no longer exist); statements are
//!   limited to the current database (the view is cluster-wide).
//! - `pg_stat_user_indexes` and `pg_stat_user_tables` name the table `relname` and the
//!   index `indexrelname` (the draft's `tablename` / `indexname` belong to `pg_indexes`).
//! - An unused index is one never scanned (`idx_scan = 0`); unique and primary-key
//!   indexes are left out, since they enforce constraints even when no query reads them.
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::GenericClient;
use utoipa::ToSchema;

/// Thresholds and row limits of one report (from `[monitoring]`).
#[derive(Debug, Clone, Copy)]
pub struct HealthLimits {
    pub rows_max: i64,
    pub slow_statement_mean_ms: f64,
    pub dead_tuples_min: i64,
}

/// Statements whose mean execution time exceeds the threshold, slowest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlowStatements {
    /// False when `pg_stat_statements` is not installed or not preloaded.
    pub available: bool,
    /// Why the section is unavailable, if it is.
    pub reason: Option<String>,
    pub threshold_ms: f64,
    pub statements: Vec<SlowStatement>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlowStatement {
    pub queryid: Option<i64>,
    /// The normalized statement text (parameters replaced by `$n`), cut to 500 characters.
    pub query: String,
    pub calls: i64,
    pub total_exec_time_ms: f64,
    pub mean_exec_time_ms: f64,
    pub rows: i64,
}

/// A non-unique index never used by a scan since the statistics were reset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnusedIndex {
    pub schemaname: String,
    pub relname: String,
    pub indexrelname: String,
    pub idx_scan: i64,
    pub idx_tup_read: i64,
    pub idx_tup_fetch: i64,
    pub size_bytes: i64,
}

/// Dead-tuple bloat of one table.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadTuples {
    pub schemaname: String,
    pub relname: String,
    pub n_tup_ins: i64,
    pub n_tup_upd: i64,
    pub n_tup_del: i64,
    pub n_live_tup: i64,
    pub n_dead_tup: i64,
    pub last_vacuum: Option<DateTime<Utc>>,
    pub last_autovacuum: Option<DateTime<Utc>>,
}

/// WAL archiving state (`pg_stat_archiver`): a failing archive_command breaks PITR.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Archiver {
    pub archived_count: i64,
    pub last_archived_wal: Option<String>,
    pub last_archived_time: Option<DateTime<Utc>>,
    pub failed_count: i64,
    pub last_failed_wal: Option<String>,
    pub last_failed_time: Option<DateTime<Utc>>,
}

/// The whole db-health answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DbHealth {
    pub generated_at: DateTime<Utc>,
    pub slow_statements: SlowStatements,
    pub unused_indexes: Vec<UnusedIndex>,
    pub dead_tuples: Vec<DeadTuples>,
    pub archiver: Archiver,
}

pub use crate::metrics::GaugeFigures;

const SLOW_STATEMENTS_SQL: &str = "
    SELECT queryid, left(query, 500), calls, total_exec_time, mean_exec_time, rows
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND mean_exec_time > $1
    ORDER BY mean_exec_time DESC
    LIMIT $2";

const SLOW_STATEMENTS_COUNT_SQL: &str = "
    SELECT count(*)
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND mean_exec_time > $1";

const UNUSED_INDEXES_FROM: &str = "
    FROM pg_stat_user_indexes s
    JOIN pg_index i ON i.indexrelid = s.indexrelid
    WHERE s.idx_scan = 0 AND NOT i.indisunique";

const DEAD_TUPLES_SQL: &str = "
    SELECT schemaname, relname, n_tup_ins, n_tup_upd, n_tup_del, n_live_tup, n_dead_tup,
           last_vacuum, last_autovacuum
    FROM pg_stat_user_tables
    WHERE n_dead_tup > $1
    ORDER BY n_dead_tup DESC, relname
    LIMIT $2";

const ARCHIVER_SQL: &str = "
    SELECT archived_count, last_archived_wal, last_archived_time,
           failed_count, last_failed_wal, last_failed_time
    FROM pg_stat_archiver";

/// True for the errors that mean "pg_stat_statements is not there or not loaded".
fn statements_unavailable(err: &tokio_postgres::Error) -> bool {
    matches!(
        err.code(),
        Some(c) if *c == SqlState::UNDEFINED_TABLE
            || *c == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
            || *c == SqlState::UNDEFINED_FUNCTION
    )
}

/// Runs every monitoring query and assembles the report.
pub async fn report(client: &impl GenericClient, limits: HealthLimits) -> anyhow::Result<DbHealth> {
    Ok(DbHealth {
        generated_at: Utc::now(),
        slow_statements: slow_statements(client, limits).await?,
        unused_indexes: unused_indexes(client, limits.rows_max).await?,
        dead_tuples: dead_tuples(client, limits.dead_tuples_min, limits.rows_max).await?,
        archiver: archiver(client).await?,
    })
}

async fn slow_statements(
    client: &impl GenericClient,
    limits: HealthLimits,
) -> anyhow::Result<SlowStatements> {
    let mut section = SlowStatements {
        available: true,
        reason: None,
        threshold_ms: limits.slow_statement_mean_ms,
        statements: Vec::new(),
    };
    let rows = match client
        .query(
            SLOW_STATEMENTS_SQL,
            &[&limits.slow_statement_mean_ms, &limits.rows_max],
        )
        .await
    {
        Ok(rows) => rows,
        Err(err) if statements_unavailable(&err) => {
            section.available = false;
            section.reason = Some(
                err.as_db_error()
                    .map(|e| e.message().to_string())
                    .unwrap_or_else(|| err.to_string()),
            );
            return Ok(section);
        }
        Err(err) => return Err(err.into()),
    };
    section.statements = rows
        .iter()
        .map(|r| SlowStatement {
            queryid: r.get(0),
            query: r.get::<_, Option<String>>(1).unwrap_or_default(),
            calls: r.get(2),
            total_exec_time_ms: r.get(3),
            mean_exec_time_ms: r.get(4),
            rows: r.get(5),
        })
        .collect();
    Ok(section)
}

async fn unused_indexes(
    client: &impl GenericClient,
    rows_max: i64,
) -> anyhow::Result<Vec<UnusedIndex>> {
    let sql = format!(
        "SELECT s.schemaname, s.relname, s.indexrelname, s.idx_scan, s.idx_tup_read,
                s.idx_tup_fetch, pg_relation_size(s.indexrelid)
         {UNUSED_INDEXES_FROM}
         ORDER BY pg_relation_size(s.indexrelid) DESC, s.schemaname, s.relname, s.indexrelname
         LIMIT $1"
    );
    let rows = client.query(sql.as_str(), &[&rows_max]).await?;
    Ok(rows
        .iter()
        .map(|r| UnusedIndex {
            schemaname: r.get(0),
            relname: r.get(1),
            indexrelname: r.get(2),
            idx_scan: r.get(3),
            idx_tup_read: r.get(4),
            idx_tup_fetch: r.get(5),
            size_bytes: r.get(6),
        })
        .collect())
}

async fn dead_tuples(
    client: &impl GenericClient,
    min: i64,
    rows_max: i64,
) -> anyhow::Result<Vec<DeadTuples>> {
    let rows = client.query(DEAD_TUPLES_SQL, &[&min, &rows_max]).await?;
    Ok(rows
        .iter()
        .map(|r| DeadTuples {
            schemaname: r.get(0),
            relname: r.get(1),
            n_tup_ins: r.get(2),
            n_tup_upd: r.get(3),
            n_tup_del: r.get(4),
            n_live_tup: r.get(5),
            n_dead_tup: r.get(6),
            last_vacuum: r.get(7),
            last_autovacuum: r.get(8),
        })
        .collect())
}

async fn archiver(client: &impl GenericClient) -> anyhow::Result<Archiver> {
    let r = client.query_one(ARCHIVER_SQL, &[]).await?;
    Ok(Archiver {
        archived_count: r.get(0),
        last_archived_wal: r.get(1),
        last_archived_time: r.get(2),
        failed_count: r.get(3),
        last_failed_wal: r.get(4),
        last_failed_time: r.get(5),
    })
}

/// The counts behind the gauges: cheap aggregate queries, run on the refresh timer.
pub async fn gauge_figures(
    client: &impl GenericClient,
    slow_statement_mean_ms: f64,
    dead_tuple_tables_max: i64,
) -> anyhow::Result<GaugeFigures> {
    let slow_statements = match client
        .query_one(SLOW_STATEMENTS_COUNT_SQL, &[&slow_statement_mean_ms])
        .await
    {
        Ok(row) => Some(row.get(0)),
        Err(err) if statements_unavailable(&err) => None,
        Err(err) => return Err(err.into()),
    };
    let unused_sql = format!("SELECT count(*) {UNUSED_INDEXES_FROM}");
    let unused_indexes: i64 = client.query_one(unused_sql.as_str(), &[]).await?.get(0);
    let dead = client
        .query(
            "SELECT relname, n_dead_tup FROM pg_stat_user_tables
             ORDER BY n_dead_tup DESC, relname LIMIT $1",
            &[&dead_tuple_tables_max],
        )
        .await?;
    let arch = archiver(client).await?;
    Ok(GaugeFigures {
        slow_statements,
        unused_indexes,
        dead_tuples: dead.iter().map(|r| (r.get(0), r.get(1))).collect(),
        archive_failed: arch.failed_count,
        archive_archived: arch.archived_count,
    })
}
