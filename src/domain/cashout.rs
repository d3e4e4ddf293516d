//! Cash-out value: what an open single or parlay is worth at live prices, less the house's
//! margin, rounded down to the cent; and how a partial cash-out splits a bet. Pure.
//!
//! For a single the fair value is `stake × taken ÷ current`; for a parlay it is the stake
//! times the product over open legs of `taken ÷ current`, times each settled leg's factor
//! (what a unit staked on it returned: the odds on a win, 1 on a push or void, 0 on a
//! loss). The offer is that value less `margin_bps` basis points, rounded down to the
//! cent, never above the (remaining) potential win and never below zero.
use rust_decimal::Decimal;
use thiserror::Error;

use super::currency::Scale;
use super::money::{round_payout, Money};
use super::odds::Odds;
use super::settlement::LegOutcome;

/// Basis points in one (10 000 bps = 100 %).
pub const BPS_ONE: u32 = 10_000;

/// One leg as the offer sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CashOutLeg {
    /// Not settled: the price taken and the market's price now.
    Open { taken: Odds, current: Odds },
    /// Settled (a parlay's leg whose market has resulted): the price taken and its outcome.
    Settled { taken: Odds, outcome: LegOutcome },
}

/// Why no offer can be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CashOutValueError {
    #[error("a bet without legs has no value")]
    NoLegs,
    #[error("the margin must be below 10000 bps")]
    MarginTooHigh,
    #[error("every leg is settled: the bet is settled, not cashed out")]
    NothingOpen,
}

/// The offer for a bet whose stake still at risk is `stake` and whose potential win for
/// that stake is `potential_win`.
pub fn offer(
    stake: Money,
    potential_win: Money,
    legs: &[CashOutLeg],
    margin_bps: u32,
    scale: Scale,
) -> Result<Money, CashOutValueError> {
    if legs.is_empty() {
        return Err(CashOutValueError::NoLegs);
    }
    if margin_bps >= BPS_ONE {
        return Err(CashOutValueError::MarginTooHigh);
    }
    if !legs.iter().any(|l| matches!(l, CashOutLeg::Open { .. })) {
        return Err(CashOutValueError::NothingOpen);
    }
    let mut value = stake.as_decimal();
    for leg in legs {
        // Each factor is at most 1e6 (odds are capped) and a bet's legs are few: the product
        // stays far inside Decimal's range; `checked_*` turns a pathological input into 0.
        let factor = match *leg {
            CashOutLeg::Open { taken, current } => taken.value() / current.value(),
            CashOutLeg::Settled { taken, outcome } => outcome.multiplier(taken),
        };
        value = match value.checked_mul(factor) {
            Some(v) => v,
            None => return Ok(Money::ZERO),
        };
    }
    let keep = Decimal::from(BPS_ONE - margin_bps) / Decimal::from(BPS_ONE);
    let value = round_payout((value * keep).max(Decimal::ZERO), scale);
    Ok(value.min(potential_win).max(Money::ZERO))
}

/// How a cash-out of `fraction` of a bet's remaining stake splits it: the stake and the
/// potential win that leave the bet, and the amount paid for them. A fraction of 1 takes
/// all of it; otherwise the parts are rounded down at the currency's `scale` (the bettor keeps the
/// remainder at risk) and must leave something on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CashOutSplit {
    pub stake: Money,
    pub potential_win: Money,
    pub amount: Money,
    /// Nothing remains at risk: the bet becomes `cashed_out`.
    pub full: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SplitError {
    #[error("fraction must be greater than 0 and at most 1")]
    FractionOutOfRange,
    #[error("the fraction leaves less than a cent on one side")]
    TooSmall,
}

