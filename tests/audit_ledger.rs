//! The append-only ledger is its own record (issue 16, docs/accounts.md "Audit trail"):
//! bets, legs and transactions are not copied into audit_log on insert and cannot be
//! deleted; their updates (settlement) are audited; a balance changed by hand is audited,
//! one moved with its transaction rows is not; check-ledger keeps proving the balances.
mod bets_support;
mod common;
mod markets_support;
mod support_accounts;

use rust_decimal_macros::dec;
use serde_json::json;
use tokio_postgres::error::SqlState;

async fn audited(app: &common::TestApp, table: &str, action: &str) -> i64 {
    app.db
        .client
        .query_one(
            "SELECT count(*) FROM audit_log WHERE table_name = $1 AND action::text = $2",
            &[&table, &action],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn bets_are_their_own_record_and_only_other_changes_are_audited() {
    let app = support_accounts::spawn().await;
    let (_, trader) = support_accounts::staff(&app, "moderator").await;
    let book = markets_support::create_book(&app.http, &app.address, &trader).await;
    let (user, token) = bets_support::bettor(&app.db.client, dec!(50.00)).await;
    let balances_before = audited(&app, "user_balances", "UPDATE").await;
    let body = bets_support::single(book.selections[0][0], "1.9091", "10.00", "a1");
    let (s, b) = bets_support::place(&app, &token, &body).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        audited(&app, "bets", "INSERT").await,
        0,
        "no copy of a bet's insert"
    );
    assert_eq!(audited(&app, "transactions", "INSERT").await, 0);
    assert_eq!(
        audited(&app, "user_balances", "UPDATE").await,
        balances_before,
        "the stake debit moved the balance with its transaction row"
    );

    // Settlement updates the bet: audited in full.
    let market = book.markets[0];
    let results: Vec<_> = book.selections[0]
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"selection_id": s, "result": if i == 0 { "win" } else { "loss" }}))
        .collect();
    let (s, b) = support_accounts::post(
        &app,
        &format!("/api/v1/trading/markets/{market}/settle"),
        Some(&trader),
        json!({"results": results}),
    )
    .await;
    assert!(s == 200 || s == 202, "{b}");
    common::wait_until(
        "the bet's settlement is audited",
        std::time::Duration::from_secs(10),
        || async { audited(&app, "bets", "UPDATE").await >= 1 },
    )
    .await;

    // A hand-run balance change is audited with its actor (none here: psql).
    let c = &app.db.client;
    c.execute(
        "UPDATE user_balances SET balance = balance + 1 WHERE user_id = $1",
        &[&user],
    )
    .await
    .unwrap();
    assert_eq!(
        audited(&app, "user_balances", "UPDATE").await,
        balances_before + 1,
        "a hand UPDATE lands in the trail"
    );
    c.execute(
        "UPDATE user_balances SET balance = balance - 1 WHERE user_id = $1",
        &[&user],
    )
    .await
    .unwrap();

    // The ledger refuses deletes and truncation.
    for sql in [
        "DELETE FROM bets WHERE user_id = $1",
        "DELETE FROM transactions WHERE user_id = $1",
        "DELETE FROM bet_selections WHERE bet_id IN (SELECT id FROM bets WHERE user_id = $1)",
    ] {
        let err = c.execute(sql, &[&user]).await.expect_err(sql);
        assert_eq!(
            err.code(),
            Some(&SqlState::RESTRICT_VIOLATION),
            "{sql}: {err:?}"
        );
    }
    let err = c
        .batch_execute("TRUNCATE bets CASCADE")
        .await
        .expect_err("truncate");
    assert_eq!(err.code(), Some(&SqlState::RESTRICT_VIOLATION), "{err:?}");

    let mut settings = common::test_settings();
    settings.database.url = app.db.url.clone();
    let violations = winzo::ledger_check::check_database(&settings.database)
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}
