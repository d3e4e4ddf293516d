//! The SQL of the daily maintenance: the cross-node advisory lock, pg_partman's upkeep of
//! the monthly partitions (V45-V48), `VACUUM (ANALYZE)` of the hot tables (outside any
//! transaction: VACUUM refuses to run inside one), the `daily_maintenance()` function (V49)
//! and its record in `system_events`.
use tokio_postgres::Client;

/// Advisory-lock key held while maintenance runs, so two nodes never run it at once
/// (the migration lock is ...0001).
pub const MAINTENANCE_LOCK_KEY: i64 = 0x5749_4e5a_4f00_0002;

/// The seed's frequently updated tables, vacuumed and analyzed one statement each.
/// Constant identifiers: nothing outside this list is ever put into the statement.
pub const HOT_TABLES: [&str; 4] = ["bets", "transactions", "selections", "user_balances"];

/// The tables partitioned by month and kept by pg_partman (V46-V48).
pub const PARTITIONED_TABLES: [&str; 3] = ["audit_log", "bets", "transactions"];

/// What pg_partman keeps for one partitioned table.
#[derive(Debug, Clone)]
pub struct PartitionPolicy<'a> {
    pub table: &'a str,
    /// Months of partitions kept ready ahead of the current one.
    pub premake: i32,
    /// Partitions whose month ended longer ago than this interval (Postgres syntax, e.g.
    /// `"12 months"`) leave the table; `None` keeps every month.
    pub retention: Option<&'a str>,
    /// A partition past retention is detached and kept as a plain table (true) or dropped.
    pub keep_detached: bool,
}

/// Writes `policy` into `partman.part_config`: the configuration file stays the one
/// source of the policy, whatever was set by hand in between.
pub async fn set_partition_policy(
    client: &Client,
    policy: &PartitionPolicy<'_>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        PARTITIONED_TABLES.contains(&policy.table),
        "not a partitioned table: {}",
        policy.table
    );
    let n = client
        .execute(
            "UPDATE partman.part_config
                SET premake = $2, retention = ($3::text::interval)::text,
                    retention_keep_table = $4, retention_keep_index = $4,
                    infinite_time_partitions = true
              WHERE parent_table = 'public.' || $1",
            &[
                &policy.table,
                &policy.premake,
                &policy.retention,
                &policy.keep_detached,
            ],
        )
        .await?;
    anyhow::ensure!(n == 1, "pg_partman does not manage {}", policy.table);
    Ok(())
}

/// The partitions attached to `table` now (the default partition included), by name.
pub async fn partitions(
    client: &Client,
    table: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = to_regclass('public.' || $1) ORDER BY 1",
            &[&table],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// pg_partman's own maintenance of every partition set: creates the months ahead
/// (premake) and applies retention. A procedure that commits as it goes, so it runs as its
/// own statement outside any transaction.
pub async fn partman_maintenance(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute("CALL partman.run_maintenance_proc(p_wait => 0, p_analyze => false)")
        .await
}

/// The partitions of `table` that can hold rows written during the last month (this
/// month's, last month's, and the default partition), as quoted `schema.name`: the ones
/// worth vacuuming. Older months no longer change.
pub async fn recent_partitions(
    client: &Client,
    table: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT format('%I.%I', p.partition_schema, p.partition_table)
             FROM (VALUES (now()), (now() - interval '1 month')) AS v(t),
                  partman.show_partition_name('public.' || $1, v.t::text) AS p
             WHERE p.table_exists
             UNION
             SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE i.inhparent = to_regclass('public.' || $1)
               AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
             ORDER BY 1",
            &[&table],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Takes the session-level lock without waiting: false when another session holds it.
pub async fn try_lock(client: &Client) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&MAINTENANCE_LOCK_KEY])
        .await?;
    Ok(row.get(0))
}

pub async fn unlock(client: &Client) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT pg_advisory_unlock($1)", &[&MAINTENANCE_LOCK_KEY])
        .await?;
    Ok(row.get(0))
}

/// Sets this session's statement timeout (the pool's default is far too short for VACUUM).
pub async fn set_statement_timeout(client: &Client, ms: u64) -> Result<(), tokio_postgres::Error> {
    client
        .query_one(
            "SELECT set_config('statement_timeout', $1, false)",
            &[&ms.to_string()],
        )
        .await?;
    Ok(())
}

/// `VACUUM (ANALYZE) <table>` as its own autocommit statement. `table` must be one of
/// [`HOT_TABLES`]; anything else is refused rather than formatted into SQL. A partitioned
/// hot table is vacuumed through its recent partitions only (the ones
/// [`recent_partitions`] names, quoted by Postgres): answers what was vacuumed.
pub async fn vacuum_analyze(client: &Client, table: &str) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(
        HOT_TABLES.contains(&table),
        "not a maintenance table: {table}"
    );
    if !PARTITIONED_TABLES.contains(&table) {
        client
            .batch_execute(&format!("VACUUM (ANALYZE) {table}"))
            .await?;
        return Ok(Vec::new());
    }
    let parts = recent_partitions(client, table).await?;
    for part in &parts {
        client
            .batch_execute(&format!("VACUUM (ANALYZE) {part}"))
            .await?;
    }
    Ok(parts)
}

/// `SELECT daily_maintenance()`: retention of system_events and ANALYZE of the other
/// tables and of the partitioned ones as a whole (V49).
pub async fn daily_function(client: &Client) -> Result<serde_json::Value, tokio_postgres::Error> {
    let row = client.query_one("SELECT daily_maintenance()", &[]).await?;
    Ok(row.get(0))
}

/// Writes one `system_events` row of type `maintenance`.
pub async fn record_event(
    client: &Client,
    severity: &str,
    message: &str,
    details: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO system_events (event_type, severity, message, details)
             VALUES ('maintenance', $1::text::event_severity, $2, $3)",
            &[&severity, &message, details],
        )
        .await?;
    Ok(())
}
