//! The one mapping from every service and owner error to the contract's error body. Only
//! the adapters build `ApiError`: the routes through these `From` impls, the WebSocket
//! adapter through the same impls (then framed as `error` messages).
use actix_web::http::StatusCode;
use serde_json::json;

use super::error::ApiError;
use crate::accounts::register::RegisterError;
use crate::accounts::validate::Invalid;
use crate::actors::errors::{LegRejection, MarketError};
use crate::actors::writer::NotDurable;
use crate::actors::{AskError, LoadError};
use crate::app::bonus::BonusError;
use crate::app::events::EventError;
use crate::app::kyc::KycError;
use crate::app::markets::MarketsError;
use crate::auth::password::pool::PoolError as PasswordPoolError;
use crate::auth::AuthError;
use crate::bets::error::PlaceError;
use crate::domain::MarginError;
use crate::settlement::error::SettlementError;
use crate::wallet::WalletError;

/// 403 `verification_required`: `[kyc] required_before` lists `action`.
fn verification_required(action: &str) -> ApiError {
    ApiError::forbidden(format!(
        "a verified profile is required before any {action}"
    ))
    .with_code("verification_required")
    .with_details(json!({"action": action}))
}

impl From<AskError> for ApiError {
    fn from(e: AskError) -> ApiError {
        match e {
            AskError::Busy => ApiError::busy("the market"),
            AskError::Gone => ApiError::conflict("market_closed", "the market is no longer live"),
        }
    }
}

impl From<LoadError> for ApiError {
    fn from(e: LoadError) -> ApiError {
        tracing::warn!(error = %e, "loading live state");
        ApiError::unavailable("live state could not be loaded; retry shortly")
    }
}

impl From<PlaceError> for ApiError {
    fn from(e: PlaceError) -> ApiError {
        let msg = e.to_string();
        match e {
            PlaceError::Invalid(m) => ApiError::validation(m),
            PlaceError::Rule(rule) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                rule.code(),
                rule.to_string(),
            ),
            PlaceError::Leg(leg) => leg.into(),
            PlaceError::Restricted(why) => ApiError::forbidden(why).with_code("account_restricted"),
            PlaceError::VerificationRequired => verification_required("bet"),
            PlaceError::InsufficientFunds { available } => {
                ApiError::conflict("insufficient_funds", msg)
                    .with_details(json!({ "available": available }))
            }
            PlaceError::LimitExceeded {
                period,
                cap,
                staked,
            } => ApiError::conflict("limit_exceeded", msg)
                .with_details(json!({ "period": period, "limit": cap, "staked": staked })),
            PlaceError::BonusNotEligible(why) => {
                ApiError::conflict("bonus_not_eligible", msg).with_details(json!({ "reason": why }))
            }
            PlaceError::FreeBetNotEligible(why) => ApiError::conflict("free_bet_not_eligible", msg)
                .with_details(json!({ "reason": why })),
            PlaceError::KeyReused => ApiError::conflict("idempotency_key_reused", msg),
            PlaceError::DuplicateKey => ApiError::conflict("duplicate_key", msg),
            PlaceError::Refused => ApiError::conflict("bet_refused", msg),
            PlaceError::Busy(what) => ApiError::busy(what),
            PlaceError::Unavailable(m) => ApiError::unavailable(m),
        }
    }
}

impl From<MarketError> for ApiError {
    fn from(e: MarketError) -> ApiError {
        let msg = e.to_string();
        match e {
            MarketError::InvalidTransition(t) => ApiError::conflict("invalid_transition", msg)
                .with_details(json!({"from": t.from, "command": t.command})),
            MarketError::InvalidEventTransition(t) => ApiError::conflict("invalid_transition", msg)
                .with_details(json!({"from": t.from, "to": t.to})),
            MarketError::Suspended => ApiError::conflict("market_suspended", msg),
            MarketError::Closed(_) => ApiError::conflict("market_closed", msg),
            MarketError::UnknownSelection(id) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_selection", msg)
                    .with_details(json!({"selection_id": id}))
            }
            MarketError::Margin(MarginError::BelowFloor { margin, floor }) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "margin_below_floor", msg)
                    .with_details(json!({"margin": margin, "floor": floor}))
            }
            MarketError::Margin(MarginError::NoPrices) | MarketError::Validation(_) => {
                ApiError::validation(msg)
            }
            MarketError::Busy => ApiError::busy("the market"),
        }
    }
}

