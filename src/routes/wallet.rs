//! Wallet endpoints: balance, deposits, withdrawals, history and payment methods.
//! Every balance change goes to the user's wallet shard (`crate::wallet`).
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Datelike, TimeZone, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db::audit::{self, Actor};
use crate::db::wallet::{self as wdb, BalanceRow, NewPaymentMethod, PaymentMethod, TxRecord};
use crate::domain::money::Money;
use crate::routes::error::{ApiError, ApiResult};
use crate::routes::json::Json;
use crate::routes::{self, accounts::client_ip};
use crate::state::AppState;
use crate::wallet::{MoveMoney, MoveOutcome, Movement, WalletError};

#[derive(OpenApi)]
#[openapi(
    paths(get_wallet, deposit, withdraw, transactions, list_methods, add_method),
    components(schemas(BalanceRow, TxRecord, PaymentMethod, MoneyBody, MethodBody)),
    tags((name = "wallet", description = "Balance, deposits, withdrawals, payment methods"))
)]
pub struct WalletDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(routes::resource("/api/v1/wallet").route(web::get().to(get_wallet)))
        .service(routes::resource("/api/v1/wallet/deposits").route(web::post().to(deposit)))
        .service(routes::resource("/api/v1/wallet/withdrawals").route(web::post().to(withdraw)))
        .service(routes::resource("/api/v1/wallet/transactions").route(web::get().to(transactions)))
        .service(
            routes::resource("/api/v1/me/payment-methods")
                .route(web::get().to(list_methods))
                .route(web::post().to(add_method)),
        );
}

#[utoipa::path(get, path = "/api/v1/wallet", tag = "wallet",
    responses((status = 200, body = BalanceRow), (status = 401)), security(("bearer" = [])))]
pub async fn get_wallet(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let client = state.db.get().await?;
    let mut balance = wdb::get_balance(&client, user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))?;
    // Stakes of bets in flight (e.g. held for an in-play delay) are pending: they are
    // neither spent nor available until their bet is accepted or refused.
    let held = state
        .wallet
        .shard_of(user.user_id)
        .send(crate::wallet::stakes::HeldStake {
            user_id: user.user_id,
        })
        .await
        .map_err(|_| ApiError::unavailable("wallet stopped"))?;
    balance.pending_balance += held.as_decimal();
    balance.pending_balance.rescale(2);
    Ok(HttpResponse::Ok().json(balance))
}

/// A deposit or withdrawal.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MoneyBody {
    /// Money string, > 0, at most 2 places, at most `wallet.amount_max`.
    #[schema(example = "25.00")]
    pub amount: String,
    /// 1 to 100 visible ASCII characters; the same key from the same user answers the
    /// first result, with another payload 409 `idempotency_key_reused`.
    pub idempotency_key: String,
    pub payment_method_id: Option<Uuid>,
    /// The currency of the amount; when given it must be the account's (fixed at
    /// registration), else 422 `currency_mismatch`.
    pub currency_code: Option<String>,
}

pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 100;

fn check_money(state: &AppState, b: &MoneyBody) -> Result<Money, ApiError> {
    let k = &b.idempotency_key;
    if k.is_empty()
        || k.len() > IDEMPOTENCY_KEY_BYTES_MAX
        || !k.bytes().all(|c| c.is_ascii_graphic())
    {
        return Err(
            ApiError::validation("idempotency_key: 1 to 100 visible ASCII characters")
                .with_details(json!({"field": "idempotency_key"})),
        );
    }
    let max = Money::parse(&state.settings.wallet.amount_max)
        .map_err(|e| ApiError::internal(format!("wallet.amount_max: {e}")))?;
    Money::parse_positive(&b.amount, max).map_err(|e| {
        ApiError::validation(format!("amount: {e}"))
            .with_details(json!({"field": "amount", "reason": e.code()}))
    })
}

