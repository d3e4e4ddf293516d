//! Bets before acceptance: `BetType`, the odds-change policy, leg checks (duplicate and
//! correlated legs), system-bet combinations, and pricing (total stake, total odds,
//! potential win).
//!
//! Amounts are gross: a potential win (and a settled payout) includes the stake, as the
//! seed's `potential_win` does; profit is payout minus stake.

use rust_decimal::{Decimal, RoundingStrategy};
use thiserror::Error;

use crate::domain::ids::{EventId, MarketId, SelectionId};

use super::market::MarketType;
use super::money::{round_payout, Money, BET_COLUMN_MAX};
use super::odds::{Odds, ODDS_COLUMN_MAX, ODDS_SCALE};

/// Most legs of any bet, whatever the configuration says: bounds the pairwise leg check and
/// the combinations enumerated when pricing and settling.
pub const LEGS_HARD_MAX: usize = 30;

/// Most lines of a system bet, whatever the configuration says (C(12,6) = 924).
pub const SYSTEM_LINES_HARD_MAX: u64 = 10_000;

wire_enum! {
    /// Postgres `bet_type`.
    pub enum BetType: "bet_type" {
        Single = "single",
        Parlay = "parlay",
        /// Every combination of k legs out of n, each a line staked with the unit stake.
        System = "system",
    }
}

wire_enum! {
    /// What the bettor accepts if the price moved since they saw it (`odds_change`).
    pub enum OddsChangePolicy: "odds_change" {
        /// Only the exact price requested.
        None = "none",
        /// The requested price or a better (higher) one.
        Higher = "higher",
        /// Any current price.
        Any = "any",
    }
}

/// Why a bet is refused before it reaches a market or a wallet. `code()` names it for the
/// error body: `duplicate_leg`, `correlated_legs` and `odds_changed` are contract codes;
/// the shape and size variants are 422 validation errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BetError {
    #[error("a {bet_type} bet needs {min} to {max} legs, not {legs}")]
    WrongLegCount {
        bet_type: BetType,
        legs: usize,
        min: usize,
        max: usize,
    },
    #[error("a bet may have at most {max} legs, not {legs}")]
    TooManyLegs { legs: usize, max: usize },
    #[error("a system bet needs a system_size")]
    SystemSizeMissing,
    #[error("system_size {system_size} must be at least 2 and below the {legs} legs")]
    SystemSizeOutOfRange { system_size: usize, legs: usize },
    #[error("system_size is only for system bets, not {bet_type}")]
    SystemSizeNotAllowed { bet_type: BetType },
    #[error("a system bet may have at most {max} lines, not {lines}")]
    TooManyLines { lines: u64, max: u64 },
    #[error("the stake must be greater than zero")]
    StakeNotPositive,
    #[error("total odds {total_odds} are above the maximum {max}")]
    TotalOddsTooHigh { total_odds: Decimal, max: Decimal },
    #[error("potential win {potential_win} is above the maximum {max}")]
    PotentialWinTooHigh { potential_win: Money, max: Money },
    #[error("two legs are on the same market {market_id}")]
    DuplicateLeg { market_id: MarketId },
    #[error("two legs are on the same event {event_id}")]
    CorrelatedLegs { event_id: EventId },
    #[error("odds changed from {offered} to {current}")]
    OddsChanged { offered: Odds, current: Odds },
    #[error("amounts too large to compute")]
    Overflow,
}

impl BetError {
    /// A stable snake_case code for the error body.
    pub const fn code(&self) -> &'static str {
        match self {
            BetError::WrongLegCount { .. } => "wrong_leg_count",
            BetError::TooManyLegs { .. } => "too_many_legs",
            BetError::SystemSizeMissing => "system_size_missing",
            BetError::SystemSizeOutOfRange { .. } => "system_size_out_of_range",
            BetError::SystemSizeNotAllowed { .. } => "system_size_not_allowed",
            BetError::TooManyLines { .. } => "too_many_lines",
            BetError::StakeNotPositive => "stake_not_positive",
            BetError::TotalOddsTooHigh { .. } => "total_odds_too_high",
            BetError::PotentialWinTooHigh { .. } => "potential_win_too_high",
            BetError::DuplicateLeg { .. } => "duplicate_leg",
            BetError::CorrelatedLegs { .. } => "correlated_legs",
            BetError::OddsChanged { .. } => "odds_changed",
            BetError::Overflow => "overflow",
        }
    }
}

impl OddsChangePolicy {
    /// Whether a leg requested at `requested` may be taken at the market's `current` price.
    pub fn accepts(self, requested: Odds, current: Odds) -> bool {
        match self {
            OddsChangePolicy::None => current == requested,
            OddsChangePolicy::Higher => current >= requested,
            OddsChangePolicy::Any => true,
        }
    }

    /// [`accepts`](Self::accepts) as a result carrying both prices for the error body.
    pub fn check(self, offered: Odds, current: Odds) -> Result<(), BetError> {
        if self.accepts(offered, current) {
            Ok(())
        } else {
            Err(BetError::OddsChanged { offered, current })
        }
    }
}

