//! Wallet endpoints: deposits, withdrawals, refusals, history, payment methods.
mod common;
mod support_accounts;

use serde_json::json;
use support_accounts::*;

#[tokio::test]
async fn deposit_then_withdraw_moves_the_balance_and_records_signed_transactions() {
    let app = spawn().await;
    let (_, token) = bettor(&app).await;
    let (s, tx) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "100.50", "idempotency_key": "d1"}),
    )
    .await;
    assert_eq!(s, 201, "{tx}");
    assert_eq!(tx["type"], "deposit");
    assert_eq!(tx["amount"], "100.50");
    assert_eq!(tx["status"], "completed");
    assert_eq!(tx["processor_response"]["processor"], "sandbox");
    let (s, tx) = post(
        &app,
        "/api/v1/wallet/withdrawals",
        Some(&token),
        json!({"amount": "0.50", "idempotency_key": "w1"}),
    )
    .await;
    assert_eq!(s, 201, "{tx}");
    assert_eq!(tx["amount"], "-0.50");
    let (_, w) = get(&app, "/api/v1/wallet", Some(&token)).await;
    assert_eq!(w["balance"], "100.00");
    assert_eq!(w["bonus_balance"], "0.00");
    assert_eq!(w["pending_balance"], "0.00");
    assert_eq!(w["currency_code"], "USD");
    let (s, page) = get(&app, "/api/v1/wallet/transactions?limit=1", Some(&token)).await;
    assert_eq!(s, 200);
    let rows = page["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["type"], "withdrawal", "newest first");
    let (_, page) = get(
        &app,
        "/api/v1/wallet/transactions?limit=1&offset=1",
        Some(&token),
    )
    .await;
    assert_eq!(page["transactions"][0]["type"], "deposit");
    let (s, b) = get(
        &app,
        "/api/v1/wallet/transactions?limit=100000",
        Some(&token),
    )
    .await;
    assert_eq!(s, 422, "{b}");
}