async fn move_money(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: MoneyBody,
    movement: Movement,
) -> ApiResult<HttpResponse> {
    let amount = check_money(&state, &body)?;
    let (amount, scale) = in_account_currency(&state, &user, amount).await?;
    let fees = movement_fees(&state, &user, &body, movement, amount, scale).await?;
    let actor = Actor {
        user_id: Some(user.user_id),
        ip: client_ip(&req),
    };
    let gate = match movement {
        Movement::Deposit => crate::kyc::Gate::Deposit,
        Movement::Withdrawal => crate::kyc::Gate::Withdrawal,
    };
    let verification_required = state.settings.kyc.requires(gate);
    let answer = state
        .wallet
        .move_money(
            |reply| MoveMoney {
                user_id: user.user_id,
                movement,
                amount,
                idempotency_key: body.idempotency_key,
                payment_method_id: body.payment_method_id,
                actor,
                verification_required,
                fees,
                currency_code: body.currency_code,
                reply,
            },
            user.user_id,
        )
        .await;
    answer_movement(&state, movement, answer)
}

/// The fees of the movement by the body's payment method (which must be an active one of
/// the user's); a deposit must be worth more than its fee.
/// The amount as money of the account's currency: no more places than its scale, at most
/// the largest movement (`wallet.amount_max`, in the base currency) converted to it.
async fn in_account_currency(
    state: &AppState,
    user: &AuthUser,
    amount: Money,
) -> ApiResult<(Money, crate::domain::currency::Scale)> {
    let account_currency = {
        let client = state.db.get().await?;
        crate::db::users::restriction(&client, user.user_id)
            .await?
            .map(|r| r.currency_code)
            .ok_or_else(|| ApiError::not_found("account"))?
    };
    let currency = state.registry.currencies().of(&account_currency);
    let amount = crate::domain::currency::check_scale(amount, currency.scale).map_err(|e| {
        ApiError::validation(format!(
            "amount: {e} (the account's currency is {account_currency})"
        ))
        .with_details(json!({"field": "amount", "reason": e.code()}))
    })?;
    let max = Money::parse(&state.settings.wallet.amount_max)
        .map_err(|e| ApiError::internal(format!("wallet.amount_max: {e}")))?;
    let max = currency.from_base(max.as_decimal(), crate::domain::currency::Rounding::Down);
    if amount.as_decimal() > max {
        return Err(
            ApiError::validation(format!("amount: above the maximum {max}"))
                .with_details(json!({"field": "amount", "reason": "above_maximum"})),
        );
    }
    Ok((amount, currency.scale))
}

/// The fee of the movement (rounded at the account currency's `scale`).
async fn movement_fees(
    state: &AppState,
    user: &AuthUser,
    body: &MoneyBody,
    movement: Movement,
    amount: Money,
    scale: crate::domain::currency::Scale,
) -> ApiResult<Money> {
    let mut method_type = crate::wallet::fees::NO_METHOD.to_string();
    if let Some(method) = body.payment_method_id {
        let client = state.db.get().await?;
        method_type = wdb::payment_method_usable(&client, user.user_id, method)
            .await?
            .ok_or_else(|| {
                ApiError::validation("payment_method_id: not an active method of yours")
                    .with_code("invalid_payment_method")
            })?;
    }
    let fees =
        crate::wallet::fees::fee(&state.settings.fees, &method_type, movement, amount, scale);
    if movement == Movement::Deposit && fees >= amount {
        return Err(ApiError::validation(format!(
            "amount: the fee of this payment method is {fees:.2}; deposit more than that"
        ))
        .with_code("amount_below_fee")
        .with_details(json!({"field": "amount", "fees": format!("{fees:.2}")})));
    }
    Ok(fees)
}

