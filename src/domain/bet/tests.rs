//! Tests of odds-change policies, leg checks, combinations and pricing.

use super::*;
use crate::domain::ids::{EventId, MarketId, SelectionId};
use crate::domain::odds::ODDS_COLUMN_MAX;
use proptest::prelude::*;
use rust_decimal_macros::dec;
use uuid::Uuid;

fn odds(text: &str) -> Odds {
    Odds::parse(text, ODDS_COLUMN_MAX).unwrap()
}

fn money(text: &str) -> Money {
    Money::parse(text).unwrap()
}

fn limits() -> BetLimits {
    BetLimits {
        legs_max: 12,
        system_lines_max: 1_000,
        total_odds_max: dec!(10000),
        potential_win_max: money("100000.00"),
        scale: crate::domain::currency::Scale::CENTS,
    }
}

#[test]
fn odds_change_policies_at_the_boundary() {
    let requested = odds("2.0000");
    let (lower, same, higher) = (odds("1.9999"), odds("2.0000"), odds("2.0001"));
    use OddsChangePolicy as P;
    let table = [
        (P::None, [false, true, false]),
        (P::Higher, [false, true, true]),
        (P::Any, [true, true, true]),
    ];
    for (policy, expected) in table {
        let got = [lower, same, higher].map(|current| policy.accepts(requested, current));
        assert_eq!(got, expected, "{policy}");
    }
    assert_eq!(
        P::Higher.check(requested, lower),
        Err(BetError::OddsChanged {
            offered: requested,
            current: lower
        })
    );
    assert_eq!(P::None.check(requested, same), Ok(()));
    assert_eq!("higher".parse::<P>(), Ok(P::Higher));
}

fn leg(market: u128, event: u128, market_type: MarketType) -> LegKey {
    LegKey {
        selection_id: SelectionId(Uuid::from_u128(market * 100)),
        market_id: MarketId(Uuid::from_u128(market)),
        event_id: EventId(Uuid::from_u128(1_000 + event)),
        market_type,
    }
}

#[test]
fn two_legs_on_one_market_are_a_duplicate() {
    let never = |_: &LegKey, _: &LegKey| false;
    let a = leg(1, 1, MarketType::Moneyline);
    let mut other_selection_same_market = a;
    other_selection_same_market.selection_id = SelectionId(Uuid::from_u128(7));
    assert_eq!(
        check_legs(
            &[
                a,
                leg(2, 2, MarketType::Moneyline),
                other_selection_same_market
            ],
            never
        ),
        Err(BetError::DuplicateLeg {
            market_id: a.market_id
        })
    );
    assert_eq!(
        check_legs(&[a, a], |_, _| true),
        Err(BetError::DuplicateLeg {
            market_id: a.market_id
        })
    );
    assert_eq!(
        check_legs(&[a, leg(2, 2, MarketType::Moneyline)], never),
        Ok(())
    );
}

#[test]
fn two_legs_on_one_event_are_correlated_unless_allowed() {
    let winner = leg(1, 1, MarketType::Moneyline);
    let total = leg(2, 1, MarketType::TotalPoints);
    let never = |_: &LegKey, _: &LegKey| false;
    assert_eq!(
        check_legs(&[winner, total], never),
        Err(BetError::CorrelatedLegs {
            event_id: winner.event_id
        })
    );
    let moneyline_with_totals = |a: &LegKey, b: &LegKey| {
        let pair = [a.market_type, b.market_type];
        pair.contains(&MarketType::Moneyline) && pair.contains(&MarketType::TotalPoints)
    };
    assert_eq!(check_legs(&[winner, total], moneyline_with_totals), Ok(()));
    let spread = leg(3, 1, MarketType::PointSpread);
    assert!(check_legs(&[winner, spread], moneyline_with_totals).is_err());
}