#[tokio::test]
async fn withdrawal_above_the_balance_is_insufficient_funds() {
    let app = spawn().await;
    let (_, token) = bettor(&app).await;
    post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "5.00", "idempotency_key": "d"}),
    )
    .await;
    let (s, b) = post(
        &app,
        "/api/v1/wallet/withdrawals",
        Some(&token),
        json!({"amount": "5.01", "idempotency_key": "w"}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_contract_error(&b, "insufficient_funds");
    assert_eq!(b["error"]["details"]["available"], "5.00");
}

#[tokio::test]
async fn a_key_reused_with_another_payload_is_409() {
    let app = spawn().await;
    let (_, token) = bettor(&app).await;
    let (s, first) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "5.00", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(s, 201);
    let (s, again) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "5.00", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(again, first);
    let (s, b) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "6.00", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(s, 409);
    assert_contract_error(&b, "idempotency_key_reused");
    let (s, b) = post(
        &app,
        "/api/v1/wallet/withdrawals",
        Some(&token),
        json!({"amount": "5.00", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(s, 409);
    assert_contract_error(&b, "idempotency_key_reused");
    // Another user may use the same key.
    let (_, other) = bettor(&app).await;
    let (s, _) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&other),
        json!({"amount": "6.00", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn bad_amounts_are_422_and_nothing_is_stored() {
    let app = spawn().await;
    let (_, token) = bettor(&app).await;
    for amount in [
        json!("0"),
        json!("0.00"),
        json!("-5.00"),
        json!("1.001"),
        json!("1e3"),
        json!("50000.01"),
        json!("99999999999999999999999"),
        json!(10.5),
        json!(10),
        json!(""),
        json!(" 5"),
        json!("5,00"),
        json!(null),
    ] {
        let (s, b) = post(
            &app,
            "/api/v1/wallet/deposits",
            Some(&token),
            json!({"amount": amount, "idempotency_key": "x"}),
        )
        .await;
        assert_eq!(s, 422, "{amount} -> {b}");
    }
    for key in [
        json!(""),
        json!("has space"),
        json!("k".repeat(101)),
        json!(5),
    ] {
        let (s, b) = post(
            &app,
            "/api/v1/wallet/deposits",
            Some(&token),
            json!({"amount": "5.00", "idempotency_key": key}),
        )
        .await;
        assert_eq!(s, 422, "{key} -> {b}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM transactions").await, 0);
}

#[tokio::test]
async fn the_sandbox_declines_its_documented_test_amounts_and_records_them_failed() {
    let app = spawn().await;
    let (_, token) = bettor(&app).await;
    let (s, b) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "10.13", "idempotency_key": "dec"}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_contract_error(&b, "payment_declined");
    let tx = &b["error"]["details"]["transaction"];
    assert_eq!(tx["status"], "failed");
    assert_eq!(tx["processor_response"]["decline_reason"], "card_declined");
    // Replaying the key answers the same decline; the balance never moved.
    let (s, again) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "10.13", "idempotency_key": "dec"}),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(again["error"]["details"]["transaction"]["id"], tx["id"]);
    let (_, w) = get(&app, "/api/v1/wallet", Some(&token)).await;
    assert_eq!(w["balance"], "0.00");
    let violations = winzo::ledger_check::check_database(&app.settings.database)
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test]
async fn payment_methods_are_stored_masked_and_luhn_checked() {
    let app = spawn().await;
    let (_, token) = bettor(&app).await;
    let (s, m) = post(
        &app,
        "/api/v1/me/payment-methods",
        Some(&token),
        json!({
        "type": "credit_card", "name": "My Visa", "card_number": "4242 4242 4242 4242",
        "expiry_month": 12, "expiry_year": 2099, "is_default": true}),
    )
    .await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["details"]["last4"], "4242");
    assert_eq!(m["details"]["brand"], "visa");
    assert!(!m.to_string().contains("4242424242424242"));
    let stored = count(
        &app,
        "SELECT count(*) FROM payment_methods WHERE details::text LIKE '%424242424242%'",
    )
    .await;
    assert_eq!(stored, 0, "the full number is never stored");
    let (s, b) = post(
        &app,
        "/api/v1/me/payment-methods",
        Some(&token),
        json!({
        "type": "credit_card", "name": "Typo", "card_number": "4242424242424241",
        "expiry_month": 12, "expiry_year": 2099}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    let (s, _) = post(
        &app,
        "/api/v1/me/payment-methods",
        Some(&token),
        json!({
        "type": "credit_card", "name": "Old", "card_number": "4242424242424242",
        "expiry_month": 1, "expiry_year": 2001}),
    )
    .await;
    assert_eq!(s, 422);
    let (s, _) = post(
        &app,
        "/api/v1/me/payment-methods",
        Some(&token),
        json!({
        "type": "credit_card", "name": "CVV", "card_number": "4242424242424242",
        "expiry_month": 1, "expiry_year": 2099, "cvv": "123"}),
    )
    .await;
    assert_eq!(s, 422, "unknown fields such as a CVV are refused");
    let (s, list) = get(&app, "/api/v1/me/payment-methods", Some(&token)).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let method_id = m["id"].as_str().unwrap();
    let (s, tx) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "20.00", "idempotency_key": "pm", "payment_method_id": method_id}),
    )
    .await;
    assert_eq!(s, 201, "{tx}");
    assert_eq!(tx["payment_method_id"], method_id);
    // Someone else's method cannot be used.
    let (_, other) = bettor(&app).await;
    let (s, b) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&other),
        json!({"amount": "20.00", "idempotency_key": "pm", "payment_method_id": method_id}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_contract_error(&b, "invalid_payment_method");
}

#[tokio::test]
async fn wallet_routes_need_a_session() {
    let app = spawn().await;
    for path in [
        "/api/v1/wallet",
        "/api/v1/wallet/transactions",
        "/api/v1/me/payment-methods",
    ] {
        let (s, b) = get(&app, path, None).await;
        assert_eq!(s, 401, "{path}");
        assert_contract_error(&b, "unauthorized");
    }
    let (s, _) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some("not-a-token"),
        json!({"amount": "5.00", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(s, 401);
}
