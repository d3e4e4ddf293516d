//! Currencies: each with its scale (decimal places of its amounts) and its rate to the
//! book's base currency. Every rounding of an account's money goes through [`round_money`]
//! at the account's scale, and every amount across currencies (a market's liability, a
//! stake limit) is compared in the base currency through [`Conversion`].
//!
//! Amounts keep the storage format of [`Money`] (two places, the columns' scale): a
//! 0-place currency's amount is a whole number printed with `.00`. A scale above the
//! columns' cannot be configured (the columns could not hold it).
use std::collections::HashMap;

use rust_decimal::{Decimal, RoundingStrategy};

use super::money::{Money, ValidationError, MONEY_SCALE};

/// Decimal places of a currency's amounts, 0 to [`MONEY_SCALE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scale(u32);

impl Scale {
    /// Two places: most currencies, and the columns' own scale.
    pub const CENTS: Scale = Scale(MONEY_SCALE);

    /// `None` above what the money columns hold.
    pub const fn new(places: u32) -> Option<Scale> {
        if places <= MONEY_SCALE {
            Some(Scale(places))
        } else {
            None
        }
    }

    pub const fn places(self) -> u32 {
        self.0
    }

    /// The smallest amount of the currency (0.01, or 1 for a 0-place currency).
    pub fn unit(self) -> Decimal {
        Decimal::new(1, self.0)
    }
}

/// How an exact amount becomes money of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Toward zero: payouts, cash-out offers, shares of a payout, stake limits converted
    /// from the base (in the house's favour; the rest stays with the other party).
    Down,
    /// Toward plus infinity: a minimum converted from the base (never below it).
    Up,
    /// Half away from zero: fees.
    HalfAwayFromZero,
}

/// The one rounding of money: `exact` at `scale` places (by `how`), returned with the
/// columns' two places (`1234` for JPY is `1234.00`).
pub fn round_money(exact: Decimal, scale: Scale, how: Rounding) -> Money {
    let strategy = match how {
        Rounding::Down => RoundingStrategy::ToZero,
        Rounding::Up => RoundingStrategy::AwayFromZero,
        Rounding::HalfAwayFromZero => RoundingStrategy::MidpointAwayFromZero,
    };
    let rounded = exact.round_dp_with_strategy(scale.places(), strategy);
    // At most two places now: always representable.
    Money::from_decimal(rounded).unwrap_or(Money::ZERO)
}

/// `amount` if it has no more places than `scale` allows (a deposit of 1.5 in a 0-place
/// currency is refused, never rounded).
pub fn check_scale(amount: Money, scale: Scale) -> Result<Money, ValidationError> {
    if amount.as_decimal().normalize().scale() > scale.places() {
        return Err(ValidationError::TooManyDecimalPlaces {
            max: scale.places(),
        });
    }
    Ok(amount)
}

/// A currency as the book knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    pub scale: Scale,
    /// Units of the base currency one unit of this one is worth (1 for the base).
    pub rate: Decimal,
}

impl Currency {
    pub const BASE_CENTS: Currency = Currency {
        scale: Scale::CENTS,
        rate: Decimal::ONE,
    };

    /// `amount` of this currency in the base currency, exact (no rounding: a part and the
    /// rest convert to exactly the whole, so what is counted can be taken back exactly).
    pub fn to_base(self, amount: Decimal) -> Decimal {
        amount * self.rate
    }

    /// `base` (an amount of the base currency) in this currency, rounded at its scale by
    /// `how` (a limit: `Down` for a maximum, `Up` for a minimum).
    pub fn from_base(self, base: Decimal, how: Rounding) -> Decimal {
        if self.rate.is_zero() {
            return Decimal::ZERO;
        }
        round_money(base / self.rate, self.scale, how).as_decimal()
    }
}

/// The book's currencies and its base.
#[derive(Debug, Clone, PartialEq)]
pub struct Currencies {
    base: String,
    known: HashMap<String, Currency>,
}

impl Default for Currencies {
    /// One currency, `USD`, with two places: the base.
    fn default() -> Self {
        Currencies::new("USD", [("USD".to_string(), Currency::BASE_CENTS)])
            .expect("the default is consistent")
    }
}

impl Currencies {
    /// Refused: a base that is not listed or whose rate is not 1, a rate not above 0.
    pub fn new(
        base: &str,
        known: impl IntoIterator<Item = (String, Currency)>,
    ) -> Result<Currencies, String> {
        let known: HashMap<String, Currency> = known
            .into_iter()
            .map(|(code, c)| (code.trim().to_ascii_uppercase(), c))
            .collect();
        let base = base.trim().to_ascii_uppercase();
        match known.get(&base) {
            None => return Err(format!("the base currency {base} is not listed")),
            Some(c) if c.rate != Decimal::ONE => {
                return Err(format!("the base currency {base} must have rate 1"))
            }
            Some(_) => {}
        }
        if let Some((code, _)) = known.iter().find(|(_, c)| c.rate <= Decimal::ZERO) {
            return Err(format!("the rate of {code} must be above 0"));
        }
        Ok(Currencies { base, known })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, code: &str) -> Option<Currency> {
        self.known.get(code.trim()).copied()
    }

