//! The wallet under concurrency: one writer per user keeps balances exact, the ledger
//! clean, and idempotency keys single-use.
mod common;
mod support_accounts;

use futures::future::join_all;
use rust_decimal::Decimal;
use serde_json::json;
use support_accounts::*;

async fn check_ledger_clean(app: &common::TestApp) {
    let violations = winzo::ledger_check::check_database(&app.settings.database)
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test]
async fn two_hundred_concurrent_deposits_and_withdrawals_leave_an_exact_balance() {
    let app = spawn().await;
    let (_, token) = bettor(&app).await;
    // 100 deposits of 10.00 and 100 withdrawals of 7.00, interleaved and all at once.
    let requests = (0..200).map(|i| {
        let (path, amount) = if i % 2 == 0 {
            ("/api/v1/wallet/deposits", "10.00")
        } else {
            ("/api/v1/wallet/withdrawals", "7.00")
        };
        let body = json!({"amount": amount, "idempotency_key": format!("k-{i}")});
        let app = &app;
        let token = token.clone();
        async move { (i, post(app, path, Some(&token), body).await) }
    });
    let results = join_all(requests).await;
    let mut expected = Decimal::ZERO;
    for (i, (status, body)) in &results {
        match (i % 2 == 0, *status) {
            (true, 201) => expected += Decimal::new(1000, 2),
            (false, 201) => expected -= Decimal::new(700, 2),
            (false, 409) => assert_eq!(body["error"]["code"], "insufficient_funds"),
            other => panic!("request {i}: unexpected {other:?}: {body}"),
        }
    }
    let deposits = results
        .iter()
        .filter(|(i, (s, _))| i % 2 == 0 && *s == 201)
        .count();
    assert_eq!(deposits, 100, "every deposit is accepted");
    let (s, wallet) = get(&app, "/api/v1/wallet", Some(&token)).await;
    assert_eq!(s, 200);
    let balance: Decimal = wallet["balance"].as_str().unwrap().parse().unwrap();
    assert_eq!(balance, expected);
    assert!(balance >= Decimal::ZERO);
    check_ledger_clean(&app).await;
    // The CLI agrees.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_winzo"))
        .arg("check-ledger")
        .env("WINZO_ENV", "test")
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn the_same_idempotency_key_sent_fifty_times_concurrently_creates_one_transaction() {
    let app = spawn().await;
    let (id, token) = bettor(&app).await;
    let body = json!({"amount": "25.00", "idempotency_key": "same-key-50"});
    let results = join_all(
        (0..50).map(|_| post(&app, "/api/v1/wallet/deposits", Some(&token), body.clone())),
    )
    .await;
    let first = &results[0].1;
    for (status, body) in &results {
        assert_eq!(*status, 201, "{body}");
        assert_eq!(body["id"], first["id"], "every answer is the first result");
    }
    let n = app
        .db
        .client
        .query_one(
            "SELECT count(*) FROM transactions WHERE user_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(n, 1);
    let (_, wallet) = get(&app, "/api/v1/wallet", Some(&token)).await;
    assert_eq!(wallet["balance"], "25.00");
    check_ledger_clean(&app).await;
}

#[tokio::test]
async fn check_ledger_reports_every_violation() {
    let app = spawn().await;
    let (id, token) = bettor(&app).await;
    let (s, _) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "10.00", "idempotency_key": "a"}),
    )
    .await;
    assert_eq!(s, 201);
    check_ledger_clean(&app).await;
    // Tamper behind the wallet's back.
    app.db
        .client
        .execute(
            "UPDATE user_balances SET balance = 11.00 WHERE user_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let violations = winzo::ledger_check::check_database(&app.settings.database)
        .await
        .unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].to_string().contains(&id.to_string()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_winzo"))
        .arg("check-ledger")
        .env("WINZO_ENV", "test")
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("VIOLATION"));
}

#[tokio::test]
async fn a_full_shard_mailbox_answers_503_busy_and_loses_nothing() {
    let app = spawn_with(|s| {
        s.wallet.shards = 1;
        s.wallet.shard_mailbox_capacity = 1;
    })
    .await;
    let (_, token) = bettor(&app).await;
    let results = join_all((0..100).map(|i| {
        post(
            &app,
            "/api/v1/wallet/deposits",
            Some(&token),
            json!({"amount": "1.00", "idempotency_key": format!("b-{i}")}),
        )
    }))
    .await;
    let accepted = results.iter().filter(|(s, _)| *s == 201).count();
    let busy = results
        .iter()
        .filter(|(s, b)| *s == 503 && b["error"]["code"] == "busy")
        .count();
    assert_eq!(accepted + busy, 100, "only 201 or 503 busy");
    assert!(
        busy > 0,
        "a mailbox of 1 overflows under 100 concurrent deposits"
    );
    let (_, wallet) = get(&app, "/api/v1/wallet", Some(&token)).await;
    let balance: Decimal = wallet["balance"].as_str().unwrap().parse().unwrap();
    assert_eq!(balance, Decimal::new(100 * accepted as i64, 2));
    check_ledger_clean(&app).await;
}
