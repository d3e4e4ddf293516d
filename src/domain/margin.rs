//! Market margin: the overround `sum(1/odds) - 1` of a market's prices, and the floor a
//! price update must not take it below.

use rust_decimal::{Decimal, RoundingStrategy};
use thiserror::Error;

use super::odds::Odds;

/// Places the margin is rounded to (half away from zero). Eight places resolve a change of
/// one ten-thousandth in any price up to 100, more than a floor in percent ever needs.
pub const MARGIN_SCALE: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MarginError {
    #[error("a market needs at least one price to have a margin")]
    NoPrices,
    #[error("margin {margin} would be below the floor {floor}")]
    BelowFloor { margin: Decimal, floor: Decimal },
}

/// The overround: `sum(1/d) - 1` over the market's prices, as a fraction (0.05 = 5%),
/// rounded to [`MARGIN_SCALE`] places. Zero for fair prices, negative for a book a bettor
/// could back every way at a profit.
pub fn overround(prices: &[Odds]) -> Result<Decimal, MarginError> {
    if prices.is_empty() {
        return Err(MarginError::NoPrices);
    }
    // Each 1/d <= 1, so the sum of any realistic number of prices stays far from overflow.
    let book: Decimal = prices.iter().map(|price| price.implied_probability()).sum();
    Ok((book - Decimal::ONE)
        .round_dp_with_strategy(MARGIN_SCALE, RoundingStrategy::MidpointAwayFromZero))
}

/// The market's margin if it is at least `floor`; otherwise `BelowFloor`, and the price
/// update that would lead there is refused.
pub fn check_margin_floor(prices: &[Odds], floor: Decimal) -> Result<Decimal, MarginError> {
    let margin = overround(prices)?;
    if margin < floor {
        return Err(MarginError::BelowFloor { margin, floor });
    }
    Ok(margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::odds::ODDS_COLUMN_MAX;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn prices(texts: &[&str]) -> Vec<Odds> {
        texts
            .iter()
            .map(|t| Odds::parse(t, ODDS_COLUMN_MAX).unwrap())
            .collect()
    }

    #[test]
    fn known_books_have_known_margins() {
        // Two fair coins: 1/2 + 1/2 - 1 = 0.
        assert_eq!(overround(&prices(&["2", "2"])).unwrap(), dec!(0));
        // -110 both ways: 2/1.9091 - 1 = 0.047614059... → 0.04761406.
        assert_eq!(
            overround(&prices(&["1.9091", "1.9091"])).unwrap(),
            dec!(0.04761406)
        );
        // 1/2.5 + 1/3.2 + 1/3.5 - 1 = 0.4 + 0.3125 + 0.285714285... - 1 = -0.001785714...
        assert_eq!(
            overround(&prices(&["2.5", "3.2", "3.5"])).unwrap(),
            dec!(-0.00178571)
        );
        assert_eq!(overround(&[]), Err(MarginError::NoPrices));
    }

    #[test]
    fn a_price_update_below_the_floor_is_refused() {
        let floor = dec!(0.02);
        assert_eq!(
            check_margin_floor(&prices(&["1.9091", "1.9091"]), floor),
            Ok(dec!(0.04761406))
        );
        assert_eq!(
            check_margin_floor(&prices(&["1.9091", "2.1"]), floor),
            Err(MarginError::BelowFloor {
                // 1/1.9091 + 1/2.1 - 1 = 0.5238070... + 0.4761904... - 1 = -0.0000024943...
                margin: dec!(-0.00000249),
                floor
            })
        );
        // Exactly at the floor is allowed.
        assert_eq!(
            check_margin_floor(&prices(&["2", "2"]), dec!(0)),
            Ok(dec!(0))
        );
    }

    proptest! {
        #[test]
        fn fair_prices_have_a_margin_near_zero(weights in prop::collection::vec(1u32..=1000, 2..=10)) {
            // Probabilities w_i / W priced at 1/p rounded to 4 places: each 1/d moves by at most
            // 0.00005 / d² < 0.00005, so the margin is within n × 0.00005 of zero.
            let total: u32 = weights.iter().sum();
            let book: Vec<Odds> = weights
                .iter()
                .map(|&w| {
                    let fair = (Decimal::from(total) / Decimal::from(w)).round_dp(4);
                    Odds::from_decimal(fair, ODDS_COLUMN_MAX).unwrap()
                })
                .collect();
            let tolerance = Decimal::from(weights.len()) * dec!(0.00005);
            prop_assert!(overround(&book).unwrap().abs() <= tolerance);
        }

        #[test]
        fn shortening_a_price_never_lowers_the_margin(units in 10_001i64..=1_000_000, cut in 1i64..=5_000) {
            let long = Odds::from_decimal(Decimal::new(units + cut, 4), ODDS_COLUMN_MAX).unwrap();
            let short = Odds::from_decimal(Decimal::new(units, 4), ODDS_COLUMN_MAX).unwrap();
            let other = Odds::parse("2", ODDS_COLUMN_MAX).unwrap();
            prop_assert!(overround(&[short, other]).unwrap() >= overround(&[long, other]).unwrap());
        }
    }
}
