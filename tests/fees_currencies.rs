//! Fees and currencies, issue 17: deposit and withdrawal fees per payment method type
//! (`amount`, `fees`, the generated `net_amount`; the balance moves by the net amount),
//! deposits in another currency refused with `currency_mismatch`, each refusal changing
//! nothing, and `winzo check-ledger` clean afterwards.
mod common;
mod support_accounts;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use support_accounts::{assert_contract_error, post};
use uuid::Uuid;
use winzo::wallet::fees::{FeeRule, MethodFees, NO_METHOD};

fn rule(fixed: Decimal, percent: Decimal, min: Decimal) -> FeeRule {
    FeeRule {
        fixed,
        percent,
        min,
    }
}

async fn spawn() -> common::TestApp {
    support_accounts::spawn_with(|s| {
        s.fees.insert(
            "credit_card".into(),
            MethodFees {
                deposit: rule(dec!(0.30), dec!(2.5), dec!(1.00)),
                withdrawal: FeeRule::default(),
            },
        );
        s.fees.insert(
            NO_METHOD.into(),
            MethodFees {
                deposit: rule(dec!(0), dec!(0), dec!(0.50)),
                withdrawal: rule(dec!(1.00), dec!(0), dec!(0)),
            },
        );
    })
    .await
}

/// Balance and transaction count: what a refusal must leave as it was.
async fn footprint(app: &common::TestApp, user: Uuid) -> (Decimal, i64) {
    let r = app
        .db
        .client
        .query_one(
            "SELECT (SELECT balance FROM user_balances WHERE user_id = $1),
                    (SELECT count(*) FROM transactions WHERE user_id = $1)",
            &[&user],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

async fn money(app: &common::TestApp, token: &str, kind: &str, body: Value) -> (u16, Value) {
    let mut body = body;
    body["idempotency_key"] = json!(Uuid::new_v4().to_string());
    post(app, &format!("/api/v1/wallet/{kind}"), Some(token), body).await
}

async fn ledger_is_clean(app: &common::TestApp) {
    let violations = winzo::ledger_check::check_database(&app.settings.database)
        .await
        .expect("check-ledger");
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test]
async fn a_card_deposit_pays_its_fee_and_the_balance_moves_by_the_net_amount() {
    let app = spawn().await;
    let (id, token) = support_accounts::bettor(&app).await;
    let (s, b) = post(
        &app,
        "/api/v1/me/payment-methods",
        Some(&token),
        json!({"type": "credit_card", "name": "Visa", "card_number": "4242 4242 4242 4242",
               "expiry_month": 12, "expiry_year": 2099}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let card = b["id"].as_str().unwrap().to_string();
    let (s, b) = money(
        &app,
        &token,
        "deposits",
        json!({"amount": "100.00", "payment_method_id": card}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["amount"], "100.00");
    assert_eq!(b["fees"], "2.80", "0.30 + 2.5 %");
    assert_eq!(b["net_amount"], "97.20");
    assert_eq!(footprint(&app, id).await.0, dec!(97.20));
    // Below the minimum: the minimum.
    let (s, b) = money(
        &app,
        &token,
        "deposits",
        json!({"amount": "10.00", "payment_method_id": card}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["fees"], "1.00");
    assert_eq!(footprint(&app, id).await.0, dec!(106.20));
    let (s, w) = support_accounts::get(&app, "/api/v1/wallet", Some(&token)).await;
    assert_eq!(s, 200);
    assert_eq!(w["balance"], "106.20");
    ledger_is_clean(&app).await;
}

#[tokio::test]
async fn a_withdrawal_fee_is_debited_with_the_amount_and_must_be_covered() {
    let app = spawn().await;
    let (id, token) = support_accounts::bettor(&app).await;
    let (s, b) = money(&app, &token, "deposits", json!({"amount": "50.50"})).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["fees"], "0.50");
    assert_eq!(footprint(&app, id).await.0, dec!(50.00));
    let (s, b) = money(&app, &token, "withdrawals", json!({"amount": "10.00"})).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["amount"], "-10.00");
    assert_eq!(b["fees"], "1.00");
    assert_eq!(b["net_amount"], "-11.00");
    assert_eq!(footprint(&app, id).await.0, dec!(39.00));

    // 39.00 plus its 1.00 fee is more than the balance: refused, nothing changed.
    let before = footprint(&app, id).await;
    let (s, b) = money(&app, &token, "withdrawals", json!({"amount": "39.00"})).await;
    assert_eq!(s, 409, "{b}");
    assert_contract_error(&b, "insufficient_funds");
    assert_eq!(footprint(&app, id).await, before);
    let (s, b) = money(&app, &token, "withdrawals", json!({"amount": "38.00"})).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(footprint(&app, id).await.0, dec!(0.00));
    ledger_is_clean(&app).await;
}

#[tokio::test]
async fn a_deposit_no_larger_than_its_fee_is_refused_and_changes_nothing() {
    let app = spawn().await;
    let (id, token) = support_accounts::bettor(&app).await;
    let before = footprint(&app, id).await;
    let (s, b) = money(&app, &token, "deposits", json!({"amount": "0.50"})).await;
    assert_eq!(s, 422, "{b}");
    assert_contract_error(&b, "amount_below_fee");
    assert_eq!(footprint(&app, id).await, before);
}

#[tokio::test]
async fn a_deposit_in_another_currency_is_refused_and_changes_nothing() {
    let app = spawn().await;
    let (id, token) = support_accounts::bettor(&app).await;
    let before = footprint(&app, id).await;
    let (s, b) = money(
        &app,
        &token,
        "deposits",
        json!({"amount": "20.00", "currency_code": "EUR"}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_contract_error(&b, "currency_mismatch");
    assert_eq!(b["error"]["details"]["currency_code"], "USD");
    assert_eq!(footprint(&app, id).await, before);
    let (s, b) = money(
        &app,
        &token,
        "deposits",
        json!({"amount": "20.00", "currency_code": "USD"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["currency_code"], "USD");
    ledger_is_clean(&app).await;
}
