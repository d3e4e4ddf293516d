//! GET /api/v1/trading/db-health (admin only) and the database gauges of /metrics.
mod common;

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;
use winzo::auth::{session, Role};

/// Inserts a user with `role` and opens a session for it; returns the bearer token.
async fn user_with_session(app: &common::TestApp, role: Role) -> String {
    let name = format!("ops_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let row = app
        .db
        .client
        .query_one(
            "INSERT INTO users (username, email, password_hash, role)
             VALUES ($1::text, $1::text || '@winzo.test', 'x', $2::text::user_role) RETURNING id",
            &[&name, &role.as_str()],
        )
        .await
        .expect("insert user");
    let user_id: Uuid = row.get(0);
    let redis = winzo::redis_client::connect(&app.settings.redis).expect("redis");
    let (token, _) = session::create(&redis, user_id.into(), role, 600)
        .await
        .expect("session");
    token
}

async fn get_health(app: &common::TestApp, token: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url("/api/v1/trading/db-health"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request")
}

#[tokio::test]
async fn db_health_is_for_admins_only() {
    let app = common::spawn_app().await;
    let r = get_health(&app, None).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let moderator = user_with_session(&app, Role::Moderator).await;
    let r = get_health(&app, Some(&moderator)).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");

    let admin = user_with_session(&app, Role::Admin).await;
    let r = get_health(&app, Some(&admin)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["slow_statements"]["available"], true, "{body}");
    assert!(body["slow_statements"]["statements"].is_array(), "{body}");
    assert!(body["unused_indexes"].is_array(), "{body}");
    assert!(body["dead_tuples"].is_array(), "{body}");
    assert!(body["archiver"]["failed_count"].is_i64(), "{body}");
}

#[tokio::test]
async fn db_health_reports_statements_unused_indexes_and_dead_tuples() {
    let app = common::spawn_app_with(|s| {
        s.monitoring.slow_statement_mean_ms = 0.0;
        s.monitoring.dead_tuples_min = 100;
        s.monitoring.db_health_rows_max = 500;
    })
    .await;
    let admin = user_with_session(&app, Role::Admin).await;
    // 300 dead tuples in system_events, from a session that then ends (which flushes its
    // statistics at once).
    {
        let (db, conn) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        // Autovacuum (this test's own database) would clean them before the report can
        // be read on a slow machine.
        db.batch_execute(
            "ALTER TABLE system_events SET (autovacuum_enabled = false);
             INSERT INTO system_events (event_type, message)
               SELECT 'ops_test', 'row ' || g FROM generate_series(1, 300) g;
             DELETE FROM system_events WHERE event_type = 'ops_test';",
        )
        .await
        .unwrap();
        drop(db);
        let _ = conn.await;
    }
    let last = std::cell::RefCell::new(Value::Null);
    common::wait_until(
        "system_events dead tuples to be reported",
        Duration::from_secs(10),
        || async {
            let body: Value = get_health(&app, Some(&admin)).await.json().await.unwrap();
            let dead = body["dead_tuples"].as_array().cloned().unwrap_or_default();
            let seen = dead
                .iter()
                .any(|t| t["relname"] == "system_events" && t["n_dead_tup"].as_i64() >= Some(300));
            *last.borrow_mut() = body;
            seen
        },
    )
    .await;
    let body = last.into_inner();
    let statements = body["slow_statements"]["statements"].as_array().unwrap();
    assert!(!statements.is_empty(), "{body}");
    assert!(statements[0]["mean_exec_time_ms"].is_f64(), "{body}");
    let unused = body["unused_indexes"].as_array().unwrap();
    // A fresh database has scanned none of its secondary indexes; unique ones are
    // never reported.
    assert!(
        unused
            .iter()
            // (not one of a partitioned table: their parents' indexes have no statistics,
            // only their partitions' do; nothing here reads the notifications outbox)
            .any(|i| i["indexrelname"] == "idx_notifications_unsent"),
        "{body}"
    );
    assert!(
        !unused.iter().any(|i| {
            let name = i["indexrelname"].as_str().unwrap_or_default();
            name.ends_with("_pkey") || name.ends_with("_key")
        }),
        "{body}"
    );
}

#[tokio::test]
async fn metrics_carry_the_database_gauges() {
    let app = common::spawn_app_with(|s| s.monitoring.db_health_refresh_interval_s = 1).await;
    let text = std::cell::RefCell::new(String::new());
    common::wait_until(
        "the database gauges in /metrics",
        Duration::from_secs(10),
        || async {
            let body = app
                .http
                .get(app.url("/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let seen = body.contains("winzo_db_dead_tuples{table=\"bets\"}");
            *text.borrow_mut() = body;
            seen
        },
    )
    .await;
    let text = text.into_inner();
    for family in [
        "winzo_db_slow_statements ",
        "winzo_db_unused_indexes ",
        "winzo_db_dead_tuples{table=\"bets\"}",
        "winzo_db_archive_failed_total ",
        "winzo_db_health_refreshed_seconds ",
        "winzo_ready 1",
    ] {
        assert!(text.contains(family), "{family} missing from:\n{text}");
    }
    let unused: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("winzo_db_unused_indexes "))
        .and_then(|v| v.trim().parse().ok())
        .expect("unused index gauge value");
    assert!(unused > 0, "{text}");
}

#[tokio::test]
async fn db_health_is_in_the_openapi_document() {
    let app = common::spawn_app().await;
    let doc: Value = app
        .http
        .get(app.url("/api-docs/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/trading/db-health"]["get"].is_object());
}
