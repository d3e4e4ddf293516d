//! Why a settlement, resettlement or void was refused or could not run: the settlement
//! service's one error type (mapped to the contract by `routes::error_map`).
use serde_json::Value;
use thiserror::Error;

use crate::actors::errors::MarketError;
use crate::actors::writer::NotDurable;
use crate::actors::{AskError, LoadError};

#[derive(Debug, Clone, Error)]
pub enum SettlementError {
    /// No such market, event or bet.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The results asked for are wrong (`code` when the contract names the reason).
    #[error("{message}")]
    Invalid {
        message: String,
        code: Option<&'static str>,
        details: Value,
    },
    /// The market's state forbids it (`already_settled`, `not_settled`,
    /// `settlement_in_progress`, `invalid_transition`, `bet_changed`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The market's actor refused to stop trading.
    #[error(transparent)]
    Market(#[from] MarketError),
    #[error("live state did not answer: {0:?}")]
    Ask(AskError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    NotDurable(#[from] NotDurable),
    /// Postgres failed; the request can be repeated (settlement is idempotent).
    #[error("{0}")]
    Db(String),
}

impl SettlementError {
    pub fn invalid(message: impl Into<String>) -> Self {
        SettlementError::Invalid {
            message: message.into(),
            code: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        SettlementError::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl From<AskError> for SettlementError {
    fn from(e: AskError) -> Self {
        SettlementError::Ask(e)
    }
}

crate::db_error_from!(SettlementError);

impl From<anyhow::Error> for SettlementError {
    fn from(e: anyhow::Error) -> Self {
        SettlementError::Db(format!("{e:#}"))
    }
}
