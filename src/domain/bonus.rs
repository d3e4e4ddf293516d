//! Bonus money and free bets, the pure part (docs/accounts.md, "Bonuses and free bets"):
//! how a payout of a bonus-funded stake divides, what a free bet pays, what counts as
//! wagering and what a met requirement converts.
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::BetStatus;

/// A user's active bonus as the bet path needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveBonus {
    pub id: Uuid,
    /// Every leg of a bonus-funded or qualifying bet needs at least these odds.
    pub min_odds: Decimal,
    pub expires_at: DateTime<Utc>,
}

/// The part of `payout` that a bet's bonus-funded stake earned: `payout × bonus_stake /
/// stake`, rounded down at the account currency's `scale` (the cash part gets the rounding).
pub fn bonus_share(
    payout: Decimal,
    stake: Decimal,
    bonus_stake: Decimal,
    scale: super::currency::Scale,
) -> Decimal {
    if stake <= Decimal::ZERO || bonus_stake <= Decimal::ZERO || payout <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let exact = payout * bonus_stake / stake;
    let share =
        super::currency::round_money(exact, scale, super::currency::Rounding::Down).as_decimal();
    share.min(payout)
}

/// What a free bet pays for a gross payout (stake included): only the winnings, never the
/// stake that nobody paid. A void, a push or a loss pays nothing.
pub fn free_bet_payout(gross: Decimal, stake: Decimal) -> Decimal {
    (gross - stake).max(Decimal::ZERO)
}

/// Settled bets count towards wagering; voided, pushed, reopened and cashed-out bets do not.
pub fn counts_for_wagering(status: BetStatus) -> bool {
    matches!(status, BetStatus::SettledWin | BetStatus::SettledLoss)
}

/// A met requirement: of the free bonus money, what moves to cash (at most `cap`) and
/// what is retracted.
pub fn conversion(free: Decimal, cap: Decimal) -> (Decimal, Decimal) {
    let free = free.max(Decimal::ZERO);
    let converted = free.min(cap.max(Decimal::ZERO));
    (converted, free - converted)
}

/// A grant's wagering requirement: `amount × multiplier`.
pub fn wagering_required(amount: Decimal, multiplier: i32) -> Decimal {
    amount * Decimal::from(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn the_bonus_share_is_proportional_and_rounded_down() {
        const C: crate::domain::currency::Scale = crate::domain::currency::Scale::CENTS;
        assert_eq!(
            bonus_share(dec!(20.00), dec!(10.00), dec!(10.00), C),
            dec!(20.00)
        );
        assert_eq!(bonus_share(dec!(20.00), dec!(10.00), dec!(0), C), dec!(0));
        assert_eq!(
            bonus_share(dec!(10.00), dec!(3.00), dec!(1.00), C),
            dec!(3.33)
        );
        assert_eq!(bonus_share(dec!(0), dec!(3.00), dec!(1.00), C), dec!(0));
    }

    #[test]
    fn a_free_bet_pays_only_winnings() {
        assert_eq!(free_bet_payout(dec!(25.00), dec!(10.00)), dec!(15.00));
        assert_eq!(free_bet_payout(dec!(10.00), dec!(10.00)), dec!(0));
        assert_eq!(free_bet_payout(dec!(5.00), dec!(10.00)), dec!(0));
        assert_eq!(free_bet_payout(dec!(0), dec!(10.00)), dec!(0));
    }

    #[test]
    fn only_wins_and_losses_count_and_conversion_is_capped() {
        assert!(counts_for_wagering(BetStatus::SettledWin));
        assert!(counts_for_wagering(BetStatus::SettledLoss));
        assert!(!counts_for_wagering(BetStatus::Voided));
        assert!(!counts_for_wagering(BetStatus::SettledPush));
        assert!(!counts_for_wagering(BetStatus::CashedOut));
        assert!(!counts_for_wagering(BetStatus::Accepted));
        assert_eq!(conversion(dec!(80), dec!(50)), (dec!(50), dec!(30)));
        assert_eq!(conversion(dec!(20), dec!(50)), (dec!(20), dec!(0)));
        assert_eq!(wagering_required(dec!(10.00), 5), dec!(50.00));
    }
}
