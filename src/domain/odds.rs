//! Odds: decimal odds with 4 places as the canonical price, exact conversion to and from
//! American and fractional odds, `OddsFormat` and `display`.
//!
//! Rounding rules, all documented here and relied on by the tests:
//! - **Into decimal** (from American or fractional input): computed exactly, then rounded to
//!   4 places, half away from zero. Exact whenever the result has at most 4 places (every
//!   positive American price, every fraction whose denominator divides 10,000).
//! - **Decimal → American**: `d >= 2` gives `+(d-1)×100`, `d < 2` gives `-100/(d-1)`, rounded
//!   to the nearest integer, half away from zero (1.9091 → -110). Going back, decimal →
//!   American → decimal is within [`AMERICAN_ROUND_TRIP_TOLERANCE`].
//! - **Decimal → fractional**: `d-1` as a fraction over 10,000, reduced by the gcd
//!   (2.1000 → 11/10). Decimal → fractional → decimal is exact.

use std::fmt;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};

use super::money::{parse_fixed_point, ValidationError};

/// Decimal places of decimal odds (the seed's `DECIMAL(10,4)`).
pub const ODDS_SCALE: u32 = 4;

/// Lowest price: a bet must be able to win something.
pub const ODDS_MIN: Decimal = dec!(1.0001);

/// Highest price the `DECIMAL(10,4)` odds columns hold; the configured maximum is lower.
pub const ODDS_COLUMN_MAX: Decimal = dec!(999999.9999);

/// Most digits accepted in each number of an American or fractional price.
const FORMAT_DIGITS_MAX: usize = 9;

/// Largest gap between decimal odds and the same odds sent through American and back:
/// 0.005 from rounding American to an integer (at |american| >= 100) plus 0.00005 from
/// rounding the decimal back to 4 places.
pub const AMERICAN_ROUND_TRIP_TOLERANCE: Decimal = dec!(0.00505);

wire_enum! {
    /// How a bettor sees prices (Postgres `odds_format`); decimal is the default.
    #[derive(Default)]
    pub enum OddsFormat: "odds_format" {
        American = "american",
        #[default]
        Decimal = "decimal",
        Fractional = "fractional",
    }
}

/// Decimal odds, `ODDS_MIN ..= a configured maximum`, always with exactly 4 places.
/// Serialized as a string (`"2.5000"`); deserialization checks [`ODDS_COLUMN_MAX`] only,
/// so callers holding the configured maximum apply [`Odds::ensure_at_most`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Odds(Decimal);

impl Odds {
    /// Parses decimal odds from the API (`"2.1000"`, `"2.1"`): plain digits, at most 4
    /// places, within `ODDS_MIN ..= max`.
    pub fn parse(input: &str, max: Decimal) -> Result<Odds, ValidationError> {
        Odds::checked(parse_fixed_point(input, ODDS_SCALE)?, max)
    }

    /// Takes decimal odds from elsewhere (a column, a feed already decoded): at most 4
    /// significant places, within `ODDS_MIN ..= max`.
    pub fn from_decimal(value: Decimal, max: Decimal) -> Result<Odds, ValidationError> {
        if value.normalize().scale() > ODDS_SCALE {
            return Err(ValidationError::TooManyDecimalPlaces { max: ODDS_SCALE });
        }
        Odds::checked(value, max)
    }

    /// Decimal odds from an American price: `+a` → `1 + a/100`, `-a` → `1 + 100/a`,
    /// rounded to 4 places half away from zero. |a| below 100 is not a price.
    pub fn from_american(american: i64, max: Decimal) -> Result<Odds, ValidationError> {
        let magnitude = Decimal::from(american.unsigned_abs());
        if magnitude < Decimal::ONE_HUNDRED {
            return Err(ValidationError::InvalidAmerican);
        }
        let profit_per_unit = if american > 0 {
            magnitude / Decimal::ONE_HUNDRED
        } else {
            Decimal::ONE_HUNDRED / magnitude
        };
        Odds::checked(round_to_odds_scale(Decimal::ONE + profit_per_unit), max)
    }

    /// Parses an American price: `"+150"`, `"150"`, `"-200"`.
    pub fn parse_american(input: &str, max: Decimal) -> Result<Odds, ValidationError> {
        let (negative, digits) = match input.as_bytes().first() {
            Some(b'-') => (true, &input[1..]),
            Some(b'+') => (false, &input[1..]),
            _ => (false, input),
        };
        let magnitude = parse_small_integer(digits).ok_or(ValidationError::InvalidAmerican)?;
        let magnitude = i64::try_from(magnitude).map_err(|_| ValidationError::InvalidAmerican)?;
        Odds::from_american(if negative { -magnitude } else { magnitude }, max)
    }

