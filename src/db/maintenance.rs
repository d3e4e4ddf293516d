//! The SQL of the daily maintenance: the cross-node advisory lock, `VACUUM (ANALYZE)` of
//! the hot tables (outside any transaction: VACUUM refuses to run inside one), the
//! `daily_maintenance()` function of V3 and its record in `system_events`.
use tokio_postgres::Client;

/// Advisory-lock key held while maintenance runs, so two nodes never run it at once
/// (the migration lock is ...0001).
pub const MAINTENANCE_LOCK_KEY: i64 = 0x5749_4e5a_4f00_0002;

/// The seed's frequently updated tables, vacuumed and analyzed one statement each.
/// Constant identifiers: nothing outside this list is ever put into the statement.
pub const HOT_TABLES: [&str; 4] = ["bets", "transactions", "selections", "user_balances"];

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
/// [`HOT_TABLES`]; anything else is refused rather than formatted into SQL.
pub async fn vacuum_analyze(client: &Client, table: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        HOT_TABLES.contains(&table),
        "not a maintenance table: {table}"
    );
    client
        .batch_execute(&format!("VACUUM (ANALYZE) {table}"))
        .await?;
    Ok(())
}

/// `SELECT daily_maintenance()`: retention and ANALYZE of the other tables (V3).
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