    /// `code`'s currency; one not (or no longer) listed is read at two places and rate 1
    /// (configuration refuses accounts in unlisted currencies; this keeps old rows readable).
    pub fn of(&self, code: &str) -> Currency {
        self.get(code).unwrap_or(Currency::BASE_CENTS)
    }

    pub fn scale_of(&self, code: &str) -> Scale {
        self.of(code).scale
    }

    pub fn is_listed(&self, code: &str) -> bool {
        self.known.contains_key(code.trim())
    }

    /// An amount of the base currency as the desk sees it: rounded at the base's scale.
    pub fn base_money(&self, exact: Decimal) -> Decimal {
        round_money(exact, self.scale_of(&self.base), Rounding::HalfAwayFromZero).as_decimal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn book() -> Currencies {
        Currencies::new(
            "eur",
            [
                ("EUR".into(), Currency::BASE_CENTS),
                (
                    "JPY".into(),
                    Currency {
                        scale: Scale::new(0).unwrap(),
                        rate: dec!(0.0062),
                    },
                ),
                (
                    "USD".into(),
                    Currency {
                        scale: Scale::CENTS,
                        rate: dec!(0.92),
                    },
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn money_rounds_at_the_currency_scale() {
        let yen = Scale::new(0).unwrap();
        assert_eq!(
            round_money(dec!(1234.99), yen, Rounding::Down).to_string(),
            "1234.00"
        );
        assert_eq!(
            round_money(dec!(1234.01), yen, Rounding::Up).to_string(),
            "1235.00"
        );
        assert_eq!(
            round_money(dec!(2.5), yen, Rounding::HalfAwayFromZero).to_string(),
            "3.00"
        );
        assert_eq!(
            round_money(dec!(4.439), Scale::CENTS, Rounding::Down).to_string(),
            "4.43"
        );
        assert_eq!(Scale::new(3), None, "the columns hold two places");
    }

    #[test]
    fn amounts_with_more_places_than_the_currency_are_refused() {
        let yen = Scale::new(0).unwrap();
        let m = |s: &str| Money::parse(s).unwrap();
        assert_eq!(check_scale(m("100.00"), yen), Ok(m("100")));
        assert_eq!(
            check_scale(m("1.50"), yen),
            Err(ValidationError::TooManyDecimalPlaces { max: 0 })
        );
        assert_eq!(check_scale(m("1.23"), Scale::CENTS), Ok(m("1.23")));
    }

    #[test]
    fn conversion_to_the_base_is_exact_and_limits_come_back_rounded_for_the_house() {
        let c = book();
        assert_eq!(c.base(), "EUR");
        let usd = c.of("USD");
        assert_eq!(usd.to_base(dec!(10.00)), dec!(9.2));
        // A 100.00 EUR maximum is 108.69 USD (rounded down), a 1.00 EUR minimum 1.09 USD.
        assert_eq!(usd.from_base(dec!(100), Rounding::Down), dec!(108.69));
        assert_eq!(usd.from_base(dec!(1), Rounding::Up), dec!(1.09));
        let jpy = c.of("JPY");
        assert_eq!(jpy.from_base(dec!(100), Rounding::Down), dec!(16129));
        assert_eq!(c.of("XXX"), Currency::BASE_CENTS);
    }

    #[test]
    fn an_inconsistent_book_is_refused() {
        assert!(Currencies::new("GBP", [("EUR".into(), Currency::BASE_CENTS)]).is_err());
        let half = Currency {
            scale: Scale::CENTS,
            rate: dec!(0.5),
        };
        assert!(Currencies::new("EUR", [("EUR".into(), half)]).is_err());
        let zero = Currency {
            scale: Scale::CENTS,
            rate: Decimal::ZERO,
        };
        assert!(Currencies::new(
            "EUR",
            [("EUR".into(), Currency::BASE_CENTS), ("USD".into(), zero)]
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn parts_convert_to_exactly_the_whole(
            a in 0i64..10_000_000, b in 0i64..10_000_000, rate in 1i64..1_000_000,
        ) {
            let c = Currency { scale: Scale::CENTS, rate: Decimal::new(rate, 4) };
            let (a, b) = (Decimal::new(a, 2), Decimal::new(b, 2));
            prop_assert_eq!(c.to_base(a) + c.to_base(b), c.to_base(a + b));
        }

        #[test]
        fn rounding_down_never_adds_money(units in 0i64..10_000_000_000, scale in 0u32..=2, exp in 0u32..=8) {
            let exact = Decimal::new(units, exp);
            let s = Scale::new(scale).unwrap();
            let r = round_money(exact, s, Rounding::Down).as_decimal();
            prop_assert!(r <= exact);
            prop_assert!(exact - r < s.unit());
            prop_assert_eq!(check_scale(Money::from_decimal(r).unwrap(), s).is_ok(), true);
        }
    }
}