#[test]
fn shapes_are_checked_per_bet_type() {
    use BetType::*;
    let wrong = |bet_type, legs, min, max| {
        Err(BetError::WrongLegCount {
            bet_type,
            legs,
            min,
            max,
        })
    };
    assert_eq!(check_shape(Single, 1, None, 12), Ok(1));
    assert_eq!(check_shape(Single, 0, None, 12), wrong(Single, 0, 1, 1));
    assert_eq!(check_shape(Single, 2, None, 12), wrong(Single, 2, 1, 1));
    assert_eq!(check_shape(Parlay, 1, None, 12), wrong(Parlay, 1, 2, 12));
    assert_eq!(check_shape(Parlay, 12, None, 12), Ok(1));
    assert_eq!(check_shape(Parlay, 13, None, 12), wrong(Parlay, 13, 2, 12));
    assert_eq!(
        check_shape(Parlay, 31, None, 99),
        wrong(Parlay, 31, 2, LEGS_HARD_MAX)
    );
    assert_eq!(check_shape(System, 2, Some(1), 12), wrong(System, 2, 3, 12));
    assert_eq!(check_shape(System, 3, Some(2), 12), Ok(3));
    assert_eq!(check_shape(System, 4, Some(3), 12), Ok(4));
    assert_eq!(
        check_shape(System, 3, None, 12),
        Err(BetError::SystemSizeMissing)
    );
    let out = |k, n| {
        Err(BetError::SystemSizeOutOfRange {
            system_size: k,
            legs: n,
        })
    };
    assert_eq!(check_shape(System, 3, Some(3), 12), out(3, 3));
    assert_eq!(check_shape(System, 3, Some(1), 12), out(1, 3));
    assert_eq!(
        check_shape(Parlay, 3, Some(2), 12),
        Err(BetError::SystemSizeNotAllowed { bet_type: Parlay })
    );
    // C(30,15) lines would be 155 million: refused before anything is enumerated.
    assert_eq!(
        check_shape(System, 30, Some(15), 30),
        Err(BetError::TooManyLines {
            lines: 155_117_520,
            max: SYSTEM_LINES_HARD_MAX
        })
    );
}

#[test]
fn combinations_are_listed_in_order() {
    assert_eq!(
        system_lines(3, 2, 12).unwrap(),
        [vec![0, 1], vec![0, 2], vec![1, 2]]
    );
    assert_eq!(
        system_lines(4, 3, 12).unwrap(),
        [vec![0, 1, 2], vec![0, 1, 3], vec![0, 2, 3], vec![1, 2, 3]]
    );
    assert_eq!(
        system_lines(13, 2, 12),
        Err(BetError::TooManyLegs { legs: 13, max: 12 })
    );
    assert!(system_lines(3, 0, 12).is_err());
    assert!(system_lines(3, 4, 12).is_err());
    assert_eq!(
        (line_count(3, 2), line_count(8, 4), line_count(3, 5)),
        (3, 70, 0)
    );
}

#[test]
fn bets_are_priced_by_hand() {
    let l = limits();
    // Single: 10.00 × 2.5 = 25.00.
    let single = price_bet(BetType::Single, &[odds("2.5")], money("10"), None, &l).unwrap();
    assert_eq!(
        single,
        Priced {
            lines: 1,
            total_stake: money("10"),
            total_odds: dec!(2.5000),
            potential_win: money("25")
        }
    );
    // Parlay: 10.00 × 2 × 1.5 × 3 = 90.00, total odds 9.0000.
    let legs = [odds("2"), odds("1.5"), odds("3")];
    let parlay = price_bet(BetType::Parlay, &legs, money("10"), None, &l).unwrap();
    assert_eq!(
        (parlay.total_odds, parlay.potential_win),
        (dec!(9.0000), money("90"))
    );
    // Rounded down: 3.33 × 1.3333 = 4.439889 → 4.43.
    let down = price_bet(BetType::Single, &[odds("1.3333")], money("3.33"), None, &l).unwrap();
    assert_eq!(down.potential_win.to_string(), "4.43");
    // Parlay total odds keep 4 places: 1.9091 × 1.9091 = 3.64466281 → 3.6447.
    let two = price_bet(
        BetType::Parlay,
        &[odds("1.9091"), odds("1.9091")],
        money("1"),
        None,
        &l,
    )
    .unwrap();
    assert_eq!(
        (two.total_odds, two.potential_win),
        (dec!(3.6447), money("3.64"))
    );
}