    /// Decimal odds from a fractional price `numerator/denominator`: `1 + n/d`, rounded to
    /// 4 places half away from zero.
    pub fn from_fractional(
        numerator: u64,
        denominator: u64,
        max: Decimal,
    ) -> Result<Odds, ValidationError> {
        if numerator == 0 || denominator == 0 {
            return Err(ValidationError::InvalidFractional);
        }
        let profit_per_unit = Decimal::from(numerator) / Decimal::from(denominator);
        Odds::checked(round_to_odds_scale(Decimal::ONE + profit_per_unit), max)
    }

    /// Parses a fractional price: `"3/2"`, `"10/1"`.
    pub fn parse_fractional(input: &str, max: Decimal) -> Result<Odds, ValidationError> {
        let (numerator, denominator) = input
            .split_once('/')
            .and_then(|(n, d)| Some((parse_small_integer(n)?, parse_small_integer(d)?)))
            .ok_or(ValidationError::InvalidFractional)?;
        Odds::from_fractional(numerator, denominator, max)
    }

    /// Parses a price written in `format` (a trader's console may send any of the three).
    pub fn parse_in(
        input: &str,
        format: OddsFormat,
        max: Decimal,
    ) -> Result<Odds, ValidationError> {
        match format {
            OddsFormat::Decimal => Odds::parse(input, max),
            OddsFormat::American => Odds::parse_american(input, max),
            OddsFormat::Fractional => Odds::parse_fractional(input, max),
        }
    }

    /// `self` if it is at most `max` (the configured maximum).
    pub fn ensure_at_most(self, max: Decimal) -> Result<Odds, ValidationError> {
        Odds::checked(self.0, max)
    }

    /// The canonical value, with exactly 4 places.
    pub fn value(self) -> Decimal {
        self.0
    }

    /// `1/d`, the probability the price implies (unrounded, 28 significant digits).
    pub fn implied_probability(self) -> Decimal {
        Decimal::ONE / self.0
    }

    /// The American price, rounded to the nearest integer half away from zero.
    pub fn to_american(self) -> i64 {
        let profit_per_unit = self.0 - Decimal::ONE;
        let american = if self.0 >= Decimal::TWO {
            profit_per_unit * Decimal::ONE_HUNDRED
        } else {
            -(Decimal::ONE_HUNDRED / profit_per_unit)
        };
        american
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
            .to_i64()
            .expect("odds <= ODDS_COLUMN_MAX keep American prices far inside i64")
    }

    /// The fractional price `(numerator, denominator)`, reduced: `d-1` over 10,000.
    pub fn to_fractional(self) -> (u64, u64) {
        let ten_thousandths = (self.0 - Decimal::ONE).mantissa();
        let numerator = u64::try_from(ten_thousandths).expect("odds > 1 with 4 places");
        let denominator = 10_u64.pow(ODDS_SCALE);
        let divisor = gcd(numerator, denominator);
        (numerator / divisor, denominator / divisor)
    }

    fn checked(mut value: Decimal, max: Decimal) -> Result<Odds, ValidationError> {
        if value < ODDS_MIN {
            return Err(ValidationError::BelowMinimum { min: ODDS_MIN });
        }
        let max = max.min(ODDS_COLUMN_MAX);
        if value > max {
            return Err(ValidationError::AboveMaximum { max });
        }
        value.rescale(ODDS_SCALE);
        Ok(Odds(value))
    }
}

/// Odds as the bettor asked to see them: `"2.5000"`, `"+150"`, `"3/2"`.
pub fn display(odds: Odds, format: OddsFormat) -> String {
    match format {
        OddsFormat::Decimal => odds.to_string(),
        OddsFormat::American => format!("{:+}", odds.to_american()),
        OddsFormat::Fractional => {
            let (numerator, denominator) = odds.to_fractional();
            format!("{numerator}/{denominator}")
        }
    }
}

fn round_to_odds_scale(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(ODDS_SCALE, RoundingStrategy::MidpointAwayFromZero)
}

/// 1 to [`FORMAT_DIGITS_MAX`] ASCII digits, nothing else.
fn parse_small_integer(digits: &str) -> Option<u64> {
    let well_formed = !digits.is_empty()
        && digits.len() <= FORMAT_DIGITS_MAX
        && digits.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| digits.parse().ok()).flatten()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl fmt::Display for Odds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<Odds> for String {
    fn from(odds: Odds) -> String {
        odds.to_string()
    }
}

impl TryFrom<String> for Odds {
    type Error = ValidationError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        Odds::parse(&input, ODDS_COLUMN_MAX)
    }
}

#[cfg(test)]
mod tests;
