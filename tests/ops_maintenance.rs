//! The daily maintenance: VACUUM (ANALYZE) + daily_maintenance(), recorded in
//! system_events, never run by two sessions (nodes) at once.
mod common;

use winzo::db::maintenance::{HOT_TABLES, MAINTENANCE_LOCK_KEY};
use winzo::maintenance::{run_maintenance_once, MaintenanceOutcome};

fn settings() -> winzo::maintenance::MaintenanceSettings {
    let mut m = common::test_settings().maintenance;
    m.statement_timeout_ms = 60_000;
    m
}

fn pool_for(db: &common::TestDb) -> deadpool_postgres::Pool {
    let mut settings = common::test_settings();
    settings.database.url = db.url.clone();
    winzo::db::build_pool(&settings.database).expect("pool")
}

async fn maintenance_events(db: &common::TestDb) -> Vec<(String, serde_json::Value)> {
    db.client
        .query(
            "SELECT severity::text, details FROM system_events
             WHERE event_type = 'maintenance' ORDER BY created_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn maintenance_vacuums_runs_daily_maintenance_and_records_it() {
    let db = common::TestDb::new().await;
    // An old system event that the retention (six months) must delete.
    db.client
        .execute(
            "INSERT INTO system_events (event_type, message, created_at)
             VALUES ('old', 'from last year', now() - interval '7 months')",
            &[],
        )
        .await
        .unwrap();
    let pool = pool_for(&db);
    let summary = match run_maintenance_once(&pool, &settings()).await.unwrap() {
        MaintenanceOutcome::Ran(s) => s,
        MaintenanceOutcome::Skipped => panic!("nobody else holds the lock"),
    };
    let tables: Vec<&str> = summary.vacuumed.iter().map(|v| v.table.as_str()).collect();
    assert_eq!(tables, HOT_TABLES);
    assert_eq!(
        summary.daily_maintenance["deleted"]["system_events"], 1,
        "{summary:?}"
    );
    let events = maintenance_events(&db).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "info");
    assert_eq!(events[0].1["vacuumed"].as_array().unwrap().len(), 4);
    assert!(events[0].1["daily_maintenance"]["deleted"].is_object());
    // The vacuum really ran: Postgres recorded it for each plain hot table and for the
    // partitions the step names of the partitioned ones (bets and transactions: this
    // month's and the default partition at least; a partitioned table itself has no
    // statistics row).
    let mut relations: Vec<String> = Vec::new();
    for step in &summary.vacuumed {
        if step.partitions.is_empty() {
            relations.push(step.table.clone());
        } else {
            assert!(step.partitions.len() >= 2, "{step:?}");
            relations.extend(
                step.partitions
                    .iter()
                    .map(|p| p.trim_start_matches("public.").to_string()),
            );
        }
    }
    assert_eq!(
        summary
            .vacuumed
            .iter()
            .filter(|s| !s.partitions.is_empty())
            .count(),
        2,
        "bets and transactions are vacuumed by partition: {summary:?}"
    );
    let vacuumed: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM pg_stat_user_tables
             WHERE relname = ANY($1) AND last_vacuum IS NOT NULL",
            &[&relations],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(vacuumed as usize, relations.len(), "{relations:?}");
    // The lock was released: it can be taken again.
    let free: bool = db
        .client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&MAINTENANCE_LOCK_KEY])
        .await
        .unwrap()
        .get(0);
    assert!(free);
}

#[tokio::test]
async fn maintenance_skips_while_another_node_holds_the_lock() {
    let db = common::TestDb::new().await;
    let pool = pool_for(&db);
    let held: bool = db
        .client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&MAINTENANCE_LOCK_KEY])
        .await
        .unwrap()
        .get(0);
    assert!(held);
    let outcome = run_maintenance_once(&pool, &settings()).await.unwrap();
    assert!(
        matches!(outcome, MaintenanceOutcome::Skipped),
        "{outcome:?}"
    );
    assert!(maintenance_events(&db).await.is_empty());

    db.client
        .execute("SELECT pg_advisory_unlock($1)", &[&MAINTENANCE_LOCK_KEY])
        .await
        .unwrap();
    let outcome = run_maintenance_once(&pool, &settings()).await.unwrap();
    assert!(matches!(outcome, MaintenanceOutcome::Ran(_)), "{outcome:?}");
    assert_eq!(maintenance_events(&db).await.len(), 1);
}

#[tokio::test]
async fn two_concurrent_runs_one_runs_and_one_skips() {
    let db = common::TestDb::new().await;
    // Two pools: two engine nodes sharing one database.
    let (node_a, node_b) = (pool_for(&db), pool_for(&db));
    // Both nodes connected before the race starts, so they ask for the lock together.
    drop(node_a.get().await.unwrap());
    drop(node_b.get().await.unwrap());
    let m = settings();
    let (a, b) = tokio::join!(
        run_maintenance_once(&node_a, &m),
        run_maintenance_once(&node_b, &m)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let ran = outcomes
        .iter()
        .filter(|o| matches!(o, MaintenanceOutcome::Ran(_)))
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| matches!(o, MaintenanceOutcome::Skipped))
        .count();
    assert_eq!((ran, skipped), (1, 1), "{outcomes:?}");
    assert_eq!(maintenance_events(&db).await.len(), 1);
}
