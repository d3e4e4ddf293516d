//! Verification (KYC), issue 17: codes through the notifier's outbox, documents and the
//! support queue, the state machine's refusals, and `[kyc] required_before` binding
//! deposits, bets and withdrawals (each refusal proven to change nothing), against the
//! real server, Postgres and Redis.
mod bets_support;
mod common;
mod markets_support;
mod support_accounts;

use rust_decimal::Decimal;
use serde_json::{json, Value};
use support_accounts::{assert_contract_error, get, patch, post, staff};
use uuid::Uuid;
use winzo::kyc::Gate;

async fn spawn(adjust: impl FnOnce(&mut winzo::kyc::KycSettings)) -> common::TestApp {
    support_accounts::spawn_with(|s| adjust(&mut s.kyc)).await
}

/// The code of the last message of `template` sent to `user` (as a delivery worker reads it).
async fn last_code(app: &common::TestApp, user: Uuid, channel: &str) -> String {
    let row = app
        .db
        .client
        .query_one(
            "SELECT payload->>'code' FROM notifications
             WHERE user_id = $1 AND channel = $2 AND template = 'verification_code'
             ORDER BY created_at DESC LIMIT 1",
            &[&user, &channel],
        )
        .await
        .expect("a code was sent");
    row.get(0)
}

async fn q_i64(app: &common::TestApp, sql: &str, user: Uuid) -> i64 {
    app.db
        .client
        .query_one(sql, &[&user])
        .await
        .expect(sql)
        .get(0)
}

async fn verification(app: &common::TestApp, token: &str) -> Value {
    let (s, b) = get(app, "/api/v1/me/verification", Some(token)).await;
    assert_eq!(s, 200, "{b}");
    b
}

fn wrong(code: &str) -> String {
    if code == "000000" { "000001" } else { "000000" }.to_string()
}