/// Counts the movement by outcome and answers it: 201 with the transaction, or the
/// decline or refusal.
fn answer_movement(
    state: &AppState,
    movement: Movement,
    answer: Result<MoveOutcome, WalletError>,
) -> ApiResult<HttpResponse> {
    let outcome = match &answer {
        Err(WalletError::Busy | WalletError::Unavailable(_)) => "busy",
        Ok(MoveOutcome::Completed(_)) => "completed",
        Ok(MoveOutcome::Declined(_)) => "declined",
        Err(_) => "refused",
    };
    state
        .metrics
        .wallet_movements_total
        .with_label_values(&[movement.as_str(), outcome])
        .inc();
    match answer {
        Ok(MoveOutcome::Completed(tx)) => Ok(HttpResponse::Created().json(tx)),
        Ok(MoveOutcome::Declined(tx)) => Err(ApiError::validation("the payment was declined")
            .with_code("payment_declined")
            .with_details(json!({ "transaction": tx }))),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(post, path = "/api/v1/wallet/deposits", tag = "wallet", request_body = MoneyBody,
    responses((status = 201, body = TxRecord, description = "the completed transaction (also for a repeated key)"),
        (status = 403, description = "account_restricted (self-excluded, suspended, banned); verification_required ([kyc] required_before lists deposit)"),
        (status = 409, description = "idempotency_key_reused"),
        (status = 422, description = "validation_failed (also an amount with more places than the account's currency allows: reason too_many_decimal_places), invalid_payment_method, payment_declined (details.transaction), currency_mismatch (not the account's currency), amount_below_fee"),
        (status = 503, description = "busy, unavailable")), security(("bearer" = [])))]
pub async fn deposit(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: Json<MoneyBody>,
) -> ApiResult<HttpResponse> {
    move_money(state, user, req, body.into_inner(), Movement::Deposit).await
}

#[utoipa::path(post, path = "/api/v1/wallet/withdrawals", tag = "wallet", request_body = MoneyBody,
    responses((status = 201, body = TxRecord),
        (status = 403, description = "account_restricted; verification_required ([kyc] required_before lists withdrawal)"),
        (status = 409, description = "insufficient_funds, idempotency_key_reused"),
        (status = 422, description = "validation_failed (also more places than the account's currency allows), currency_mismatch, invalid_payment_method"),
        (status = 503)), security(("bearer" = [])))]
pub async fn withdraw(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: Json<MoneyBody>,
) -> ApiResult<HttpResponse> {
    move_money(state, user, req, body.into_inner(), Movement::Withdrawal).await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct Page {
    /// 1 to `wallet.transactions_page_max` (default 50).
    pub limit: Option<i64>,
    /// 0 to `wallet.transactions_offset_max`.
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/wallet/transactions", tag = "wallet", params(Page),
    responses((status = 200, body = [TxRecord], description = "newest first")), security(("bearer" = [])))]
pub async fn transactions(
    state: web::Data<AppState>,
    user: AuthUser,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let w = &state.settings.wallet;
    let limit = page.limit.unwrap_or(50.min(w.transactions_page_max));
    let offset = page.offset.unwrap_or(0);
    if !(1..=w.transactions_page_max).contains(&limit)
        || !(0..=w.transactions_offset_max).contains(&offset)
    {
        return Err(ApiError::validation(format!(
            "limit must be 1 to {}, offset 0 to {}",
            w.transactions_page_max, w.transactions_offset_max
        )));
    }
    let client = state.db.get().await?;
    let rows = wdb::list_transactions(&client, user.user_id, limit, offset).await?;
    Ok(HttpResponse::Ok().json(json!({ "transactions": rows, "limit": limit, "offset": offset })))
}

#[utoipa::path(get, path = "/api/v1/me/payment-methods", tag = "wallet",
    responses((status = 200, body = [PaymentMethod])), security(("bearer" = [])))]
pub async fn list_methods(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let client = state.db.get().await?;
    let rows = wdb::list_payment_methods(&client, user.user_id).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// A payment method. Cards need `card_number` (Luhn-checked; only brand and last 4
/// digits are kept), `expiry_month`, `expiry_year`; other types need `account_number`
/// (only its last 4 characters are kept). Never send a CVV: unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodBody {
    /// `credit_card`, `debit_card`, `bank_transfer`, `e_wallet` or `cryptocurrency`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub card_number: Option<String>,
    pub expiry_month: Option<u32>,
    pub expiry_year: Option<i32>,
    pub account_number: Option<String>,
    #[serde(default)]
    pub is_default: bool,
}