/// Splits a bet (remaining `stake`, `potential_win`) for an offer of `value` (for the
/// whole remaining stake) at `fraction`.
pub fn split(
    stake: Money,
    potential_win: Money,
    value: Money,
    fraction: Decimal,
    scale: Scale,
) -> Result<CashOutSplit, SplitError> {
    if fraction <= Decimal::ZERO || fraction > Decimal::ONE {
        return Err(SplitError::FractionOutOfRange);
    }
    if fraction == Decimal::ONE {
        return Ok(CashOutSplit {
            stake,
            potential_win,
            amount: value,
            full: true,
        });
    }
    let part = |m: Money| round_payout(m.as_decimal() * fraction, scale);
    let s = CashOutSplit {
        stake: part(stake),
        potential_win: part(potential_win),
        amount: part(value),
        full: false,
    };
    if s.stake.is_zero() || s.stake == stake {
        return Err(SplitError::TooSmall);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LegResult;

    // The maths at two places (the scale's own tests are in `currency`).
    fn offer(
        stake: Money,
        potential_win: Money,
        legs: &[CashOutLeg],
        margin_bps: u32,
    ) -> Result<Money, CashOutValueError> {
        super::offer(stake, potential_win, legs, margin_bps, Scale::CENTS)
    }

    fn split(
        stake: Money,
        potential_win: Money,
        value: Money,
        fraction: Decimal,
    ) -> Result<CashOutSplit, SplitError> {
        super::split(stake, potential_win, value, fraction, Scale::CENTS)
    }

    fn round_payout(exact: Decimal) -> Money {
        super::round_payout(exact, Scale::CENTS)
    }

    #[test]
    fn a_yen_offer_is_whole_yen() {
        let yen = Scale::new(0).unwrap();
        let legs = [open(dec!(2.5), dec!(1.3))];
        let o = super::offer(m(dec!(1000)), m(dec!(2500)), &legs, 500, yen).unwrap();
        // 1000 × 2.5 / 1.3 × 0.95 = 1826.92...: 1826 yen.
        assert_eq!(o, m(dec!(1826)));
        let s = super::split(m(dec!(1001)), m(dec!(2502)), o, dec!(0.5), yen).unwrap();
        assert_eq!(
            (s.stake, s.potential_win, s.amount),
            (m(dec!(500)), m(dec!(1251)), m(dec!(913)))
        );
    }
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn odds(v: Decimal) -> Odds {
        Odds::from_decimal(v, dec!(1000)).unwrap()
    }
    fn m(v: Decimal) -> Money {
        Money::from_decimal(v).unwrap()
    }
    fn open(t: Decimal, c: Decimal) -> CashOutLeg {
        CashOutLeg::Open {
            taken: odds(t),
            current: odds(c),
        }
    }

    #[test]
    fn single_at_unchanged_price_is_stake_less_margin() {
        let o = offer(m(dec!(10)), m(dec!(25)), &[open(dec!(2.5), dec!(2.5))], 500).unwrap();
        assert_eq!(o, m(dec!(9.50)));
    }

    #[test]
    fn single_shortened_is_worth_more_and_rounds_down() {
        // 10 × 2.5 / 1.3 = 19.2307..; × 0.95 = 18.269.. → 18.26
        let o = offer(m(dec!(10)), m(dec!(25)), &[open(dec!(2.5), dec!(1.3))], 500).unwrap();
        assert_eq!(o, m(dec!(18.26)));
    }

    #[test]
    fn offer_never_exceeds_potential_win() {
        let o = offer(
            m(dec!(10)),
            m(dec!(25)),
            &[open(dec!(2.5), dec!(1.0001))],
            0,
        )
        .unwrap();
        assert_eq!(o, m(dec!(24.99)));
        let o = offer(
            m(dec!(10)),
            m(dec!(20)),
            &[open(dec!(2.5), dec!(1.0001))],
            0,
        )
        .unwrap();
        assert_eq!(o, m(dec!(20)));
    }

    #[test]
    fn parlay_with_won_and_lost_legs() {
        let won = CashOutLeg::Settled {
            taken: odds(dec!(2)),
            outcome: LegOutcome::plain(LegResult::Win),
        };
        let o = offer(m(dec!(10)), m(dec!(60)), &[won, open(dec!(3), dec!(2))], 0).unwrap();
        assert_eq!(o, m(dec!(30))); // 10 × 2 × 3/2
        let lost = CashOutLeg::Settled {
            taken: odds(dec!(2)),
            outcome: LegOutcome::plain(LegResult::Loss),
        };
        let o = offer(m(dec!(10)), m(dec!(60)), &[lost, open(dec!(3), dec!(2))], 0).unwrap();
        assert_eq!(o, Money::ZERO);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            offer(m(dec!(10)), m(dec!(20)), &[], 0),
            Err(CashOutValueError::NoLegs)
        );
        assert_eq!(
            offer(m(dec!(10)), m(dec!(20)), &[open(dec!(2), dec!(2))], 10_000),
            Err(CashOutValueError::MarginTooHigh)
        );
        assert_eq!(
            split(m(dec!(10)), m(dec!(20)), m(dec!(9)), dec!(0)),
            Err(SplitError::FractionOutOfRange)
        );
        assert_eq!(
            split(m(dec!(0.01)), m(dec!(0.02)), m(dec!(0.01)), dec!(0.5)),
            Err(SplitError::TooSmall)
        );
    }

    #[test]
    fn half_split() {
        let s = split(m(dec!(10)), m(dec!(25)), m(dec!(9.51)), dec!(0.5)).unwrap();
        assert_eq!(
            (s.stake, s.potential_win, s.amount, s.full),
            (m(dec!(5)), m(dec!(12.5)), m(dec!(4.75)), false)
        );
    }

    proptest! {
        #[test]
        fn offer_is_bounded_and_in_cents(
            stake_cents in 1i64..10_000_000,
            taken in 10_001i64..10_000_000,
            current in 10_001i64..10_000_000,
            margin in 0u32..5_000,
        ) {
            let stake = Money::from_cents(stake_cents);
            let taken = Odds::from_decimal(Decimal::new(taken, 4), dec!(1000)).unwrap();
            let current = Odds::from_decimal(Decimal::new(current, 4), dec!(1000)).unwrap();
            let pw = round_payout(stake.as_decimal() * taken.value());
            let o = offer(stake, pw, &[CashOutLeg::Open { taken, current }], margin).unwrap();
            prop_assert!(o >= Money::ZERO);
            prop_assert!(o <= pw);
            prop_assert_eq!(o.as_decimal().scale(), 2);
            // Rounded down: never more than the exact value less margin.
            let exact = stake.as_decimal() * taken.value() / current.value()
                * Decimal::from(BPS_ONE - margin) / Decimal::from(BPS_ONE);
            prop_assert!(o.as_decimal() <= exact);
            prop_assert!(o.as_decimal() > exact - dec!(0.01) || o == pw);
        }

        #[test]
        fn a_higher_current_price_never_offers_more(
            stake_cents in 1i64..1_000_000,
            taken in 10_001i64..500_000,
            c1 in 10_001i64..500_000,
            c2 in 10_001i64..500_000,
        ) {
            let (lo, hi) = (c1.min(c2), c1.max(c2));
            let stake = Money::from_cents(stake_cents);
            let t = Odds::from_decimal(Decimal::new(taken, 4), dec!(1000)).unwrap();
            let pw = round_payout(stake.as_decimal() * t.value());
            let at = |c: i64| {
                let current = Odds::from_decimal(Decimal::new(c, 4), dec!(1000)).unwrap();
                offer(stake, pw, &[CashOutLeg::Open { taken: t, current }], 300).unwrap()
            };
            prop_assert!(at(hi) <= at(lo));
        }

        #[test]
        fn split_parts_never_exceed_the_whole(
            stake_cents in 2i64..10_000_000,
            win_cents in 2i64..100_000_000,
            value_cents in 0i64..100_000_000,
            f in 1i64..10_000,
        ) {
            let (stake, pw, value) = (
                Money::from_cents(stake_cents),
                Money::from_cents(win_cents),
                Money::from_cents(value_cents),
            );
            if let Ok(s) = split(stake, pw, value, Decimal::new(f, 4)) {
                prop_assert!(s.stake < stake && s.stake.is_positive());
                prop_assert!(s.potential_win <= pw);
                prop_assert!(s.amount <= value);
                prop_assert!(!s.full);
            }
        }
    }
}
