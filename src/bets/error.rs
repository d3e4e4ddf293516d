//! Why a bet was not taken: the bet path's one error type. Each variant is a reason of the
//! domain (or of the infrastructure the bet depends on); the HTTP and WebSocket adapters map
//! them to the contract's codes (`routes::error_map`).
use thiserror::Error;

use crate::actors::errors::LegRejection;
use crate::actors::{AskError, LoadError};
use crate::domain;
use crate::domain::money::Money;

#[derive(Debug, Clone, Error)]
pub enum PlaceError {
    /// The request itself is wrong (key, stake, leg count, odds ceiling).
    #[error("{0}")]
    Invalid(String),
    /// The bet's shape or price breaks a rule of the domain (system size, duplicate legs...).
    #[error(transparent)]
    Rule(domain::BetError),
    /// A leg's market refused it.
    #[error(transparent)]
    Leg(LegRejection),
    /// The account may not bet (self-excluded, suspended, banned, no wallet).
    #[error("{0}")]
    Restricted(&'static str),
    /// `[kyc] required_before` lists bets and the profile is not verified.
    #[error("betting needs a verified profile")]
    VerificationRequired,
    #[error("the stake is more than the available balance")]
    InsufficientFunds { available: Money },
    #[error("the {period} stake limit would be exceeded")]
    LimitExceeded {
        period: &'static str,
        cap: Money,
        staked: Money,
    },
    /// `funding: bonus` cannot be met (no active bonus or bonus money, odds too low).
    #[error("bonus money cannot fund this bet: {0}")]
    BonusNotEligible(String),
    /// The free bet cannot be spent on this bet (expired, spent, odds, stake, not yours).
    #[error("the free bet cannot be used for this bet: {0}")]
    FreeBetNotEligible(String),
    /// The idempotency key was used for a different bet.
    #[error("this idempotency key was used for a different bet")]
    KeyReused,
    /// The commit found the key taken (the first bet's answer is looked up).
    #[error("idempotency key already used")]
    DuplicateKey,
    /// The database refused a bet the engine accepted (a constraint).
    #[error("the bet could not be accepted")]
    Refused,
    /// A bounded queue on the way is full: `what` is busy.
    #[error("{0} is busy; retry shortly")]
    Busy(&'static str),
    /// Something the bet needs did not answer.
    #[error("{0}")]
    Unavailable(String),
}

impl PlaceError {
    /// A failure of the engine, not of the bet: nothing is known about the key's first
    /// answer from it, and the client retries with the same key.
    pub fn is_transient(&self) -> bool {
        matches!(self, PlaceError::Busy(_) | PlaceError::Unavailable(_))
            || matches!(self, PlaceError::Leg(LegRejection::Busy))
    }

    /// The contract's code of the refusal (also the `outcome` label of `winzo_bets_total`).
    pub fn code(&self) -> &'static str {
        match self {
            PlaceError::Invalid(_) => "validation_failed",
            PlaceError::Rule(r) => r.code(),
            PlaceError::Leg(l) => l.code(),
            PlaceError::Restricted(_) => "account_restricted",
            PlaceError::VerificationRequired => "verification_required",
            PlaceError::InsufficientFunds { .. } => "insufficient_funds",
            PlaceError::LimitExceeded { .. } => "limit_exceeded",
            PlaceError::BonusNotEligible(_) => "bonus_not_eligible",
            PlaceError::FreeBetNotEligible(_) => "free_bet_not_eligible",
            PlaceError::KeyReused => "idempotency_key_reused",
            PlaceError::DuplicateKey => "duplicate_key",
            PlaceError::Refused => "bet_refused",
            PlaceError::Busy(_) => "busy",
            PlaceError::Unavailable(_) => "unavailable",
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        PlaceError::Unavailable(message.into())
    }
}

impl From<AskError> for PlaceError {
    fn from(e: AskError) -> Self {
        match e {
            AskError::Busy => PlaceError::Busy("the market"),
            AskError::Gone => PlaceError::Leg(LegRejection::MarketClosed),
        }
    }
}

impl From<LoadError> for PlaceError {
    fn from(e: LoadError) -> Self {
        PlaceError::Unavailable(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for PlaceError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        tracing::warn!(error = %e, "bet path: no database connection");
        PlaceError::unavailable("the database is unavailable; retry shortly")
    }
}

impl From<tokio_postgres::Error> for PlaceError {
    fn from(e: tokio_postgres::Error) -> Self {
        tracing::warn!(error = %e, "bet path: database error");
        PlaceError::unavailable("the database is unavailable; retry shortly")
    }
}
