//! Money: amounts as `Decimal` with exactly two places, their strict parsing from the API's
//! decimal strings, the payout rounding rule, and the `ValidationError` shared by every
//! numeric string the domain parses (money here, odds in `odds`).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Decimal places of every amount (the seed's `DECIMAL(_, 2)` columns).
pub const MONEY_SCALE: u32 = 2;

/// Longest numeric string accepted. 24 characters is far above any column's precision and
/// well below the 28 digits a `Decimal` holds, so parsing can never overflow.
pub const NUMERIC_INPUT_LEN_MAX: usize = 24;

/// Largest amount of the bet columns, `DECIMAL(10,2)` (stake, potential_win, actual_win).
pub const BET_COLUMN_MAX: Money = Money(dec!(99999999.99));

/// Largest amount of the wallet columns, `DECIMAL(12,2)` (balances, transaction amounts).
pub const WALLET_COLUMN_MAX: Money = Money(dec!(9999999999.99));

/// Why a numeric string or value was refused. Every variant is a 422 at the API.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    #[error("value is empty")]
    Empty,
    #[error("value is longer than {max} characters")]
    TooLong { max: usize },
    #[error("exponent notation is not accepted")]
    Exponent,
    #[error("value is not a plain decimal number")]
    Malformed,
    #[error("value must not be negative")]
    Negative,
    #[error("value has more than {max} decimal places")]
    TooManyDecimalPlaces { max: u32 },
    #[error("value must be greater than zero")]
    NotPositive,
    #[error("value is below the minimum {min}")]
    BelowMinimum { min: Decimal },
    #[error("value is above the maximum {max}")]
    AboveMaximum { max: Decimal },
    #[error("american odds must be an integer, at least +100 or at most -100")]
    InvalidAmerican,
    #[error("fractional odds must be N/D with positive integers")]
    InvalidFractional,
}

impl ValidationError {
    /// A stable snake_case name for the error body's `details`.
    pub const fn code(&self) -> &'static str {
        match self {
            ValidationError::Empty => "empty",
            ValidationError::TooLong { .. } => "too_long",
            ValidationError::Exponent => "exponent",
            ValidationError::Malformed => "malformed",
            ValidationError::Negative => "negative",
            ValidationError::TooManyDecimalPlaces { .. } => "too_many_decimal_places",
            ValidationError::NotPositive => "not_positive",
            ValidationError::BelowMinimum { .. } => "below_minimum",
            ValidationError::AboveMaximum { .. } => "above_maximum",
            ValidationError::InvalidAmerican => "invalid_american",
            ValidationError::InvalidFractional => "invalid_fractional",
        }
    }
}

