//! Errors of the live-market actors (mapped to the contract's error body by the adapters,
//! `routes::error_map`).
use rust_decimal::Decimal;
use thiserror::Error;

use crate::domain::ids::SelectionId;
use crate::domain::limits::MarketLimits;
use crate::domain::{InvalidEventTransition, InvalidTransition, MarginError, MarketStatus, Odds};

/// Why a trader's (or feed's) change of a market or event was refused.
#[derive(Debug, Clone, Error)]
pub enum MarketError {
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    #[error(transparent)]
    InvalidEventTransition(#[from] InvalidEventTransition),
    #[error("the market is suspended")]
    Suspended,
    #[error("the market is {0}")]
    Closed(MarketStatus),
    #[error("selection {0} is not in this market")]
    UnknownSelection(SelectionId),
    #[error(transparent)]
    Margin(#[from] MarginError),
    #[error("{0}")]
    Validation(String),
    #[error("the market is busy")]
    Busy,
}

/// Why a bet leg was refused by its market. `code()` is the contract's error code.
/// Serialized between engine nodes (a leg reserved at its event's owner).
#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize)]
pub enum LegRejection {
    #[error("the market is suspended")]
    MarketSuspended,
    #[error("the market is closed")]
    MarketClosed,
    #[error("the event has started")]
    EventStarted,
    #[error("the price is {current}, not the odds asked for")]
    OddsChanged { current: Odds },
    #[error("stake below the minimum {min}")]
    StakeTooLow { min: Decimal },
    #[error("stake above the maximum {max}")]
    StakeTooHigh { max: Decimal },
    #[error("the market cannot take this much liability")]
    LiabilityExceeded,
    #[error("unknown selection")]
    UnknownSelection,
    #[error("the market is busy")]
    Busy,
}

impl LegRejection {
    pub const fn code(&self) -> &'static str {
        match self {
            LegRejection::MarketSuspended => "market_suspended",
            LegRejection::MarketClosed => "market_closed",
            LegRejection::EventStarted => "event_started",
            LegRejection::OddsChanged { .. } => "odds_changed",
            LegRejection::StakeTooLow { .. } => "stake_too_low",
            LegRejection::StakeTooHigh { .. } => "stake_too_high",
            LegRejection::LiabilityExceeded => "liability_exceeded",
            LegRejection::UnknownSelection => "unknown_selection",
            LegRejection::Busy => "busy",
        }
    }
}

/// Trading settings must make sense together.
pub fn check_limits(l: &MarketLimits) -> Result<(), MarketError> {
    let money_ok = |d: Decimal| d > Decimal::ZERO && d.normalize().scale() <= 2;
    if !(money_ok(l.min_stake)
        && money_ok(l.max_stake)
        && money_ok(l.max_liability_selection)
        && money_ok(l.max_liability_market))
    {
        return Err(MarketError::Validation(
            "stakes and liabilities must be positive amounts with at most 2 decimal places".into(),
        ));
    }
    if l.max_stake < l.min_stake {
        return Err(MarketError::Validation(
            "max_stake must be at least min_stake".into(),
        ));
    }
    if l.bet_delay_ms > 60_000 {
        return Err(MarketError::Validation(
            "bet_delay_ms must be at most 60000".into(),
        ));
    }
    if l.referral_window_ms > 3_600_000 {
        return Err(MarketError::Validation(
            "referral_window_ms must be at most 3600000".into(),
        ));
    }
    Ok(())
}
