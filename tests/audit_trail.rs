//! The audit trail: written by the database for every audited table, with the acting
//! user and client address, and read through GET /trading/audit with filters.
mod common;
mod support_accounts;

use serde_json::json;
use support_accounts::*;

#[tokio::test]
async fn account_and_wallet_changes_are_audited_with_actor_and_address() {
    let app = spawn().await;
    let (id, token) = bettor(&app).await;
    patch(
        &app,
        "/api/v1/me/profile",
        Some(&token),
        json!({"first_name": "Grace"}),
    )
    .await;
    let (s, tx) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "12.00", "idempotency_key": "a"}),
    )
    .await;
    assert_eq!(s, 201);
    let (_, support) = staff(&app, "support").await;
    let (s, page) = get(
        &app,
        &format!("/api/v1/trading/audit?table=user_profiles&record_id={id}"),
        Some(&support),
    )
    .await;
    assert_eq!(s, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    let update = entries
        .iter()
        .find(|e| e["action"] == "UPDATE")
        .expect("profile update audited");
    assert_eq!(update["user_id"], id.to_string());
    assert_eq!(update["ip_address"], "127.0.0.1");
    assert_eq!(update["new_values"]["first_name"], "Grace");
    assert!(update["old_values"]["first_name"].is_null());
    // The deposit is its own record (issue 16): the transactions row is not copied into
    // the trail, and neither is the balance update made with it.
    let (_, page) = get(
        &app,
        &format!("/api/v1/trading/audit?user_id={id}&table=transactions"),
        Some(&support),
    )
    .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 0, "{page}");
    let ledger: i64 = app
        .db
        .client
        .query_one(
            "SELECT count(*) FROM transactions WHERE id = $1::text::uuid AND amount = 12",
            &[&tx["id"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ledger, 1, "the ledger row is the record");
    let (_, page) = get(
        &app,
        &format!("/api/v1/trading/audit?table=user_balances&record_id={id}"),
        Some(&support),
    )
    .await;
    assert!(
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] != "UPDATE"),
        "a balance moved with its transaction row is not copied: {page}"
    );
    // Registration itself was audited (no actor yet, the address known).
    let (_, page) = get(
        &app,
        &format!("/api/v1/trading/audit?table=users&record_id={id}"),
        Some(&support),
    )
    .await;
    assert!(page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "INSERT" && e["ip_address"] == "127.0.0.1"));
    assert!(
        !page.to_string().contains("argon2"),
        "no password hash in the trail"
    );
    assert!(!page.to_string().contains("password_hash"));
}

#[tokio::test]
async fn catalogue_tables_are_audited_by_the_database_itself() {
    let app = spawn().await;
    app.db
        .client
        .batch_execute(
            "INSERT INTO sports (name, display_name, slug) VALUES ('darts', 'Darts', 'darts');
         UPDATE sports SET display_name = 'Darts!' WHERE slug = 'darts';
         DELETE FROM sports WHERE slug = 'darts';",
        )
        .await
        .unwrap();
    let actions: Vec<String> = app.db.client
        .query("SELECT action::text FROM audit_log WHERE table_name = 'sports' ORDER BY timestamp, action", &[])
        .await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    for t in [
        "sports",
        "leagues",
        "teams",
        "events",
        "markets",
        "selections",
        "bets",
        "users",
        "user_profiles",
        "user_preferences",
        "user_balances",
        "transactions",
        "payment_methods",
    ] {
        let n = app
            .db
            .client
            .query_one(
                "SELECT count(*) FROM pg_trigger
                 WHERE tgrelid = $1::text::regclass
                   AND tgname IN ('trigger_audit_' || $1 || '_insert',
                                  'trigger_audit_' || $1 || '_update',
                                  'trigger_audit_' || $1 || '_delete')
                   AND tgfoid = 'audit_statement_change'::regproc",
                &[&t],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        // The append-only ledger's inserts are their own record (issue 16): update and
        // delete triggers only (and deletes are refused before they fire).
        let expected = if matches!(t, "bets" | "transactions") {
            2
        } else {
            3
        };
        assert_eq!(n, expected, "{t} has its audit triggers");
    }
}

#[tokio::test]
async fn audit_filters_are_validated_and_time_bounded() {
    let app = spawn().await;
    let (_, admin) = staff(&app, "admin").await;
    let (s, b) = get(&app, "/api/v1/trading/audit?table=pg_shadow", Some(&admin)).await;
    assert_eq!(s, 422, "{b}");
    let (s, _) = get(&app, "/api/v1/trading/audit?limit=0", Some(&admin)).await;
    assert_eq!(s, 422);
    let (s, _) = get(
        &app,
        "/api/v1/trading/audit?record_id=1%27%20OR%201=1",
        Some(&admin),
    )
    .await;
    assert_eq!(s, 400);
    let (s, page) = get(
        &app,
        "/api/v1/trading/audit?from=2999-01-01T00:00:00Z",
        Some(&admin),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(page["entries"].as_array().unwrap().len(), 0);
    let (s, page) = get(
        &app,
        "/api/v1/trading/audit?to=2999-01-01T00:00:00Z&limit=2",
        Some(&admin),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
}
