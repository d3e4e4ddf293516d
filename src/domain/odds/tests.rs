//! Tests of odds parsing, conversion tables and round-trip properties.

use super::*;
use proptest::prelude::*;

const MAX: Decimal = dec!(1001);

fn odds(text: &str) -> Odds {
    Odds::parse(text, MAX).unwrap()
}

#[test]
fn known_prices_convert_in_every_format() {
    // (decimal, american, fractional)
    let table = [
        ("2.5000", "+150", "3/2"),
        ("1.5000", "-200", "1/2"),
        ("1.9091", "-110", "9091/10000"),
        ("11.0000", "+1000", "10/1"),
        ("2.0000", "+100", "1/1"),
        ("2.1000", "+110", "11/10"),
        ("1.2500", "-400", "1/4"),
        ("1.0001", "-1000000", "1/10000"),
    ];
    for (decimal, american, fractional) in table {
        let price = odds(decimal);
        assert_eq!(display(price, OddsFormat::Decimal), decimal);
        assert_eq!(display(price, OddsFormat::American), american, "{decimal}");
        assert_eq!(
            display(price, OddsFormat::Fractional),
            fractional,
            "{decimal}"
        );
    }
}

#[test]
fn american_and_fractional_inputs_give_the_known_decimals() {
    let table = [
        ("+150", "3/2", "2.5000"),
        ("-200", "1/2", "1.5000"),
        ("+1000", "10/1", "11.0000"),
        ("100", "1/1", "2.0000"),
        ("-100", "2/2", "2.0000"),
        ("-400", "1/4", "1.2500"),
    ];
    for (american, fractional, decimal) in table {
        assert_eq!(
            Odds::parse_american(american, MAX).unwrap().to_string(),
            decimal
        );
        assert_eq!(
            Odds::parse_fractional(fractional, MAX).unwrap().to_string(),
            decimal
        );
    }
    // -110 is 1 + 100/110 = 1.90909..., rounded half away from zero to 4 places.
    assert_eq!(
        Odds::from_american(-110, MAX).unwrap().to_string(),
        "1.9091"
    );
    // 100/30 = 3.3333...: 4.33333... rounds to 4.3333; 2/3 = 0.66666... rounds up.
    assert_eq!(
        Odds::from_fractional(100, 30, MAX).unwrap().to_string(),
        "4.3333"
    );
    assert_eq!(
        Odds::from_fractional(2, 3, MAX).unwrap().to_string(),
        "1.6667"
    );
}

#[test]
fn decimal_strings_are_strict() {
    use ValidationError::*;
    let cases = [
        ("2.10001", TooManyDecimalPlaces { max: 4 }),
        ("2.1e0", Exponent),
        ("-2.5", Negative),
        ("1.0000", BelowMinimum { min: ODDS_MIN }),
        ("0.5", BelowMinimum { min: ODDS_MIN }),
        ("1001.0001", AboveMaximum { max: MAX }),
        ("2,5", Malformed),
        ("", Empty),
    ];
    for (input, expected) in cases {
        assert_eq!(Odds::parse(input, MAX), Err(expected), "input {input:?}");
    }
    assert_eq!(odds("2.1").to_string(), "2.1000");
    assert_eq!(odds("1.0001").value(), dec!(1.0001));
    assert_eq!(odds("1001").value(), dec!(1001.0000));
}

#[test]
fn the_configured_maximum_never_exceeds_the_column() {
    let err = Odds::parse("1000000", dec!(5000000)).unwrap_err();
    assert_eq!(
        err,
        ValidationError::AboveMaximum {
            max: ODDS_COLUMN_MAX
        }
    );
    assert!(odds("900").ensure_at_most(dec!(500)).is_err());
    assert!(odds("500").ensure_at_most(dec!(500)).is_ok());
}

#[test]
fn bad_american_and_fractional_inputs_are_refused() {
    for input in [
        "+99",
        "-99",
        "0",
        "",
        "+",
        "1.5",
        "+1e3",
        " 150",
        "--150",
        "1234567890",
    ] {
        let refused = Odds::parse_american(input, MAX).is_err();
        assert!(refused, "american {input:?}");
    }
    for input in [
        "3/0", "0/2", "3", "/2", "3/", "3/2/1", "-3/2", "1.5/1", "3 /2",
    ] {
        let refused = Odds::parse_fractional(input, MAX).is_err();
        assert!(refused, "fractional {input:?}");
    }
    // Beyond -2,000,000 the price rounds to 1.0000, below the minimum.
    assert_eq!(
        Odds::from_american(-2_000_001, MAX),
        Err(ValidationError::BelowMinimum { min: ODDS_MIN })
    );
    assert_eq!(
        Odds::from_american(i64::MIN, MAX),
        Err(ValidationError::BelowMinimum { min: ODDS_MIN })
    );
    assert!(Odds::from_american(i64::MAX, MAX).is_err());
}