#[test]
fn system_bets_stake_every_line() {
    // 2 of 3 at 2, 3, 4 with 10.00 a line: lines 2×3 + 2×4 + 3×4 = 26, so 260.00 on a
    // total stake of 30.00; total odds 260/30 = 8.6666... → 8.6667.
    let legs = [odds("2"), odds("3"), odds("4")];
    let priced = price_bet(BetType::System, &legs, money("10"), Some(2), &limits()).unwrap();
    assert_eq!(
        priced,
        Priced {
            lines: 3,
            total_stake: money("30"),
            total_odds: dec!(8.6667),
            potential_win: money("260")
        }
    );
    // 3 of 4 at 2 each: 4 lines of 8 → 32 per unit.
    let legs = [odds("2"); 4];
    let priced = price_bet(BetType::System, &legs, money("1"), Some(3), &limits()).unwrap();
    assert_eq!(
        (priced.lines, priced.total_stake, priced.potential_win),
        (4, money("4"), money("32"))
    );
}

#[test]
fn pricing_refuses_what_the_limits_or_columns_cannot_hold() {
    let l = limits();
    assert_eq!(
        price_bet(BetType::Single, &[odds("2")], Money::ZERO, None, &l),
        Err(BetError::StakeNotPositive)
    );
    // 5 legs at 10 = 100,000 > 10,000.
    let legs = [odds("10"); 5];
    assert_eq!(
        price_bet(BetType::Parlay, &legs, money("0.01"), None, &l),
        Err(BetError::TotalOddsTooHigh {
            total_odds: dec!(100000.0000),
            max: dec!(10000)
        })
    );
    assert_eq!(
        price_bet(BetType::Single, &[odds("1001")], money("100"), None, &l),
        Err(BetError::PotentialWinTooHigh {
            potential_win: money("100100"),
            max: money("100000")
        })
    );
    let few_lines = BetLimits {
        system_lines_max: 3,
        ..limits()
    };
    assert_eq!(
        price_bet(
            BetType::System,
            &[odds("2"); 4],
            money("1"),
            Some(2),
            &few_lines
        ),
        Err(BetError::TooManyLines { lines: 6, max: 3 })
    );
}

fn binomial_by_factorials(n: u32, k: u32) -> u128 {
    let factorial = |m: u32| (1..=u128::from(m)).product::<u128>();
    factorial(n) / (factorial(k) * factorial(n - k))
}

proptest! {
    #[test]
    fn system_line_count_is_n_choose_k(n in 1usize..=14, k_seed in 0usize..14) {
        let k = 1 + k_seed % n;
        let lines = system_lines(n, k, 14).unwrap();
        let expected = binomial_by_factorials(n as u32, k as u32);
        prop_assert_eq!(u128::from(line_count(n, k)), expected);
        prop_assert_eq!(lines.len() as u128, expected);
        for line in &lines {
            prop_assert_eq!(line.len(), k);
            prop_assert!(line.windows(2).all(|w| w[0] < w[1]) && line[k - 1] < n);
        }
        let mut distinct = lines.clone();
        distinct.dedup();
        prop_assert_eq!(distinct.len(), lines.len());
    }

    #[test]
    fn a_parlay_of_wins_pays_stake_times_product_rounded_down(
        stake_cents in 1u64..=10_000,
        odds_units in prop::collection::vec(10_001u64..=200_000, 2..=4),
    ) {
        // Odds up to 20, 4 legs, stakes up to 100.00: within the columns, so always priced.
        // Exact in integers: cents × Π(ten-thousandths) over 10^(4n), floored to the cent.
        let scale = 10u128.pow(4 * odds_units.len() as u32);
        let numerator = odds_units.iter().fold(u128::from(stake_cents), |acc, &u| acc * u128::from(u));
        let expected_cents = numerator / scale;
        let legs: Vec<Odds> = odds_units
            .iter()
            .map(|&u| Odds::from_decimal(Decimal::new(u as i64, 4), ODDS_COLUMN_MAX).unwrap())
            .collect();
        let unbounded = BetLimits {
            legs_max: 4,
            system_lines_max: 1,
            total_odds_max: ODDS_COLUMN_MAX,
            potential_win_max: BET_COLUMN_MAX,
            scale: crate::domain::currency::Scale::CENTS,
        };
        let priced = price_bet(BetType::Parlay, &legs, Money::from_cents(stake_cents as i64), None, &unbounded).unwrap();
        prop_assert_eq!(priced.potential_win.cents() as u128, expected_cents);
    }
}
