//! Deposit and withdrawal fees per payment method type (`[fees.<type>]` in `config/`):
//! a fixed part plus a percentage of the amount, never below a minimum, rounded to the
//! cent (half away from zero). The fee is what the book keeps: a deposit of 100.00 with a
//! 2.00 fee credits 98.00; a withdrawal of 100.00 with a 2.00 fee debits 102.00. The
//! `transactions` row carries `amount`, `fees` and the generated `net_amount`
//! (`amount - fees`), and the balance moves by `net_amount`.
use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::domain::currency::{round_money, Rounding, Scale};
use crate::domain::money::Money;
use serde::Deserialize;

use super::Movement;

/// The key of movements made without a payment method.
pub const NO_METHOD: &str = "none";

/// One fee rule.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FeeRule {
    /// Money string added to every movement.
    #[serde(default)]
    pub fixed: Decimal,
    /// Percent of the amount (`"1.5"` is 1.5 %).
    #[serde(default)]
    pub percent: Decimal,
    /// The fee is at least this.
    #[serde(default)]
    pub min: Decimal,
}

/// The fees of one payment method type.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MethodFees {
    #[serde(default)]
    pub deposit: FeeRule,
    #[serde(default)]
    pub withdrawal: FeeRule,
}

/// `[fees.<payment method type>]` (`credit_card`, `debit_card`, `bank_transfer`,
/// `e_wallet`, `cryptocurrency`, or `none` for a movement without a method). A type not
/// listed pays nothing.
pub type FeeSettings = HashMap<String, MethodFees>;

/// The fee of a movement of `amount` (> 0) through a method of type `method_type`, rounded
/// half away from zero at the account currency's `scale`.
pub fn fee(
    settings: &FeeSettings,
    method_type: &str,
    movement: Movement,
    amount: Money,
    scale: Scale,
) -> Money {
    let Some(fees) = settings.get(method_type) else {
        return Money::ZERO;
    };
    let rule = match movement {
        Movement::Deposit => &fees.deposit,
        Movement::Withdrawal => &fees.withdrawal,
    };
    let raw = rule.fixed + amount.as_decimal() * rule.percent / Decimal::ONE_HUNDRED;
    round_money(
        raw.max(rule.min).max(Decimal::ZERO),
        scale,
        Rounding::HalfAwayFromZero,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn m(d: Decimal) -> Money {
        Money::from_decimal(d).unwrap()
    }

    fn settings() -> FeeSettings {
        let mut s = FeeSettings::new();
        s.insert(
            "credit_card".into(),
            MethodFees {
                deposit: FeeRule {
                    fixed: dec!(0.30),
                    percent: dec!(2.5),
                    min: dec!(1.00),
                },
                withdrawal: FeeRule::default(),
            },
        );
        s
    }

    #[test]
    fn fixed_plus_percent_with_a_minimum_rounded_to_the_cent() {
        let s = settings();
        assert_eq!(
            fee(
                &s,
                "credit_card",
                Movement::Deposit,
                m(dec!(100.00)),
                Scale::CENTS
            )
            .as_decimal(),
            dec!(2.80)
        );
        assert_eq!(
            fee(
                &s,
                "credit_card",
                Movement::Deposit,
                m(dec!(10.00)),
                Scale::CENTS
            )
            .as_decimal(),
            dec!(1.00)
        );
        assert_eq!(
            fee(
                &s,
                "credit_card",
                Movement::Deposit,
                m(dec!(33.33)),
                Scale::CENTS
            )
            .as_decimal(),
            dec!(1.13)
        );
        assert_eq!(
            fee(
                &s,
                "credit_card",
                Movement::Withdrawal,
                m(dec!(100.00)),
                Scale::CENTS
            )
            .as_decimal(),
            dec!(0)
        );
        assert_eq!(
            fee(
                &s,
                "bank_transfer",
                Movement::Deposit,
                m(dec!(100.00)),
                Scale::CENTS
            )
            .as_decimal(),
            dec!(0)
        );
    }

    #[test]
    fn a_yen_fee_is_whole_yen() {
        let s = settings();
        let yen = Scale::new(0).unwrap();
        // 0.30 + 2.5 % of 1001 = 25.325: 25 yen.
        let f = fee(&s, "credit_card", Movement::Deposit, m(dec!(1001)), yen);
        assert_eq!(f.as_decimal(), dec!(25));
    }

    #[test]
    fn a_negative_setting_never_makes_a_negative_fee() {
        let mut s = FeeSettings::new();
        s.insert(
            NO_METHOD.into(),
            MethodFees {
                deposit: FeeRule {
                    fixed: dec!(-5),
                    percent: dec!(0),
                    min: dec!(0),
                },
                withdrawal: FeeRule::default(),
            },
        );
        assert_eq!(
            fee(
                &s,
                NO_METHOD,
                Movement::Deposit,
                m(dec!(1.00)),
                Scale::CENTS
            )
            .as_decimal(),
            dec!(0)
        );
    }
}
