//! Settlement: leg results (Postgres `selection_result`) with dead-heat and void factors,
//! each leg's multiplier, and a bet's payout and status, rounded once at the end.
//!
//! A leg's **multiplier** is what one unit staked on it returns:
//! - `win`: the odds, times the dead-heat factor `f` if any (the stake is divided: the
//!   share `f` is paid at full odds, the rest lost);
//! - `loss`: 0; `push` and `void`: 1 (the stake comes back, the leg counts at odds 1.00).
//! - A void factor `v` (half-void on quarter lines: `v = 0.5`) returns the share `v` of the
//!   stake at odds 1 and settles the rest by the result: `v + (1 - v) × multiplier`. So a
//!   half-won quarter line at 1.90 is `0.5 + 0.5 × 1.90 = 1.45`, a half-lost one `0.5`.
//!
//! A single pays unit stake × its multiplier; a parlay unit stake × the product of its legs'
//! multipliers (a lost leg loses it, a void or push leg drops out at 1.00); a system bet the
//! sum over its lines of unit stake × the line's product. The exact sum is rounded **once**,
//! down to the cent, by [`round_payout`]. Payouts are gross (stake included).
//!
//! **Status** of a settled bet: `settled_push` when every leg is push or void (the payout
//! is then exactly the total stake); otherwise `settled_loss` when the payout is 0, and
//! `settled_win` when it is above 0, even if below the stake (a half-lost quarter line, a
//! dead heat at short odds, a system bet with a few winning lines).

use rust_decimal::Decimal;
use thiserror::Error;

use super::bet::{check_shape, gross_return, BetError, BetType, LEGS_HARD_MAX};
use super::bet_status::BetStatus;
use super::money::{round_payout, Money};
use super::odds::Odds;