/// Parses a plain non-negative decimal string, `digits[.digits]`, with at most `places_max`
/// decimal places, and returns it with exactly `places_max` places. No sign, no exponent,
/// no whitespace, no leading or trailing dot: a float-looking or ambiguous input is refused
/// rather than guessed at.
pub(crate) fn parse_fixed_point(input: &str, places_max: u32) -> Result<Decimal, ValidationError> {
    if input.is_empty() {
        return Err(ValidationError::Empty);
    }
    if input.len() > NUMERIC_INPUT_LEN_MAX {
        return Err(ValidationError::TooLong {
            max: NUMERIC_INPUT_LEN_MAX,
        });
    }
    if input.contains(['e', 'E']) {
        return Err(ValidationError::Exponent);
    }
    let (negative, body) = match input.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((int_part, frac_part)) => (int_part, Some(frac_part)),
        None => (body, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || frac_part.is_some_and(|frac| !all_digits(frac)) {
        return Err(ValidationError::Malformed);
    }
    if negative {
        return Err(ValidationError::Negative);
    }
    if frac_part.map_or(0, str::len) > places_max as usize {
        return Err(ValidationError::TooManyDecimalPlaces { max: places_max });
    }
    let mut value = Decimal::from_str_exact(body).map_err(|_| ValidationError::Malformed)?;
    value.rescale(places_max);
    Ok(value)
}

/// An amount of money with exactly [`MONEY_SCALE`] places (invariant of every constructor
/// and operation, so `Display` always prints cents: `"10.50"`). May be negative (ledger
/// deltas); amounts parsed from clients never are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(dec!(0.00));

    /// Parses a client's amount: non-negative, at most 2 places, no exponent.
    pub fn parse(input: &str) -> Result<Money, ValidationError> {
        parse_fixed_point(input, MONEY_SCALE).map(Money)
    }

    /// Parses an amount that must be greater than zero and at most `max` (a stake, a
    /// deposit, a withdrawal).
    pub fn parse_positive(input: &str, max: Money) -> Result<Money, ValidationError> {
        Money::parse(input)?.ensure_positive_at_most(max)
    }

    /// Takes a value from elsewhere (a `NUMERIC(_,2)` column, a computation): refused if it
    /// needs more than 2 places; trailing zeros beyond them are fine. The scale is set to two
    /// places whatever the value had: a database's bare `0` (`coalesce(sum(..), 0)`) prints
    /// as `"0.00"`.
    pub fn from_decimal(value: Decimal) -> Result<Money, ValidationError> {
        if value.normalize().scale() > MONEY_SCALE {
            return Err(ValidationError::TooManyDecimalPlaces { max: MONEY_SCALE });
        }
        let mut value = value;
        value.rescale(MONEY_SCALE);
        Ok(Money(value))
    }

    /// An amount from a whole number of cents.
    pub fn from_cents(cents: i64) -> Money {
        Money(Decimal::new(cents, MONEY_SCALE))
    }

    /// The amount in cents (exact, thanks to the scale invariant).
    pub fn cents(self) -> i128 {
        self.0.mantissa()
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn is_positive(self) -> bool {
        self.0 > Decimal::ZERO
    }

    pub fn is_negative(self) -> bool {
        self.0 < Decimal::ZERO
    }

    /// `self` if it is > 0 and <= `max`.
    pub fn ensure_positive_at_most(self, max: Money) -> Result<Money, ValidationError> {
        if !self.is_positive() {
            return Err(ValidationError::NotPositive);
        }
        if self > max {
            return Err(ValidationError::AboveMaximum { max: max.0 });
        }
        Ok(self)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// `self × count`, e.g. a system bet's unit stake times its lines.
    pub fn checked_mul_count(self, count: u64) -> Option<Money> {
        self.0.checked_mul(Decimal::from(count)).map(Money)
    }
}

/// The payout rounding rule: an exact payout is rounded **down** at the account currency's
/// scale (to the cent for most; toward zero: payouts are never negative), in the house's
/// favour, as sportsbooks do. It is applied once, to a bet's whole exact payout, never per
/// leg or per line. [`super::currency::round_money`] does the rounding.
pub fn round_payout(exact: Decimal, scale: super::currency::Scale) -> Money {
    super::currency::round_money(exact, scale, super::currency::Rounding::Down)
}

/// Zero with two places (`"0.00"`), never the bare `Decimal` zero.
impl Default for Money {
    fn default() -> Money {
        Money::ZERO
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Money {
    type Err = ValidationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Money::parse(input)
    }
}

impl From<Money> for String {
    fn from(money: Money) -> String {
        money.to_string()
    }
}

/// Deserialization is for client input: a JSON string, validated as [`Money::parse`].
impl TryFrom<String> for Money {
    type Error = ValidationError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        Money::parse(&input)
    }
}

// Operators: amounts are bounded by validation (≤ 1e10) and a `Decimal` holds 7.9e28, so
// sums of validated amounts cannot overflow; `checked_*` exist for unbounded counts.
impl Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0 + other.0)
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, other: Money) -> Money {
        Money(self.0 - other.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        self.0 += other.0;
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, other: Money) {
        self.0 -= other.0;
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_amounts_parse_with_two_places() {
        assert_eq!(Money::parse("10").unwrap().to_string(), "10.00");
        assert_eq!(Money::parse("10.5").unwrap().to_string(), "10.50");
        assert_eq!(Money::parse("0.01").unwrap().cents(), 1);
        assert_eq!(Money::parse("007.25").unwrap().to_string(), "7.25");
    }

    #[test]
    fn float_like_and_malformed_amounts_are_refused() {
        use ValidationError::*;
        let cases = [
            ("", Empty),
            ("1e3", Exponent),
            ("1.5E2", Exponent),
            ("10.505", TooManyDecimalPlaces { max: 2 }),
            ("-1.00", Negative),
            ("+1.00", Malformed),
            (" 1.00", Malformed),
            ("1.00 ", Malformed),
            (".5", Malformed),
            ("5.", Malformed),
            ("1.2.3", Malformed),
            ("NaN", Malformed),
            ("inf", Malformed),
            ("1,00", Malformed),
            ("-", Malformed),
            ("1234567890123456789012345", TooLong { max: 24 }),
        ];
        for (input, expected) in cases {
            assert_eq!(Money::parse(input), Err(expected), "input {input:?}");
        }
    }

    #[test]
    fn positive_amounts_are_bounded_on_both_sides() {
        let max = Money::parse("100.00").unwrap();
        assert_eq!(
            Money::parse_positive("0", max),
            Err(ValidationError::NotPositive)
        );
        assert_eq!(
            Money::parse_positive("0.00", max),
            Err(ValidationError::NotPositive)
        );
        assert_eq!(
            Money::parse_positive("100.01", max),
            Err(ValidationError::AboveMaximum { max: dec!(100.00) })
        );
        assert_eq!(Money::parse_positive("100", max), Ok(max));
        assert_eq!(Money::parse_positive("0.01", max), Ok(Money::from_cents(1)));
    }

    #[test]
    fn from_decimal_checks_the_scale_but_not_trailing_zeros() {
        assert_eq!(
            Money::from_decimal(dec!(2.5000)).unwrap().to_string(),
            "2.50"
        );
        assert_eq!(Money::from_decimal(dec!(-3)).unwrap().to_string(), "-3.00");
        assert_eq!(
            Money::from_decimal(dec!(2.505)),
            Err(ValidationError::TooManyDecimalPlaces { max: 2 })
        );
    }

    #[test]
    fn stored_amounts_and_the_default_print_two_places() {
        // A database answer with scale 0 (`coalesce(sum(stake), 0)`) prints with cents.
        assert_eq!(Money::from_decimal(dec!(0)).unwrap().to_string(), "0.00");
        assert_eq!(Money::from_decimal(dec!(12)).unwrap().to_string(), "12.00");
        assert_eq!(Money::from_decimal(dec!(7.5)).unwrap().to_string(), "7.50");
        assert_eq!(
            Money::from_decimal(dec!(0.001)),
            Err(ValidationError::TooManyDecimalPlaces { max: 2 })
        );
        assert_eq!(Money::default().to_string(), "0.00");
        assert_eq!(
            serde_json::to_string(&Money::from_decimal(dec!(0)).unwrap()).unwrap(),
            "\"0.00\""
        );
        assert_eq!(format!("{:.2}", Money::from_cents(150)), "1.50");
    }

    #[test]
    fn payouts_round_down_to_the_cent() {
        let c = crate::domain::currency::Scale::CENTS;
        assert_eq!(round_payout(dec!(4.439889), c).to_string(), "4.43");
        assert_eq!(round_payout(dec!(4.4399999), c).to_string(), "4.43");
        assert_eq!(round_payout(dec!(4.005), c).to_string(), "4.00");
        assert_eq!(round_payout(dec!(25), c).to_string(), "25.00");
        assert_eq!(round_payout(dec!(0.009), c), Money::ZERO);
        let yen = crate::domain::currency::Scale::new(0).unwrap();
        assert_eq!(round_payout(dec!(25.99), yen).to_string(), "25.00");
    }

    #[test]
    fn arithmetic_keeps_two_places() {
        let a = Money::parse("10.10").unwrap();
        let b = Money::parse("0.9").unwrap();
        assert_eq!((a + b).to_string(), "11.00");
        assert_eq!((b - a).to_string(), "-9.20");
        assert_eq!(a.checked_mul_count(3).unwrap().to_string(), "30.30");
        assert_eq!([a, b, a].into_iter().sum::<Money>().to_string(), "21.10");
        assert_eq!(Money::ZERO.to_string(), "0.00");
    }

    #[test]
    fn serde_uses_strings_and_refuses_numbers() {
        let money: Money = serde_json::from_str("\"10.5\"").unwrap();
        assert_eq!(serde_json::to_string(&money).unwrap(), "\"10.50\"");
        assert!(serde_json::from_str::<Money>("10.5").is_err());
        assert!(serde_json::from_str::<Money>("\"10.555\"").is_err());
    }

    proptest! {
        #[test]
        fn cents_round_trip_through_strings(cents in 0i64..=999_999_999_999) {
            let money = Money::from_cents(cents);
            let parsed = Money::parse(&money.to_string()).unwrap();
            prop_assert_eq!(parsed, money);
            prop_assert_eq!(parsed.cents(), i128::from(cents));
        }

        #[test]
        fn rounding_a_payout_never_adds_money(units in 0i64..=10_000_000_000, scale in 0u32..=8) {
            let exact = Decimal::new(units, scale);
            let rounded = round_payout(exact, crate::domain::currency::Scale::CENTS).as_decimal();
            prop_assert!(rounded <= exact);
            prop_assert!(exact - rounded < dec!(0.01));
        }
    }
}