impl From<LegRejection> for ApiError {
    fn from(e: LegRejection) -> ApiError {
        let msg = e.to_string();
        let details = match &e {
            LegRejection::OddsChanged { current } => json!({"current_odds": current}),
            LegRejection::StakeTooLow { min } => json!({"min_stake": min}),
            LegRejection::StakeTooHigh { max } => json!({"max_stake": max}),
            _ => json!({}),
        };
        let status = match e {
            LegRejection::Busy => return ApiError::busy("the market"),
            LegRejection::UnknownSelection
            | LegRejection::StakeTooLow { .. }
            | LegRejection::StakeTooHigh { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::CONFLICT,
        };
        ApiError::new(status, e.code(), msg).with_details(details)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Invalid => ApiError::unauthorized(e.to_string()),
            AuthError::Unreachable => ApiError::unavailable(e.to_string()),
        }
    }
}

/// The one mapping of wallet refusals to the contract (docs/accounts.md).
impl From<WalletError> for ApiError {
    fn from(e: WalletError) -> ApiError {
        match e {
            WalletError::InsufficientFunds { available } => {
                ApiError::conflict("insufficient_funds", "amount exceeds the available balance")
                    .with_details(json!({ "available": available.to_string() }))
            }
            WalletError::KeyReused => ApiError::conflict(
                "idempotency_key_reused",
                "this idempotency_key was used with another payload",
            ),
            WalletError::Restricted(why) => {
                ApiError::forbidden(why).with_code("account_restricted")
            }
            WalletError::VerificationRequired(action) => verification_required(action),
            WalletError::CurrencyMismatch { account } => ApiError::validation(format!(
                "currency_code: the account's currency is {account}, fixed at registration"
            ))
            .with_code("currency_mismatch")
            .with_details(json!({"field": "currency_code", "currency_code": account})),
            WalletError::UnknownUser => ApiError::unauthorized("account no longer exists"),
            WalletError::Db(err) => {
                tracing::warn!(error = %format!("{err:#}"), "wallet write failed");
                ApiError::unavailable("the wallet cannot take money right now; retry shortly")
            }
            WalletError::Busy => ApiError::busy("the wallet"),
            WalletError::Unavailable(why) => ApiError::unavailable(why),
        }
    }
}

impl From<NotDurable> for ApiError {
    fn from(_: NotDurable) -> ApiError {
        ApiError::unavailable("the change could not be made durable in time; retry")
    }
}