fn field_error(field: &str, message: &str) -> ApiError {
    ApiError::validation(format!("{field}: {message}")).with_details(json!({ "field": field }))
}

/// Masked details and expiry of a method, or why it is refused.
fn mask_method(
    b: &MethodBody,
) -> Result<(serde_json::Value, Option<chrono::DateTime<Utc>>), ApiError> {
    match b.kind.as_str() {
        "credit_card" | "debit_card" => {
            let raw = b
                .card_number
                .as_deref()
                .ok_or_else(|| field_error("card_number", "is required"))?;
            let digits: String = raw.chars().filter(|c| *c != ' ' && *c != '-').collect();
            if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(field_error("card_number", "must be 12 to 19 digits"));
            }
            if !crate::accounts::cards::luhn_valid(&digits) {
                return Err(field_error("card_number", "fails the Luhn check"));
            }
            let month = b
                .expiry_month
                .filter(|m| (1..=12).contains(m))
                .ok_or_else(|| field_error("expiry_month", "must be 1 to 12"))?;
            let year = b
                .expiry_year
                .filter(|y| (2000..=2100).contains(y))
                .ok_or_else(|| field_error("expiry_year", "must be a four-digit year"))?;
            let (ny, nm) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            let expires_at = Utc
                .with_ymd_and_hms(ny, nm, 1, 0, 0, 0)
                .single()
                .ok_or_else(|| field_error("expiry_year", "is not a date"))?;
            let now = Utc::now();
            if expires_at <= now || (year, month) < (now.year(), now.month()) {
                return Err(field_error("expiry_year", "the card has expired"));
            }
            let details = json!({
                "brand": crate::accounts::cards::brand(&digits),
                "last4": &digits[digits.len() - 4..],
                "exp_month": month,
                "exp_year": year,
            });
            Ok((details, Some(expires_at)))
        }
        "bank_transfer" | "e_wallet" | "cryptocurrency" => {
            let acct = b
                .account_number
                .as_deref()
                .ok_or_else(|| field_error("account_number", "is required"))?;
            if !(4..=64).contains(&acct.len()) || !acct.bytes().all(|c| c.is_ascii_alphanumeric()) {
                return Err(field_error(
                    "account_number",
                    "must be 4 to 64 letters or digits",
                ));
            }
            Ok((json!({ "last4": &acct[acct.len() - 4..] }), None))
        }
        _ => Err(field_error(
            "type",
            "must be credit_card, debit_card, bank_transfer, e_wallet or cryptocurrency",
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/me/payment-methods", tag = "wallet", request_body = MethodBody,
    responses((status = 201, body = PaymentMethod, description = "details masked"), (status = 409, description = "too_many_payment_methods"),
        (status = 422)), security(("bearer" = [])))]
pub async fn add_method(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: Json<MethodBody>,
) -> ApiResult<HttpResponse> {
    crate::accounts::validate::name("name", &body.name)?;
    let (details, expires_at) = mask_method(&body)?;
    let mut client = state.db.get().await?;
    let tx = client.transaction().await?;
    audit::set_actor(
        &tx,
        Actor {
            user_id: Some(user.user_id),
            ip: client_ip(&req),
        },
    )
    .await?;
    // Serializes this user's concurrent additions so the count check holds.
    crate::db::users::lock_user(&tx, user.user_id).await?;
    if wdb::count_payment_methods(&tx, user.user_id).await?
        >= state.settings.wallet.payment_methods_per_user_max
    {
        return Err(ApiError::conflict(
            "too_many_payment_methods",
            "remove a payment method first",
        ));
    }
    let method = wdb::insert_payment_method(
        &tx,
        &NewPaymentMethod {
            user_id: user.user_id,
            kind: &body.kind,
            name: &body.name,
            details,
            is_default: body.is_default,
            expires_at,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(method))
}