#[tokio::test]
async fn an_email_code_goes_through_the_outbox_is_stored_hashed_and_verifies_the_email() {
    let app = spawn(|_| {}).await;
    let (id, token) = support_accounts::bettor(&app).await;
    let (s, b) = post(
        &app,
        "/api/v1/me/verification/email",
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let code = last_code(&app, id, "email").await;
    assert!(
        code.len() == 6 && code.bytes().all(|c| c.is_ascii_digit()),
        "{code}"
    );
    let row = app
        .db
        .client
        .query_one(
            "SELECT n.recipient, n.sent_at IS NULL, u.email, octet_length(c.code_hash),
                    c.code_hash = convert_to($2, 'UTF8')
             FROM notifications n JOIN users u ON u.id = n.user_id
             JOIN verification_codes c ON c.user_id = u.id AND c.channel = 'email'
             WHERE n.user_id = $1",
            &[&id, &code],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        row.get::<_, String>(2),
        "sent to the email"
    );
    assert!(row.get::<_, bool>(1), "waiting for the delivery worker");
    assert_eq!(row.get::<_, i32>(3), 32, "a SHA-256 is stored");
    assert!(!row.get::<_, bool>(4), "not the code itself");

    let confirm = "/api/v1/me/verification/email/confirm";
    let (s, b) = post(&app, confirm, Some(&token), json!({"code": wrong(&code)})).await;
    assert_eq!(s, 422, "{b}");
    assert_contract_error(&b, "invalid_code");
    assert_eq!(verification(&app, &token).await["email_verified"], false);

    let (s, b) = post(&app, confirm, Some(&token), json!({"code": code})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["email_verified"], true);
    assert_eq!(b["phone_verified"], false);
    let left = q_i64(
        &app,
        "SELECT count(*) FROM verification_codes WHERE user_id = $1",
        id,
    )
    .await;
    assert_eq!(left, 0, "a used code is gone");
    let (s, b) = post(&app, confirm, Some(&token), json!({"code": code})).await;
    assert_eq!(s, 422, "a code works once: {b}");
    let (s, b) = post(
        &app,
        "/api/v1/me/verification/email",
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_contract_error(&b, "already_verified");
}

#[tokio::test]
async fn resending_is_throttled_and_only_the_newest_code_lives() {
    let app = spawn(|k| k.code_resend_interval_s = 3600).await;
    let (id, token) = support_accounts::bettor(&app).await;
    let send = "/api/v1/me/verification/email";
    assert_eq!(post(&app, send, Some(&token), json!({})).await.0, 202);
    let res = app
        .http
        .post(app.url(send))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 3500 && retry <= 3601, "{retry}");
    let sent = q_i64(
        &app,
        "SELECT count(*) FROM notifications WHERE user_id = $1",
        id,
    )
    .await;
    assert_eq!(sent, 1, "a throttled request sends nothing");

    // Without the throttle, a second code replaces the first.
    let app = spawn(|k| k.code_resend_interval_s = 0).await;
    let (id, token) = support_accounts::bettor(&app).await;
    assert_eq!(post(&app, send, Some(&token), json!({})).await.0, 202);
    let first = last_code(&app, id, "email").await;
    assert_eq!(post(&app, send, Some(&token), json!({})).await.0, 202);
    let second = last_code(&app, id, "email").await;
    let live = q_i64(
        &app,
        "SELECT count(*) FROM verification_codes WHERE user_id = $1",
        id,
    )
    .await;
    assert_eq!(live, 1, "one live code per channel");
    let confirm = "/api/v1/me/verification/email/confirm";
    if first != second {
        let (s, b) = post(&app, confirm, Some(&token), json!({"code": first})).await;
        assert_eq!(s, 422, "the replaced code is dead: {b}");
    }
    let (s, b) = post(&app, confirm, Some(&token), json!({"code": second})).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn too_many_wrong_codes_is_429_even_for_the_right_one() {
    let app = spawn(|k| {
        k.code_attempts_max = 2;
        k.code_resend_interval_s = 0;
    })
    .await;
    let (id, token) = support_accounts::bettor(&app).await;
    post(
        &app,
        "/api/v1/me/verification/email",
        Some(&token),
        json!({}),
    )
    .await;
    let code = last_code(&app, id, "email").await;
    let confirm = "/api/v1/me/verification/email/confirm";
    for _ in 0..2 {
        let (s, b) = post(&app, confirm, Some(&token), json!({"code": wrong(&code)})).await;
        assert_eq!(s, 422, "{b}");
    }
    let (s, b) = post(&app, confirm, Some(&token), json!({"code": code})).await;
    assert_eq!(s, 429, "{b}");
    assert_contract_error(&b, "too_many_attempts");
    assert_eq!(verification(&app, &token).await["email_verified"], false);
    // Not shaped like a code: refused the same way, never a 500.
    let (s, _) = post(&app, confirm, Some(&token), json!({"code": "12a"})).await;
    assert_eq!(s, 429);
    // A new code starts again.
    post(
        &app,
        "/api/v1/me/verification/email",
        Some(&token),
        json!({}),
    )
    .await;
    let code = last_code(&app, id, "email").await;
    let (s, b) = post(&app, confirm, Some(&token), json!({"code": code})).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn an_expired_code_is_invalid() {
    let app = spawn(|k| k.code_ttl_s = 0).await;
    let (id, token) = support_accounts::bettor(&app).await;
    post(
        &app,
        "/api/v1/me/verification/email",
        Some(&token),
        json!({}),
    )
    .await;
    let code = last_code(&app, id, "email").await;
    let (s, b) = post(
        &app,
        "/api/v1/me/verification/email/confirm",
        Some(&token),
        json!({"code": code}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_contract_error(&b, "invalid_code");
    assert_eq!(verification(&app, &token).await["email_verified"], false);
}

#[tokio::test]
async fn a_phone_code_needs_a_number_and_goes_to_it() {
    let app = spawn(|_| {}).await;
    let (id, token) = support_accounts::bettor(&app).await;
    let send = "/api/v1/me/verification/phone";
    let (s, b) = post(&app, send, Some(&token), json!({})).await;
    assert_eq!(s, 422, "{b}");
    assert_contract_error(&b, "phone_missing");
    let sent = q_i64(
        &app,
        "SELECT count(*) FROM notifications WHERE user_id = $1",
        id,
    )
    .await;
    assert_eq!(sent, 0);
    let (s, b) = patch(
        &app,
        "/api/v1/me/profile",
        Some(&token),
        json!({"phone": "+44 7700 900123"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(post(&app, send, Some(&token), json!({})).await.0, 202);
    let recipient: String = app
        .db
        .client
        .query_one(
            "SELECT recipient FROM notifications WHERE user_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recipient, "+44 7700 900123");
    let code = last_code(&app, id, "phone").await;
    let (s, b) = post(
        &app,
        "/api/v1/me/verification/phone/confirm",
        Some(&token),
        json!({"code": code}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["phone_verified"], true);
    assert_eq!(b["email_verified"], false);
    // The same number again keeps it verified; another number is not verified.
    patch(
        &app,
        "/api/v1/me/profile",
        Some(&token),
        json!({"phone": "+44 7700 900123"}),
    )
    .await;
    assert_eq!(verification(&app, &token).await["phone_verified"], true);
    patch(
        &app,
        "/api/v1/me/profile",
        Some(&token),
        json!({"phone": "+44 7700 900999"}),
    )
    .await;
    assert_eq!(verification(&app, &token).await["phone_verified"], false);
    let (s, _) = post(&app, "/api/v1/me/verification/fax", Some(&token), json!({})).await;
    assert_eq!(s, 404);
}

fn passport(reference: &str) -> Value {
    json!({"document_type": "passport", "reference": reference})
}

#[tokio::test]
async fn documents_wait_in_the_queue_oldest_first_and_decisions_are_audited_and_notified() {
    let app = spawn(|_| {}).await;
    let (first, first_token) = support_accounts::bettor(&app).await;
    let (second, second_token) = support_accounts::bettor(&app).await;
    let (reviewer, support) = staff(&app, "support").await;
    let docs = "/api/v1/me/verification/documents";
    let (s, b) = post(&app, docs, Some(&first_token), passport("store-1")).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["verification_status"], "pending");
    let (s, _) = post(&app, docs, Some(&second_token), passport("store-2")).await;
    assert_eq!(s, 201);
    // More documents keep the first place in the queue.
    let (s, b) = post(
        &app,
        docs,
        Some(&first_token),
        json!({"document_type": "proof_of_address", "reference": "store-3"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["documents"].as_array().unwrap().len(), 2);
    let (s, b) = post(
        &app,
        docs,
        Some(&first_token),
        json!({"document_type": "selfie", "reference": "x"}),
    )
    .await;
    assert_eq!(s, 422, "{b}");

    let (s, b) = get(&app, "/api/v1/support/verifications", Some(&first_token)).await;
    assert_eq!(s, 403, "bettors do not see the queue: {b}");
    let (s, b) = get(
        &app,
        "/api/v1/support/verifications?status=pending",
        Some(&support),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let queue: Vec<String> = b["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        queue,
        vec![first.to_string(), second.to_string()],
        "oldest first"
    );

    let decide = format!("/api/v1/support/verifications/{first}");
    let (s, b) = post(
        &app,
        &decide,
        Some(&support),
        json!({"decision": "rejected"}),
    )
    .await;
    assert_eq!(s, 422, "a rejection needs a reason: {b}");
    let (s, b) = post(
        &app,
        &decide,
        Some(&first_token),
        json!({"decision": "verified"}),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        verification(&app, &first_token).await["verification_status"],
        "pending"
    );

    let (s, b) = post(
        &app,
        &decide,
        Some(&support),
        json!({"decision": "rejected", "reason": "the photo is unreadable"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["verification_status"], "rejected");
    assert_eq!(b["reason"], "the photo is unreadable");
    assert_eq!(b["reviewed_by"], reviewer.to_string());
    let audited: i64 = app
        .db
        .client
        .query_one(
            "SELECT count(*) FROM audit_log WHERE table_name = 'user_profiles' AND record_id = $1
               AND user_id = $2 AND new_values->>'verification_status' = 'rejected'",
            &[&first, &reviewer],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 1, "the decision is audited with its reviewer");
    let notified = q_i64(
        &app,
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND template = 'verification_rejected'
           AND payload->>'reason' = 'the photo is unreadable'",
        first,
    )
    .await;
    assert_eq!(notified, 1);

    // Deciding a profile that is not pending is refused.
    let (s, b) = post(
        &app,
        &decide,
        Some(&support),
        json!({"decision": "verified"}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_contract_error(&b, "invalid_transition");

    // A rejected bettor submits again, goes to the back of the queue, and is verified.
    let (s, _) = post(&app, docs, Some(&first_token), passport("store-4")).await;
    assert_eq!(s, 201);
    let (_, b) = get(&app, "/api/v1/support/verifications", Some(&support)).await;
    assert_eq!(b["entries"][0]["user_id"], second.to_string());
    assert_eq!(b["entries"][1]["user_id"], first.to_string());
    let (s, b) = post(
        &app,
        &decide,
        Some(&support),
        json!({"decision": "verified"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["verification_status"], "verified");
    let notified = q_i64(
        &app,
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND template = 'verification_verified'",
        first,
    )
    .await;
    assert_eq!(notified, 1);
    let (s, b) = post(&app, docs, Some(&first_token), passport("store-5")).await;
    assert_eq!(s, 409, "a verified profile takes no more documents: {b}");
    assert_contract_error(&b, "invalid_transition");
    let missing = format!("/api/v1/support/verifications/{}", Uuid::new_v4());
    let (s, _) = post(
        &app,
        &missing,
        Some(&support),
        json!({"decision": "verified"}),
    )
    .await;
    assert_eq!(s, 404);
}

/// Balance, transactions and bets of `user`: what a refused action must leave as it was.
async fn footprint(app: &common::TestApp, user: Uuid) -> (Decimal, i64, i64) {
    let r = app
        .db
        .client
        .query_one(
            "SELECT (SELECT balance FROM user_balances WHERE user_id = $1),
                    (SELECT count(*) FROM transactions WHERE user_id = $1),
                    (SELECT count(*) FROM bets WHERE user_id = $1)",
            &[&user],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// A deposit or withdrawal (`kind`: `deposits` or `withdrawals`) with a fresh key.
async fn move_money(app: &common::TestApp, token: &str, kind: &str, amount: &str) -> (u16, Value) {
    let body = json!({"amount": amount, "idempotency_key": Uuid::new_v4().to_string()});
    post(app, &format!("/api/v1/wallet/{kind}"), Some(token), body).await
}

#[tokio::test]
async fn required_before_refuses_each_action_with_verification_required_and_changes_nothing() {
    let app = spawn(|k| k.required_before = vec![Gate::Deposit, Gate::Bet, Gate::Withdrawal]).await;
    let (_, trader) = staff(&app, "moderator").await;
    let (_, support) = staff(&app, "support").await;
    let book = markets_support::create_book(&app.http, &app.address, &trader).await;
    let selection = book.selections[0][0];
    let (id, token) = bets_support::bettor(&app.db.client, Decimal::new(10000, 2)).await;
    let before = footprint(&app, id).await;

    let (s, b) = move_money(&app, &token, "deposits", "10.00").await;
    assert_eq!(s, 403, "{b}");
    assert_contract_error(&b, "verification_required");
    assert_eq!(b["error"]["details"]["action"], "deposit");
    assert_eq!(footprint(&app, id).await, before);

    let (s, b) = move_money(&app, &token, "withdrawals", "10.00").await;
    assert_eq!(s, 403, "{b}");
    assert_contract_error(&b, "verification_required");
    assert_eq!(footprint(&app, id).await, before);

    let bet = |key: &str| {
        let mut b = bets_support::single(selection, "2.0000", "5.00", key);
        b["odds_change"] = json!("any");
        b
    };
    let (s, b) = bets_support::place(&app, &token, &bet("k1")).await;
    assert_eq!(s, 403, "{b}");
    assert_contract_error(&b, "verification_required");
    assert_eq!(footprint(&app, id).await, before);
    let (_, liability) = get(
        &app,
        &format!("/api/v1/trading/markets/{}/liability", book.markets[0]),
        Some(&trader),
    )
    .await;

    // Verified: the decision reaches the wallet shard that cached "unverified" at once.
    let (s, _) = post(
        &app,
        "/api/v1/me/verification/documents",
        Some(&token),
        passport("p"),
    )
    .await;
    assert_eq!(s, 201);
    let (s, b) = post(
        &app,
        &format!("/api/v1/support/verifications/{id}"),
        Some(&support),
        json!({"decision": "verified"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = bets_support::place(&app, &token, &bet("k1")).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = move_money(&app, &token, "deposits", "10.00").await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = move_money(&app, &token, "withdrawals", "10.00").await;
    assert_eq!(s, 201, "{b}");
    let (_, after) = get(
        &app,
        &format!("/api/v1/trading/markets/{}/liability", book.markets[0]),
        Some(&trader),
    )
    .await;
    assert_ne!(
        liability, after,
        "the refused bet had reserved nothing; this one did"
    );
}

#[tokio::test]
async fn by_default_only_withdrawals_need_verification() {
    let defaults = winzo::config::load_for("no-such-profile").expect("base settings");
    assert_eq!(defaults.kyc.required_before, vec![Gate::Withdrawal]);
    let app = spawn(|k| k.required_before = defaults.kyc.required_before.clone()).await;
    let (_, token) = support_accounts::bettor(&app).await;
    let (s, b) = move_money(&app, &token, "deposits", "20.00").await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = move_money(&app, &token, "withdrawals", "5.00").await;
    assert_eq!(s, 403, "{b}");
    assert_contract_error(&b, "verification_required");
}