/// What identifies a leg for the duplicate and correlation checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegKey {
    pub selection_id: SelectionId,
    pub market_id: MarketId,
    pub event_id: EventId,
    /// Lets the caller's predicate allow configured pairs of market types on one event.
    pub market_type: MarketType,
}

/// Refuses two legs on one market (`DuplicateLeg`, which covers the same selection twice)
/// and two legs on one event unless `correlation_allowed(a, b)` says the pair is fine
/// (`CorrelatedLegs`). Pairwise, so bounded by [`LEGS_HARD_MAX`].
pub fn check_legs(
    legs: &[LegKey],
    correlation_allowed: impl Fn(&LegKey, &LegKey) -> bool,
) -> Result<(), BetError> {
    if legs.len() > LEGS_HARD_MAX {
        return Err(BetError::TooManyLegs {
            legs: legs.len(),
            max: LEGS_HARD_MAX,
        });
    }
    for (i, a) in legs.iter().enumerate() {
        for b in &legs[i + 1..] {
            if a.market_id == b.market_id || a.selection_id == b.selection_id {
                return Err(BetError::DuplicateLeg {
                    market_id: a.market_id,
                });
            }
            if a.event_id == b.event_id && !correlation_allowed(a, b) {
                return Err(BetError::CorrelatedLegs {
                    event_id: a.event_id,
                });
            }
        }
    }
    Ok(())
}

/// Checks a bet's shape and returns its number of lines: a single has exactly 1 leg; a
/// parlay 2 to `legs_max`; a system 3 to `legs_max` legs with `2 <= system_size < legs`,
/// and C(legs, system_size) lines. `legs_max` is capped at [`LEGS_HARD_MAX`].
pub fn check_shape(
    bet_type: BetType,
    legs: usize,
    system_size: Option<usize>,
    legs_max: usize,
) -> Result<u64, BetError> {
    let legs_max = legs_max.min(LEGS_HARD_MAX);
    let (min, max) = match bet_type {
        BetType::Single => (1, 1),
        BetType::Parlay => (2, legs_max),
        BetType::System => (3, legs_max),
    };
    if legs < min || legs > max {
        return Err(BetError::WrongLegCount {
            bet_type,
            legs,
            min,
            max,
        });
    }
    match (bet_type, system_size) {
        (BetType::Single | BetType::Parlay, None) => Ok(1),
        (BetType::Single | BetType::Parlay, Some(_)) => {
            Err(BetError::SystemSizeNotAllowed { bet_type })
        }
        (BetType::System, None) => Err(BetError::SystemSizeMissing),
        (BetType::System, Some(k)) if k < 2 || k >= legs => Err(BetError::SystemSizeOutOfRange {
            system_size: k,
            legs,
        }),
        (BetType::System, Some(k)) => {
            let lines = line_count(legs, k);
            if lines > SYSTEM_LINES_HARD_MAX {
                return Err(BetError::TooManyLines {
                    lines,
                    max: SYSTEM_LINES_HARD_MAX,
                });
            }
            Ok(lines)
        }
    }
}

/// C(n, k), the number of k-leg lines out of n legs (0 when k > n), saturating at
/// `u64::MAX` far beyond any bet.
pub fn line_count(n: usize, k: usize) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut count: u128 = 1;
    for i in 0..k {
        // Exact at every step: count × (n-i) / (i+1) is C(n, i+1).
        count = match count.checked_mul((n - i) as u128) {
            Some(product) => product / (i as u128 + 1),
            None => return u64::MAX,
        };
    }
    u64::try_from(count).unwrap_or(u64::MAX)
}

/// Every k-subset of the legs `0..n`, in lexicographic order, each in increasing order.
/// Refuses `n` above `n_max` (capped at [`LEGS_HARD_MAX`]) and `k` outside `1..=n`.
pub fn system_lines(n: usize, k: usize, n_max: usize) -> Result<Vec<Vec<usize>>, BetError> {
    let n_max = n_max.min(LEGS_HARD_MAX);
    if n > n_max {
        return Err(BetError::TooManyLegs {
            legs: n,
            max: n_max,
        });
    }
    if k == 0 || k > n {
        return Err(BetError::SystemSizeOutOfRange {
            system_size: k,
            legs: n,
        });
    }
    let lines = line_count(n, k);
    if lines > SYSTEM_LINES_HARD_MAX {
        return Err(BetError::TooManyLines {
            lines,
            max: SYSTEM_LINES_HARD_MAX,
        });
    }
    let mut all = Vec::with_capacity(lines as usize);
    for_each_line(n, k, |line| {
        all.push(line.to_vec());
        Ok::<(), BetError>(())
    })?;
    Ok(all)
}

/// Calls `visit` with every k-subset of `0..n` in lexicographic order, reusing one buffer.
/// Callers bound n and k first (see [`check_shape`]).
pub(crate) fn for_each_line<E>(
    n: usize,
    k: usize,
    mut visit: impl FnMut(&[usize]) -> Result<(), E>,
) -> Result<(), E> {
    if k == 0 || k > n {
        return Ok(());
    }
    let mut line: Vec<usize> = (0..k).collect();
    loop {
        visit(&line)?;
        // The rightmost position that can still move right; none left means done.
        let Some(i) = (0..k).rev().find(|&i| line[i] < n - k + i) else {
            return Ok(());
        };
        line[i] += 1;
        let start = line[i];
        for (offset, slot) in line[i + 1..].iter_mut().enumerate() {
            *slot = start + offset + 1;
        }
    }
}