#[test]
fn american_display_rounds_half_away_from_zero() {
    // 1.6667 → -100/0.6667 = -149.99...: -150. 2.0050 → +100.5 → +101.
    assert_eq!(display(odds("1.6667"), OddsFormat::American), "-150");
    assert_eq!(display(odds("2.0050"), OddsFormat::American), "+101");
    // 1.9999 → -100/0.9999 = -100.01...: -100, shown as such.
    assert_eq!(display(odds("1.9999"), OddsFormat::American), "-100");
}

#[test]
fn odds_travel_as_strings() {
    let price: Odds = serde_json::from_str("\"2.15\"").unwrap();
    assert_eq!(serde_json::to_string(&price).unwrap(), "\"2.1500\"");
    assert!(serde_json::from_str::<Odds>("2.15").is_err());
    assert!(serde_json::from_str::<Odds>("\"0.9\"").is_err());
    let format: OddsFormat = serde_json::from_str("\"fractional\"").unwrap();
    assert_eq!(format, OddsFormat::Fractional);
    assert_eq!(OddsFormat::default(), OddsFormat::Decimal);
    assert_eq!("american".parse::<OddsFormat>(), Ok(OddsFormat::American));
    assert!("American".parse::<OddsFormat>().is_err());
}

#[test]
fn parse_in_follows_the_format() {
    assert_eq!(
        Odds::parse_in("+150", OddsFormat::American, MAX),
        Ok(odds("2.5"))
    );
    assert_eq!(
        Odds::parse_in("3/2", OddsFormat::Fractional, MAX),
        Ok(odds("2.5"))
    );
    assert_eq!(
        Odds::parse_in("2.5", OddsFormat::Decimal, MAX),
        Ok(odds("2.5"))
    );
}

fn any_odds() -> impl Strategy<Value = Odds> {
    // 1.0001 ..= 10000.0000 in ten-thousandths.
    (10_001i64..=100_000_000)
        .prop_map(|units| Odds::from_decimal(Decimal::new(units, 4), ODDS_COLUMN_MAX).unwrap())
}

proptest! {
    #[test]
    fn decimal_to_american_and_back_stays_within_tolerance(price in any_odds()) {
        let back = Odds::from_american(price.to_american(), ODDS_COLUMN_MAX).unwrap();
        prop_assert!((back.value() - price.value()).abs() <= AMERICAN_ROUND_TRIP_TOLERANCE,
            "{} -> {} -> {}", price, price.to_american(), back);
    }

    #[test]
    fn decimal_to_fractional_and_back_is_exact(price in any_odds()) {
        let (numerator, denominator) = price.to_fractional();
        prop_assert_eq!(gcd(numerator, denominator), 1);
        let back = Odds::from_fractional(numerator, denominator, ODDS_COLUMN_MAX).unwrap();
        prop_assert_eq!(back, price);
        let shown = display(price, OddsFormat::Fractional);
        prop_assert_eq!(Odds::parse_fractional(&shown, ODDS_COLUMN_MAX).unwrap(), price);
    }

    #[test]
    fn positive_american_prices_round_trip_exactly(american in 100i64..=99_999_899) {
        let price = Odds::from_american(american, ODDS_COLUMN_MAX).unwrap();
        prop_assert_eq!(price.to_american(), american);
    }

    #[test]
    fn negative_american_prices_round_trip_exactly_up_to_999(american in -999i64..=-100) {
        // Rounding the decimal to 4 places moves -100/(d-1) by under 0.5 while |a| < 1000.
        let price = Odds::from_american(american, ODDS_COLUMN_MAX).unwrap();
        let back = if american == -100 { 100 } else { american };
        prop_assert_eq!(price.to_american(), back);
    }

    #[test]
    fn decimal_strings_round_trip(price in any_odds()) {
        prop_assert_eq!(Odds::parse(&price.to_string(), ODDS_COLUMN_MAX).unwrap(), price);
        prop_assert_eq!(price.value().scale(), ODDS_SCALE);
    }

    #[test]
    fn american_display_parses_back_within_tolerance(price in any_odds()) {
        let shown = display(price, OddsFormat::American);
        let back = Odds::parse_american(&shown, ODDS_COLUMN_MAX).unwrap();
        prop_assert!((back.value() - price.value()).abs() <= AMERICAN_ROUND_TRIP_TOLERANCE);
    }
}