impl From<SettlementError> for ApiError {
    fn from(e: SettlementError) -> ApiError {
        match e {
            SettlementError::NotFound(what) => ApiError::not_found(what),
            SettlementError::Invalid {
                message,
                code,
                details,
            } => {
                let err = ApiError::validation(message).with_details(details);
                match code {
                    Some(code) => err.with_code(code),
                    None => err,
                }
            }
            SettlementError::Conflict { code, message } => ApiError::conflict(code, message),
            SettlementError::Market(m) => m.into(),
            SettlementError::Ask(a) => a.into(),
            SettlementError::Load(l) => l.into(),
            SettlementError::NotDurable(n) => n.into(),
            SettlementError::Db(why) => {
                tracing::warn!(error = %why, "settlement: database error");
                ApiError::unavailable("the database is unavailable; retry shortly")
            }
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> ApiError {
        ApiError::validation(e.message)
            .with_code(e.code)
            .with_details(e.details)
    }
}

impl From<PasswordPoolError> for ApiError {
    fn from(e: PasswordPoolError) -> ApiError {
        match e {
            PasswordPoolError::Busy => ApiError::busy("password checking"),
            PasswordPoolError::Stopped => ApiError::unavailable(e.to_string()),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> ApiError {
        match e {
            RegisterError::Invalid(i) => i.into(),
            RegisterError::UsernameTaken => ApiError::conflict("username_taken", e.to_string())
                .with_details(json!({"field": "username"})),
            RegisterError::EmailTaken => ApiError::conflict("email_taken", e.to_string())
                .with_details(json!({"field": "email"})),
            RegisterError::Busy(p) => p.into(),
            RegisterError::Db(why) => {
                tracing::warn!(error = %why, "registering an account");
                ApiError::unavailable("the database is unavailable; retry shortly")
            }
        }
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> ApiError {
        match e {
            EventError::NotFound => ApiError::not_found("event"),
            EventError::Over => ApiError::conflict("invalid_transition", "the event is over"),
            EventError::Refused(m) => m.into(),
            EventError::Ask(a) => a.into(),
            EventError::Load(l) => l.into(),
            EventError::NotDurable(n) => n.into(),
            EventError::Busy => ApiError::busy("a market"),
            EventError::Void(v) => v.into(),
        }
    }
}

impl From<MarketsError> for ApiError {
    fn from(e: MarketsError) -> ApiError {
        match e {
            MarketsError::NotFound => ApiError::not_found("live market"),
            MarketsError::Refused(m) => m.into(),
            MarketsError::Ask(a) => a.into(),
            MarketsError::Load(l) => l.into(),
            MarketsError::NotDurable(n) => n.into(),
            MarketsError::Db(why) => {
                tracing::warn!(error = %why, "market action: database error");
                ApiError::unavailable("the database is unavailable; retry shortly")
            }
            MarketsError::Invalid(why) => ApiError::validation(why),
            MarketsError::EventNotFound => ApiError::not_found("live event"),
            MarketsError::Write(err) => write_error(err),
        }
    }
}

/// Database errors of creates: duplicates 409, unknown references and checks 422.
pub fn write_error(err: anyhow::Error) -> ApiError {
    if let Some(pg) = err.downcast_ref::<tokio_postgres::Error>() {
        if let Some(db) = pg.as_db_error() {
            let constraint = db.constraint().unwrap_or_default().to_string();
            let details = json!({"constraint": constraint});
            return match db.code().code() {
                "23505" => ApiError::conflict("already_exists", "an equal record already exists")
                    .with_details(details),
                "23503" => {
                    ApiError::validation("a referenced record does not exist").with_details(details)
                }
                "23514" | "23502" | "22001" | "22P02" => {
                    ApiError::validation(format!("refused by the database: {}", db.message()))
                        .with_details(details)
                }
                _ => ApiError::internal(format!("{err:#}")),
            };
        }
        tracing::warn!(error = %pg, "database failure");
        return ApiError::unavailable("database unavailable; retry shortly");
    }
    ApiError::internal(format!("{err:#}"))
}

impl From<KycError> for ApiError {
    fn from(e: KycError) -> ApiError {
        let msg = e.to_string();
        match e {
            KycError::Invalid(i) => i.into(),
            KycError::InvalidCode => ApiError::validation(msg).with_code("invalid_code"),
            KycError::TooManyAttempts { retry_after_s } => {
                let mut err = ApiError::rate_limited(retry_after_s);
                err.code = "too_many_attempts";
                err.message = msg;
                err
            }
            KycError::ResendThrottled { retry_after_s } => ApiError::rate_limited(retry_after_s),
            KycError::NoPhone => ApiError::validation(msg)
                .with_code("phone_missing")
                .with_details(json!({"field": "phone"})),
            KycError::AlreadyVerified(channel) => ApiError::conflict("already_verified", msg)
                .with_details(json!({"channel": channel})),
            KycError::Transition(t) => ApiError::conflict("invalid_transition", msg)
                .with_details(json!({"from": t.from, "command": t.command})),
            KycError::NotFound => ApiError::not_found("account"),
            KycError::Notify(why) => {
                tracing::warn!(error = %why, "notifier refused a message");
                ApiError::unavailable("the message could not be sent; retry shortly")
            }
            KycError::Controls(c) => super::controls_error(c),
            KycError::Db(why) => {
                tracing::warn!(error = %why, "verification: database error");
                ApiError::unavailable("the database is unavailable; retry shortly")
            }
        }
    }
}

impl From<crate::app::accounts::AccountError> for ApiError {
    fn from(e: crate::app::accounts::AccountError) -> Self {
        use crate::app::accounts::AccountError as E;
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::RoleBoundary(why) => ApiError::forbidden(why).with_code("role_boundary"),
            E::SelfExclusionActive(until) => ApiError::conflict(
                "self_exclusion_active",
                "a longer self-exclusion is in force; it cannot be shortened",
            )
            .with_details(json!({ "self_excluded_until": until })),
            E::CurrencyFixed(currency) => ApiError::conflict(
                "currency_fixed",
                format!("the account's currency is {currency}, fixed at registration"),
            )
            .with_details(json!({"field": "currency_code", "currency_code": currency})),
            E::Invalid(invalid) => invalid.into(),
            E::NotHandedOn(err) => crate::routes::controls_error(err),
            E::Db(why) => {
                tracing::warn!(error = %why, "account change: database error");
                ApiError::unavailable("the database is unavailable; retry shortly")
            }
        }
    }
}

impl From<crate::app::catalogue::CatalogueError> for ApiError {
    fn from(e: crate::app::catalogue::CatalogueError) -> Self {
        use crate::app::catalogue::CatalogueError as E;
        match e {
            E::Invalid(msg) => ApiError::validation(msg),
            E::Write(err) => write_error(err),
            E::Db(why) => {
                tracing::warn!(error = %why, "catalogue: database error");
                ApiError::unavailable("the database is unavailable; retry shortly")
            }
        }
    }
}

impl From<crate::app::cashout::CashOutError> for ApiError {
    fn from(e: crate::app::cashout::CashOutError) -> ApiError {
        use crate::app::cashout::CashOutError as E;
        let msg = e.to_string();
        match e {
            E::NotFound => ApiError::not_found("bet"),
            E::Unavailable { reason, message } => {
                ApiError::conflict("cash_out_unavailable", message)
                    .with_details(json!({ "reason": reason }))
            }
            E::Changed { reason, offer } => ApiError::conflict("cash_out_changed", msg)
                .with_details(json!({ "reason": reason, "offer": offer })),
            E::InProgress => ApiError::conflict("cash_out_in_progress", msg),
            E::KeyReused => ApiError::conflict("idempotency_key_reused", msg),
            E::Invalid(m) => ApiError::validation(m),
            E::Busy(what) => ApiError::busy(what),
            E::Db(why) => {
                tracing::warn!(error = %why, "cash-out: database error");
                ApiError::unavailable("the database is unavailable; retry shortly")
            }
        }
    }
}

impl From<crate::app::referrals::ReferralError> for ApiError {
    fn from(e: crate::app::referrals::ReferralError) -> ApiError {
        use crate::app::referrals::ReferralError as E;
        let msg = e.to_string();
        match e {
            E::NotFound => ApiError::not_found("referral"),
            E::NotPending(_) | E::WindowOpen => ApiError::conflict("referral_closed", msg),
            E::Invalid(m) => ApiError::validation(m),
            E::Busy(what) => ApiError::busy(what),
            E::Db(why) => {
                tracing::warn!(error = %why, "referral: database error");
                ApiError::unavailable("the database is unavailable; retry shortly")
            }
        }
    }
}

impl From<BonusError> for ApiError {
    fn from(e: BonusError) -> ApiError {
        let msg = e.to_string();
        match e {
            BonusError::Invalid(m) => ApiError::validation(m),
            BonusError::ActiveBonus(id) => ApiError::conflict("bonus_not_eligible", msg)
                .with_details(json!({"reason": "active_bonus", "bonus_id": id})),
            BonusError::KeyReused => ApiError::conflict("idempotency_key_reused", msg),
            BonusError::UnknownUser => ApiError::not_found("user"),
            BonusError::Db(why) => {
                tracing::warn!(error = %why, "bonus: database error");
                ApiError::unavailable("the database is unavailable; retry shortly")
            }
        }
    }
}
