//! `[currencies]`: the book's base currency and, for each supported currency, its scale
//! (decimal places, 0 to 2: the money columns hold two) and its rate to the base as a
//! decimal string (never a float). Turned into the pure [`Currencies`] once, at start-up.
use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::currency::{Currencies, Currency, Scale};
use crate::domain::money::parse_fixed_point;

/// One supported currency as configured.
#[derive(Debug, Clone, Deserialize)]
pub struct CurrencyEntry {
    /// Decimal places of its amounts (JPY 0, most 2).
    pub scale: u32,
    /// Units of the base currency one unit of this one is worth, a decimal string
    /// (`"1"` for the base itself).
    pub rate: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CurrencySettings {
    /// The base currency of liability, limits and the desk's figures.
    pub base: String,
    /// Every currency amounts may be in, by ISO 4217 code.
    pub supported: HashMap<String, CurrencyEntry>,
}

/// Decimal places a rate may have.
const RATE_PLACES_MAX: u32 = 10;

impl CurrencySettings {
    /// The book's currencies; refused (with why) when a scale is above the columns', a rate
    /// is not a plain positive decimal string, the base is unlisted or not at rate 1, or an
    /// account currency (`accounts.currencies`) is not listed.
    pub fn build(&self, account_currencies: &[String]) -> Result<Currencies, String> {
        let mut known = Vec::with_capacity(self.supported.len());
        for (code, entry) in &self.supported {
            let code = code.trim().to_ascii_uppercase();
            let scale = Scale::new(entry.scale).ok_or_else(|| {
                format!(
                    "currencies.supported.{code}.scale {} is above the 2 places the money columns hold",
                    entry.scale
                )
            })?;
            let rate = parse_fixed_point(entry.rate.trim(), RATE_PLACES_MAX)
                .map_err(|e| format!("currencies.supported.{code}.rate: {e}"))?
                .normalize();
            known.push((code, Currency { scale, rate }));
        }
        let book = Currencies::new(&self.base, known).map_err(|e| format!("currencies: {e}"))?;
        if let Some(code) = account_currencies.iter().find(|c| !book.is_listed(c)) {
            return Err(format!(
                "accounts.currencies lists {code}, which currencies.supported does not"
            ));
        }
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn settings(entries: &[(&str, u32, &str)]) -> CurrencySettings {
        CurrencySettings {
            base: "EUR".into(),
            supported: entries
                .iter()
                .map(|(c, s, r)| {
                    (
                        (*c).to_string(),
                        CurrencyEntry {
                            scale: *s,
                            rate: (*r).to_string(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_consistent_book_builds() {
        let c = settings(&[("eur", 2, "1"), ("JPY", 0, "0.0062")])
            .build(&["EUR".into(), "JPY".into()])
            .unwrap();
        assert_eq!(c.scale_of("JPY").places(), 0);
        assert_eq!(c.of("JPY").rate, dec!(0.0062));
    }

    #[test]
    fn inconsistent_settings_are_refused() {
        let eur = ("EUR", 2, "1");
        for (entries, accounts) in [
            (vec![eur, ("KWD", 3, "3.0")], vec![]),
            (vec![eur, ("USD", 2, "0.9e0")], vec![]),
            (vec![eur, ("USD", 2, "-1")], vec![]),
            (vec![eur, ("USD", 2, "0")], vec![]),
            (vec![("EUR", 2, "1.1")], vec![]),
            (vec![eur], vec!["GBP".to_string()]),
        ] {
            assert!(settings(&entries).build(&accounts).is_err(), "{entries:?}");
        }
    }
}
