//! A market's liability: what the book loses if each selection wins, and the two limits a
//! new bet leg must keep (`max_liability_selection`: one selection's potential payout;
//! `max_liability_market`: the worst net loss over selections). Pure; the market actor
//! holds the numbers and calls these.
use rust_decimal::Decimal;

/// What a selection carries: stakes on it and the payout owed if it wins (confirmed and
/// reserved together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exposure {
    pub stake: Decimal,
    pub payout: Decimal,
}

/// Which limit a new leg would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// The selection's potential payout would pass `max_liability_selection`.
    Selection,
    /// The market's worst net loss would pass `max_liability_market`.
    Market,
}

/// Every stake on the market.
pub fn total_stake(exposures: &[Exposure]) -> Decimal {
    exposures.iter().map(|e| e.stake).sum()
}

/// The market's net loss if selection `i` wins: its payout less every stake taken.
pub fn liability_if_wins(exposures: &[Exposure], i: usize) -> Decimal {
    exposures.get(i).map_or(Decimal::ZERO, |e| e.payout) - total_stake(exposures)
}

/// The worst net loss over selections, never below zero (a book that wins whatever
/// happens risks nothing).
pub fn worst_case(exposures: &[Exposure]) -> Decimal {
    (0..exposures.len())
        .map(|i| liability_if_wins(exposures, i))
        .max()
        .unwrap_or_default()
        .max(Decimal::ZERO)
}

/// May a leg of `stake` owing `payout` if selection `i` wins be taken under the limits?
pub fn check_leg(
    exposures: &[Exposure],
    i: usize,
    stake: Decimal,
    payout: Decimal,
    max_selection: Decimal,
    max_market: Decimal,
) -> Result<(), Breach> {
    let Some(on) = exposures.get(i) else {
        return Ok(());
    };
    if on.payout + payout > max_selection {
        return Err(Breach::Selection);
    }
    let mut after = exposures.to_vec();
    after[i].stake += stake;
    after[i].payout += payout;
    if worst_case(&after) > max_market {
        return Err(Breach::Market);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn ex(stake: Decimal, payout: Decimal) -> Exposure {
        Exposure { stake, payout }
    }

    #[test]
    fn a_two_way_book_by_hand() {
        // 100 on A at 2.0 (pays 200), 50 on B at 3.0 (pays 150): 150 staked.
        let book = [ex(dec!(100), dec!(200)), ex(dec!(50), dec!(150))];
        assert_eq!(total_stake(&book), dec!(150));
        assert_eq!(liability_if_wins(&book, 0), dec!(50));
        assert_eq!(liability_if_wins(&book, 1), dec!(0));
        assert_eq!(worst_case(&book), dec!(50));
        assert_eq!(
            check_leg(&book, 0, dec!(10), dec!(20), dec!(210), dec!(1000)),
            Err(Breach::Selection)
        );
        assert_eq!(
            check_leg(&book, 0, dec!(10), dec!(20), dec!(1000), dec!(59)),
            Err(Breach::Market)
        );
        assert_eq!(
            check_leg(&book, 0, dec!(10), dec!(20), dec!(1000), dec!(60)),
            Ok(())
        );
    }

    fn cents() -> impl Strategy<Value = Decimal> {
        (0i64..1_000_000).prop_map(|c| Decimal::new(c, 2))
    }

    fn book() -> impl Strategy<Value = Vec<Exposure>> {
        prop::collection::vec((cents(), cents()).prop_map(|(s, p)| ex(s, p)), 1..6)
    }

    proptest! {
        #[test]
        fn the_worst_case_is_the_largest_loss_and_never_negative(b in book()) {
            let worst = worst_case(&b);
            prop_assert!(worst >= Decimal::ZERO);
            for i in 0..b.len() {
                prop_assert!(liability_if_wins(&b, i) <= worst);
            }
        }

        #[test]
        fn a_leg_is_taken_exactly_when_the_book_after_it_keeps_both_limits(
            b in book(), i in 0usize..6, stake in cents(), odds_cents in 101i64..5000,
            max_sel in cents(), max_mkt in cents(),
        ) {
            let i = i % b.len();
            let payout = (stake * Decimal::new(odds_cents, 2)).round_dp(2);
            let taken = check_leg(&b, i, stake, payout, max_sel, max_mkt).is_ok();
            let mut after = b.clone();
            after[i].stake += stake;
            after[i].payout += payout;
            let within = after[i].payout <= max_sel && worst_case(&after) <= max_mkt;
            prop_assert_eq!(taken, within);
        }

        #[test]
        fn stakes_on_other_selections_never_raise_a_selections_loss(
            b in book(), extra in cents(),
        ) {
            // Money staked on another outcome is kept if this one wins.
            let mut more = b.clone();
            let last = more.len() - 1;
            more[last].stake += extra;
            for i in 0..last {
                prop_assert!(liability_if_wins(&more, i) <= liability_if_wins(&b, i));
            }
        }
    }
}