/// The exact gross return of a bet whose legs pay `multipliers` per unit staked: the unit
/// stake times their product for a single or parlay, times the sum over lines of each
/// line's product for a system. Not rounded: the caller rounds once. The shape must have
/// passed [`check_shape`].
pub(crate) fn gross_return(
    bet_type: BetType,
    unit_stake: Decimal,
    multipliers: &[Decimal],
    system_size: Option<usize>,
) -> Result<Decimal, BetError> {
    let per_unit = match (bet_type, system_size) {
        (BetType::System, Some(k)) => {
            let mut sum = Decimal::ZERO;
            for_each_line(multipliers.len(), k, |line| {
                let product = product(line.iter().map(|&leg| multipliers[leg]))?;
                sum = sum.checked_add(product).ok_or(BetError::Overflow)?;
                Ok(())
            })?;
            sum
        }
        _ => product(multipliers.iter().copied())?,
    };
    unit_stake.checked_mul(per_unit).ok_or(BetError::Overflow)
}

/// Product of the multipliers; a zero (a lost leg) ends it early.
fn product(multipliers: impl Iterator<Item = Decimal>) -> Result<Decimal, BetError> {
    let mut product = Decimal::ONE;
    for multiplier in multipliers {
        if multiplier.is_zero() {
            return Ok(Decimal::ZERO);
        }
        product = product.checked_mul(multiplier).ok_or(BetError::Overflow)?;
    }
    Ok(product)
}

/// Configured limits on bets (from config; each is also capped by the schema or the hard
/// maxima above).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BetLimits {
    /// Most legs of a parlay or system bet.
    pub legs_max: usize,
    /// Most lines of a system bet.
    pub system_lines_max: u64,
    /// Highest total odds (capped by the `DECIMAL(10,4)` column).
    pub total_odds_max: Decimal,
    /// Highest potential win (capped by the `DECIMAL(10,2)` column).
    pub potential_win_max: Money,
    /// The bettor's currency's scale: the potential win is rounded down at it.
    pub scale: super::currency::Scale,
}

/// A priced bet, as stored in `bets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priced {
    /// 1 for a single or parlay, C(n, k) for a system.
    pub lines: u64,
    /// What the bettor pays: unit stake × lines.
    pub total_stake: Money,
    /// Exact gross return per unit of total stake if every leg wins, rounded to 4 places half
    /// away from zero: the odds for a single, their product for a parlay, the mean line
    /// odds for a system. Informative; payouts never use it.
    pub total_odds: Decimal,
    /// The exact gross return if every leg wins, rounded down to the cent once
    /// ([`round_payout`]).
    pub potential_win: Money,
}

/// Prices a bet from the odds taken on each leg. Exact in decimal up to 6 legs at odds
/// below 100 and payouts below 1e8 (28 significant digits); beyond that the product is
/// rounded at its 28th digit, long before the cent.
pub fn price_bet(
    bet_type: BetType,
    legs_odds: &[Odds],
    unit_stake: Money,
    system_size: Option<usize>,
    limits: &BetLimits,
) -> Result<Priced, BetError> {
    let lines = check_shape(bet_type, legs_odds.len(), system_size, limits.legs_max)?;
    if lines > limits.system_lines_max {
        return Err(BetError::TooManyLines {
            lines,
            max: limits.system_lines_max,
        });
    }
    if !unit_stake.is_positive() {
        return Err(BetError::StakeNotPositive);
    }
    let total_stake = unit_stake
        .checked_mul_count(lines)
        .ok_or(BetError::Overflow)?;
    let odds: Vec<Decimal> = legs_odds.iter().map(|odds| odds.value()).collect();
    let gross = gross_return(bet_type, unit_stake.as_decimal(), &odds, system_size)?;
    let mut total_odds = gross
        .checked_div(total_stake.as_decimal())
        .ok_or(BetError::Overflow)?
        .round_dp_with_strategy(ODDS_SCALE, RoundingStrategy::MidpointAwayFromZero);
    total_odds.rescale(ODDS_SCALE);
    let total_odds_max = limits.total_odds_max.min(ODDS_COLUMN_MAX);
    if total_odds > total_odds_max {
        return Err(BetError::TotalOddsTooHigh {
            total_odds,
            max: total_odds_max,
        });
    }
    let potential_win = round_payout(gross, limits.scale);
    let potential_win_max = limits.potential_win_max.min(BET_COLUMN_MAX);
    if potential_win > potential_win_max {
        return Err(BetError::PotentialWinTooHigh {
            potential_win,
            max: potential_win_max,
        });
    }
    Ok(Priced {
        lines,
        total_stake,
        total_odds,
        potential_win,
    })
}

#[cfg(test)]
mod tests;
