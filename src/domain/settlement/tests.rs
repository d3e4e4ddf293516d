//! The settlement table (expected payouts worked out by hand in the comments) and
//! properties of payouts.

use super::*;
use crate::domain::bet::{price_bet, BetLimits};
use crate::domain::money::BET_COLUMN_MAX;
use crate::domain::odds::ODDS_COLUMN_MAX;
use proptest::prelude::*;

/// Settles at two places (the scale's own tests are in `currency`).
fn settle_bet(
    bet_type: BetType,
    unit_stake: Money,
    legs: &[(Odds, Option<LegOutcome>)],
    system_size: Option<usize>,
) -> Result<Option<Settled>, SettlementError> {
    super::settle_bet(
        bet_type,
        unit_stake,
        legs,
        system_size,
        crate::domain::currency::Scale::CENTS,
    )
}
use rust_decimal_macros::dec;
use BetStatus::{SettledLoss as LOSS, SettledPush as PUSH, SettledWin as WIN};
use BetType::{Parlay, Single, System};

type Leg = (&'static str, Option<LegOutcome>);

fn odds(text: &str) -> Odds {
    Odds::parse(text, ODDS_COLUMN_MAX).unwrap()
}

fn money(text: &str) -> Money {
    Money::parse(text).unwrap()
}

fn plain(result: LegResult) -> Option<LegOutcome> {
    Some(LegOutcome::plain(result))
}

fn won() -> Option<LegOutcome> {
    plain(LegResult::Win)
}

fn lost() -> Option<LegOutcome> {
    plain(LegResult::Loss)
}

fn dead_heat(factor: Decimal) -> Option<LegOutcome> {
    Some(LegOutcome::new(LegResult::Win, Some(factor), None).unwrap())
}

fn half_void(result: LegResult) -> Option<LegOutcome> {
    Some(LegOutcome::new(result, None, Some(dec!(0.5))).unwrap())
}

struct Case {
    name: &'static str,
    bet_type: BetType,
    unit_stake: &'static str,
    system_size: Option<usize>,
    legs: Vec<Leg>,
    /// (status, payout), or None while a leg is unsettled.
    expected: Option<(BetStatus, &'static str)>,
}

fn case(
    name: &'static str,
    bet_type: BetType,
    system_size: Option<usize>,
    legs: Vec<Leg>,
    expected: Option<(BetStatus, &'static str)>,
) -> Case {
    Case {
        name,
        bet_type,
        unit_stake: "10.00",
        system_size,
        legs,
        expected,
    }
}

fn single_cases() -> Vec<Case> {
    use LegResult::*;
    vec![
        // 10 × 2.5 = 25.00
        case(
            "single win",
            Single,
            None,
            vec![("2.5", won())],
            Some((WIN, "25.00")),
        ),
        case(
            "single loss",
            Single,
            None,
            vec![("2.5", lost())],
            Some((LOSS, "0.00")),
        ),
        case(
            "single push",
            Single,
            None,
            vec![("2.5", plain(Push))],
            Some((PUSH, "10.00")),
        ),
        case(
            "single void",
            Single,
            None,
            vec![("2.5", plain(Void))],
            Some((PUSH, "10.00")),
        ),
        // Two tied: half the stake at full odds, 10 × 0.5 × 4 = 20.00.
        case(
            "dead heat 1/2",
            Single,
            None,
            vec![("4", dead_heat(dec!(0.5)))],
            Some((WIN, "20.00")),
        ),
        // Short odds: 10 × 0.5 × 1.5 = 7.50, less than the stake yet a win by the rule.
        case(
            "dead heat short",
            Single,
            None,
            vec![("1.5", dead_heat(dec!(0.5)))],
            Some((WIN, "7.50")),
        ),
        // Three tied for one place: 10 × 7 / 3 = 23.333... → 23.33.
        case(
            "dead heat 1/3",
            Single,
            None,
            vec![("7", dead_heat(dead_heat_factor(1, 3).unwrap()))],
            Some((WIN, "23.33")),
        ),
        // Half won: 10 × (0.5 + 0.5 × 1.9) = 10 × 1.45 = 14.50.
        case(
            "half won",
            Single,
            None,
            vec![("1.9", half_void(Win))],
            Some((WIN, "14.50")),
        ),
        // Half lost: 10 × 0.5 = 5.00 back; above zero, so a win by the rule.
        case(
            "half lost",
            Single,
            None,
            vec![("1.9", half_void(Loss))],
            Some((WIN, "5.00")),
        ),
        case(
            "half-void push",
            Single,
            None,
            vec![("1.9", half_void(Push))],
            Some((PUSH, "10.00")),
        ),
        case("unsettled single", Single, None, vec![("1.9", None)], None),
        Case {
            // 3.33 × 1.3333 = 4.439889, rounded down to 4.43.
            unit_stake: "3.33",
            ..case(
                "rounded down",
                Single,
                None,
                vec![("1.3333", won())],
                Some((WIN, "4.43")),
            )
        },
    ]
}

fn parlay_cases() -> Vec<Case> {
    use LegResult::*;
    vec![
        // 10 × 2 × 1.5 × 3 = 90.00
        case(
            "all won",
            Parlay,
            None,
            vec![("2", won()), ("1.5", won()), ("3", won())],
            Some((WIN, "90.00")),
        ),
        // The void leg counts at 1.00: 10 × 2 × 1 × 1.5 = 30.00.
        case(
            "void leg",
            Parlay,
            None,
            vec![("2", won()), ("5", plain(Void)), ("1.5", won())],
            Some((WIN, "30.00")),
        ),
        // Same for a push: 10 × 2 × 1 × 1.5 = 30.00.
        case(
            "push leg",
            Parlay,
            None,
            vec![("2", won()), ("1.9", plain(Push)), ("1.5", won())],
            Some((WIN, "30.00")),
        ),
        case(
            "lost leg",
            Parlay,
            None,
            vec![("2", won()), ("1.5", lost()), ("3", won())],
            Some((LOSS, "0.00")),
        ),
        // 10 × (2 × 0.5) × 3 = 30.00
        case(
            "dead heat leg",
            Parlay,
            None,
            vec![("2", dead_heat(dec!(0.5))), ("3", won())],
            Some((WIN, "30.00")),
        ),
        // 10 × 1.45 × 2 = 29.00
        case(
            "half-won leg",
            Parlay,
            None,
            vec![("1.9", half_void(Win)), ("2", won())],
            Some((WIN, "29.00")),
        ),
        // 10 × 0.5 × 2 = 10.00: the stake back, but not every leg returned, so a win.
        case(
            "half-lost leg",
            Parlay,
            None,
            vec![("1.9", half_void(Loss)), ("2", won())],
            Some((WIN, "10.00")),
        ),
        case(
            "all void",
            Parlay,
            None,
            vec![("2", plain(Void)), ("3", plain(Void))],
            Some((PUSH, "10.00")),
        ),
        case(
            "void and push",
            Parlay,
            None,
            vec![("2", plain(Void)), ("3", plain(Push))],
            Some((PUSH, "10.00")),
        ),
        // The bet settles when its last leg does, even if a leg is already lost.
        case(
            "unsettled parlay",
            Parlay,
            None,
            vec![("2", lost()), ("3", None)],
            None,
        ),
    ]
}

fn system_cases() -> Vec<Case> {
    use LegResult::*;
    vec![
        // Lines {2,3} {2,4} {3,4}: 6 + 8 + 12 = 26, × 10 = 260.00 on a stake of 30.00.
        case(
            "2 of 3 won",
            System,
            Some(2),
            vec![("2", won()), ("3", won()), ("4", won())],
            Some((WIN, "260.00")),
        ),
        // The 4 lost: only {2,3} pays, 10 × 6 = 60.00.
        case(
            "2 of 3, one lost",
            System,
            Some(2),
            vec![("2", won()), ("3", won()), ("4", lost())],
            Some((WIN, "60.00")),
        ),
        case(
            "2 of 3, two lost",
            System,
            Some(2),
            vec![("2", won()), ("3", lost()), ("4", lost())],
            Some((LOSS, "0.00")),
        ),
        // The 3 void: {2,1} {2,4} {1,4} = 2 + 8 + 4 = 14, × 10 = 140.00.
        case(
            "2 of 3, one void",
            System,
            Some(2),
            vec![("2", won()), ("3", plain(Void)), ("4", won())],
            Some((WIN, "140.00")),
        ),
        // {2,1} = 2 pays, the lines with the lost 4 do not: 20.00, under the 30.00 staked.
        case(
            "2 of 3, void and lost",
            System,
            Some(2),
            vec![("2", won()), ("3", plain(Void)), ("4", lost())],
            Some((WIN, "20.00")),
        ),
        case(
            "2 of 3, all void",
            System,
            Some(2),
            vec![("2", plain(Void)), ("3", plain(Void)), ("4", plain(Void))],
            Some((PUSH, "30.00")),
        ),
        Case {
            // 4 lines of 5.00; the one line without the lost leg pays 5 × 2 × 2 × 2 = 40.00.
            unit_stake: "5.00",
            ..case(
                "3 of 4, one lost",
                System,
                Some(3),
                vec![("2", won()), ("2", won()), ("2", lost()), ("2", won())],
                Some((WIN, "40.00")),
            )
        },
        Case {
            // Rounded once: 0.01 × (2.89 × 3) = 0.0867 → 0.08; per line it would be 3 × 0.02.
            unit_stake: "0.01",
            ..case(
                "2 of 3, rounded once",
                System,
                Some(2),
                vec![("1.7", won()), ("1.7", won()), ("1.7", won())],
                Some((WIN, "0.08")),
            )
        },
    ]
}

#[test]
fn settlement_table() {
    let cases: Vec<Case> = [single_cases(), parlay_cases(), system_cases()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(cases.len(), 30);
    for case in cases {
        let legs: Vec<(Odds, Option<LegOutcome>)> = case
            .legs
            .iter()
            .map(|(text, outcome)| (odds(text), *outcome))
            .collect();
        let settled = settle_bet(
            case.bet_type,
            money(case.unit_stake),
            &legs,
            case.system_size,
        )
        .unwrap_or_else(|err| panic!("{}: {err}", case.name));
        let got = settled.map(|s| (s.status, s.payout.to_string()));
        let expected = case
            .expected
            .map(|(status, payout)| (status, payout.to_string()));
        assert_eq!(got, expected, "{}", case.name);
    }
}

#[test]
fn total_stake_is_unit_times_lines() {
    let legs = [(odds("2"), won()), (odds("3"), won()), (odds("4"), lost())];
    let settled = settle_bet(System, money("2.50"), &legs, Some(2))
        .unwrap()
        .unwrap();
    assert_eq!(settled.total_stake, money("7.50"));
}

#[test]
fn bad_factors_are_refused() {
    use LegResult::*;
    let refused = [
        LegOutcome::new(Win, Some(dec!(0)), None),
        LegOutcome::new(Win, Some(dec!(1.01)), None),
        LegOutcome::new(Win, None, Some(dec!(-0.5))),
        LegOutcome::new(Loss, Some(dec!(0.5)), None),
    ];
    assert_eq!(
        refused,
        [
            Err(SettlementError::DeadHeatFactorOutOfRange { factor: dec!(0) }),
            Err(SettlementError::DeadHeatFactorOutOfRange { factor: dec!(1.01) }),
            Err(SettlementError::VoidFactorOutOfRange { factor: dec!(-0.5) }),
            Err(SettlementError::DeadHeatWithoutWin { result: Loss }),
        ]
    );
    assert!(LegOutcome::new(Win, Some(dec!(1)), Some(dec!(1))).is_ok());
    assert_eq!(dead_heat_factor(1, 2), Ok(dec!(0.5)));
    assert!(dead_heat_factor(0, 2).is_err());
    assert!(dead_heat_factor(3, 2).is_err());
}

#[test]
fn a_malformed_bet_is_an_error_not_a_payout() {
    let legs = [(odds("2"), won()), (odds("3"), won())];
    assert!(matches!(
        settle_bet(System, money("1"), &legs, Some(2)),
        Err(SettlementError::Bet(_))
    ));
    assert!(matches!(
        settle_bet(Single, money("1"), &legs, None),
        Err(SettlementError::Bet(_))
    ));
    assert!(settle_bet(Parlay, Money::ZERO, &legs, None).is_err());
    assert_eq!(LegResult::ALL.len(), 4);
    assert_eq!("void".parse::<LegResult>(), Ok(LegResult::Void));
}

fn any_odds() -> impl Strategy<Value = Odds> {
    (10_001i64..=50_000)
        .prop_map(|units| Odds::from_decimal(Decimal::new(units, 4), ODDS_COLUMN_MAX).unwrap())
}

fn any_outcome() -> impl Strategy<Value = LegOutcome> {
    (
        0usize..4,
        prop::option::of(1u32..=4),
        prop::option::of(1i64..=100),
    )
        .prop_map(|(result, tied, void_percent)| {
            let result = LegResult::ALL[result];
            let dead_heat = tied
                .filter(|_| result == LegResult::Win)
                .map(|t| dead_heat_factor(1, t).unwrap());
            let void_factor = void_percent.map(|p| Decimal::new(p, 2));
            LegOutcome::new(result, dead_heat, void_factor).unwrap()
        })
}

/// A bet shape for n legs: single for 1, parlay for 2, parlay or a system of k for more.
fn shape_for(n: usize, pick: usize) -> (BetType, Option<usize>) {
    match n {
        1 => (Single, None),
        2 => (Parlay, None),
        _ if pick.is_multiple_of(n) => (Parlay, None),
        _ => (System, Some(2 + pick % (n - 2))),
    }
}

fn limits() -> BetLimits {
    BetLimits {
        legs_max: 6,
        system_lines_max: 100,
        total_odds_max: ODDS_COLUMN_MAX,
        potential_win_max: BET_COLUMN_MAX,
        scale: crate::domain::currency::Scale::CENTS,
    }
}

proptest! {
    #[test]
    fn payouts_are_never_negative_nor_above_the_potential_win(
        legs in prop::collection::vec((any_odds(), any_outcome()), 1..=6),
        pick in 0usize..100,
        unit_cents in 1i64..=10_000,
    ) {
        let (bet_type, system_size) = shape_for(legs.len(), pick);
        let unit = Money::from_cents(unit_cents);
        let odds: Vec<Odds> = legs.iter().map(|(o, _)| *o).collect();
        let priced = price_bet(bet_type, &odds, unit, system_size, &limits()).unwrap();
        let settled_legs: Vec<(Odds, Option<LegOutcome>)> = legs.iter().map(|(o, r)| (*o, Some(*r))).collect();
        let settled = settle_bet(bet_type, unit, &settled_legs, system_size).unwrap().unwrap();
        prop_assert!(!settled.payout.is_negative());
        prop_assert!(settled.payout <= priced.potential_win);
        prop_assert_eq!(settled.total_stake, priced.total_stake);
        prop_assert_eq!(settled.payout.is_zero(), settled.status == LOSS);
    }

    #[test]
    fn all_void_legs_return_the_stake(
        odds in prop::collection::vec(any_odds(), 1..=6),
        pick in 0usize..100,
        unit_cents in 1i64..=10_000,
    ) {
        let (bet_type, system_size) = shape_for(odds.len(), pick);
        let legs: Vec<(Odds, Option<LegOutcome>)> =
            odds.iter().map(|o| (*o, Some(LegOutcome::plain(LegResult::Void)))).collect();
        let settled = settle_bet(bet_type, Money::from_cents(unit_cents), &legs, system_size).unwrap().unwrap();
        prop_assert_eq!(settled.payout, settled.total_stake);
        prop_assert_eq!(settled.status, PUSH);
    }

    #[test]
    fn all_won_legs_pay_the_potential_win(
        odds in prop::collection::vec(any_odds(), 1..=6),
        pick in 0usize..100,
        unit_cents in 1i64..=10_000,
    ) {
        let (bet_type, system_size) = shape_for(odds.len(), pick);
        let unit = Money::from_cents(unit_cents);
        let priced = price_bet(bet_type, &odds, unit, system_size, &limits()).unwrap();
        let legs: Vec<(Odds, Option<LegOutcome>)> = odds.iter().map(|o| (*o, won())).collect();
        let settled = settle_bet(bet_type, unit, &legs, system_size).unwrap().unwrap();
        prop_assert_eq!(settled.payout, priced.potential_win);
        prop_assert_eq!(settled.status, WIN);
    }
}