wire_enum! {
    /// A selection's result (Postgres `selection_result`).
    pub enum LegResult: "selection_result" {
        Win = "win",
        Loss = "loss",
        Push = "push",
        Void = "void",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SettlementError {
    #[error("dead_heat_factor {factor} must be above 0 and at most 1")]
    DeadHeatFactorOutOfRange { factor: Decimal },
    #[error("void_factor {factor} must be above 0 and at most 1")]
    VoidFactorOutOfRange { factor: Decimal },
    #[error("a dead_heat_factor applies to a win, not a {result}")]
    DeadHeatWithoutWin { result: LegResult },
    #[error("a dead heat needs 1 to {tied} places paid among {tied} tied, not {places_paid}")]
    DeadHeatPlacesInvalid { places_paid: u32, tied: u32 },
    #[error(transparent)]
    Bet(#[from] BetError),
}

/// A settled leg: its result and the factors that adjust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegOutcome {
    result: LegResult,
    /// Share of the stake paid at full odds on a win, in (0, 1].
    dead_heat_factor: Option<Decimal>,
    /// Share of the stake returned at odds 1 whatever the result, in (0, 1].
    void_factor: Option<Decimal>,
}

impl LegOutcome {
    /// A result without factors.
    pub const fn plain(result: LegResult) -> LegOutcome {
        LegOutcome {
            result,
            dead_heat_factor: None,
            void_factor: None,
        }
    }

    /// A result with optional factors, each in (0, 1]; a dead-heat factor only on a win.
    pub fn new(
        result: LegResult,
        dead_heat_factor: Option<Decimal>,
        void_factor: Option<Decimal>,
    ) -> Result<LegOutcome, SettlementError> {
        let in_range = |factor: Decimal| factor > Decimal::ZERO && factor <= Decimal::ONE;
        if let Some(factor) = dead_heat_factor {
            if !in_range(factor) {
                return Err(SettlementError::DeadHeatFactorOutOfRange { factor });
            }
            if result != LegResult::Win {
                return Err(SettlementError::DeadHeatWithoutWin { result });
            }
        }
        if let Some(factor) = void_factor.filter(|&factor| !in_range(factor)) {
            return Err(SettlementError::VoidFactorOutOfRange { factor });
        }
        Ok(LegOutcome {
            result,
            dead_heat_factor,
            void_factor,
        })
    }

    pub const fn result(self) -> LegResult {
        self.result
    }

    pub const fn dead_heat_factor(self) -> Option<Decimal> {
        self.dead_heat_factor
    }

    pub const fn void_factor(self) -> Option<Decimal> {
        self.void_factor
    }

    /// What one unit staked on this leg at `odds` returns (see the module's rules). Exact:
    /// odds below 1e6 and factors at most 1 keep every step far from overflow.
    pub fn multiplier(self, odds: Odds) -> Decimal {
        let settled_share = match self.result {
            LegResult::Win => odds.value() * self.dead_heat_factor.unwrap_or(Decimal::ONE),
            LegResult::Loss => Decimal::ZERO,
            LegResult::Push | LegResult::Void => return Decimal::ONE,
        };
        match self.void_factor {
            Some(returned) => returned + (Decimal::ONE - returned) * settled_share,
            None => settled_share,
        }
    }
}

/// The dead-heat factor when `tied` selections share the last `places_paid` paying places
/// (two tied for a win: 1 of 2 = 0.5; three tied for the last two places: 2/3, kept to 28
/// significant digits so the rounding to the cent happens once, at the end).
pub fn dead_heat_factor(places_paid: u32, tied: u32) -> Result<Decimal, SettlementError> {
    if places_paid == 0 || places_paid > tied {
        return Err(SettlementError::DeadHeatPlacesInvalid { places_paid, tied });
    }
    Ok(Decimal::from(places_paid) / Decimal::from(tied))
}

/// A settled bet, as written to `bets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// `SettledWin`, `SettledLoss` or `SettledPush` (see the module's rules).
    pub status: BetStatus,
    /// The gross amount credited (`actual_win`), rounded down to the cent once.
    pub payout: Money,
    /// Unit stake × lines, what the bettor paid.
    pub total_stake: Money,
}

/// Settles a bet from the odds taken on each leg and each leg's outcome, `None` while any
/// leg is unsettled. The shape is checked as at placement (up to [`LEGS_HARD_MAX`] legs).
/// Resettling is calling it again with the corrected outcomes; the payout difference is
/// the correction to book.
pub fn settle_bet(
    bet_type: BetType,
    unit_stake: Money,
    legs: &[(Odds, Option<LegOutcome>)],
    system_size: Option<usize>,
    scale: super::currency::Scale,
) -> Result<Option<Settled>, SettlementError> {
    let lines = check_shape(bet_type, legs.len(), system_size, LEGS_HARD_MAX)?;
    if !unit_stake.is_positive() {
        return Err(BetError::StakeNotPositive.into());
    }
    let mut multipliers = Vec::with_capacity(legs.len());
    for (odds, outcome) in legs {
        let Some(outcome) = outcome else {
            return Ok(None);
        };
        multipliers.push(outcome.multiplier(*odds));
    }
    let total_stake = unit_stake
        .checked_mul_count(lines)
        .ok_or(BetError::Overflow)?;
    let gross = gross_return(bet_type, unit_stake.as_decimal(), &multipliers, system_size)?;
    let payout = round_payout(gross, scale);
    let every_leg_returned = legs.iter().all(|(_, outcome)| {
        outcome.is_some_and(|o| matches!(o.result, LegResult::Push | LegResult::Void))
    });
    let status = if every_leg_returned {
        BetStatus::SettledPush
    } else if payout.is_zero() {
        BetStatus::SettledLoss
    } else {
        BetStatus::SettledWin
    };
    Ok(Some(Settled {
        status,
        payout,
        total_stake,
    }))
}

/// A change of one bet's settlement, to be booked by its user's wallet shard.
#[derive(Debug, Clone, PartialEq)]
pub struct BetChange {
    pub bet_id: super::ids::BetId,
    pub user_id: super::ids::UserId,
    pub currency_code: String,
    /// That currency's scale: a bonus share of the payout is rounded at it.
    pub scale: crate::domain::currency::Scale,
    /// The bet's `settlement_seq` the change was computed from (compare-and-set).
    pub expected_seq: i32,
    pub old_status: BetStatus,
    pub new_status: BetStatus,
    /// The gross payout booked so far (`actual_win`).
    pub old_win: Decimal,
    /// The gross payout it should have (stake back for a voided bet).
    pub new_win: Decimal,
    pub void_reason: Option<String>,
    /// The legs' selections and what the bet counts in their markets' live liability
    /// while open (stake, potential win): released when an open bet is booked.
    pub selections: Vec<super::ids::SelectionId>,
    pub exposure: (Decimal, Decimal),
    /// The free bet that was the stake (its payouts are winnings only; a void restores it).
    pub free_bet: Option<uuid::Uuid>,
}

#[cfg(test)]
mod tests;
