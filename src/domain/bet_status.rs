//! Bets after placement: `BetStatus` (Postgres `bet_status`) and its one exhaustive
//! transition table, including settlement corrections.

use thiserror::Error;

wire_enum! {
    /// A bet's life (Postgres `bet_status`).
    pub enum BetStatus: "bet_status" {
        /// Received, held (e.g. for the in-play delay), not yet decided.
        Pending = "pending",
        Accepted = "accepted",
        Rejected = "rejected",
        SettledWin = "settled_win",
        SettledLoss = "settled_loss",
        SettledPush = "settled_push",
        Cancelled = "cancelled",
        Voided = "voided",
        /// Paid out early at the bettor's request (cash-out): final, never resettled.
        CashedOut = "cashed_out",
        /// Broke a limit its market refers: waiting for the trading desk (or for the
        /// bettor's answer to a counter-offer), its stake held.
        Referred = "referred",
    }
}

/// A status change the table does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a bet cannot go from {from} to {to}")]
pub struct InvalidBetTransition {
    pub from: BetStatus,
    pub to: BetStatus,
}

/// The bet state machine:
///
/// | from                    | allowed targets                                        |
/// |-------------------------|--------------------------------------------------------|
/// | pending                 | accepted, rejected                                     |
/// | accepted                | settled_win, settled_loss, settled_push, cancelled, voided |
/// | settled_*               | settled_* (any, resettlement), voided (void after settlement) |
/// | accepted                | cashed_out (the whole remaining stake cashed out)        |
/// | referred                | accepted, rejected (the desk, the bettor or a window)  |
/// | rejected, cancelled, voided, cashed_out | none (final)                           |
///
/// Decisions: a resettlement may land on the same settled status (a changed dead-heat
/// factor changes the payout, not the status); whether anything changed is the caller's
/// comparison of payouts. A voided bet stays voided: its stake was refunded.
pub fn transition(from: BetStatus, to: BetStatus) -> Result<BetStatus, InvalidBetTransition> {
    use BetStatus as B;
    let allowed = match from {
        B::Pending | B::Referred => matches!(to, B::Accepted | B::Rejected),
        B::Accepted => to.is_settled() || matches!(to, B::Cancelled | B::Voided | B::CashedOut),
        // Back to `accepted` when the result it was settled on is rolled back.
        B::SettledWin | B::SettledLoss | B::SettledPush => {
            to.is_settled() || matches!(to, B::Voided | B::Accepted)
        }
        B::Rejected | B::Cancelled | B::Voided | B::CashedOut => false,
    };
    if allowed {
        Ok(to)
    } else {
        Err(InvalidBetTransition { from, to })
    }
}

impl BetStatus {
    pub const fn is_settled(self) -> bool {
        matches!(
            self,
            BetStatus::SettledWin | BetStatus::SettledLoss | BetStatus::SettledPush
        )
    }

    /// The stake is at risk: the bet counts toward liability until it leaves this state.
    pub const fn is_open(self) -> bool {
        matches!(
            self,
            BetStatus::Pending | BetStatus::Accepted | BetStatus::Referred
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BetStatus as B;

    const ALLOWED: &[(BetStatus, BetStatus)] = &[
        (B::Pending, B::Accepted),
        (B::Pending, B::Rejected),
        (B::Referred, B::Accepted),
        (B::Referred, B::Rejected),
        (B::Accepted, B::SettledWin),
        (B::Accepted, B::SettledLoss),
        (B::Accepted, B::SettledPush),
        (B::Accepted, B::Cancelled),
        (B::Accepted, B::Voided),
        (B::Accepted, B::CashedOut),
        (B::SettledWin, B::SettledWin),
        (B::SettledWin, B::SettledLoss),
        (B::SettledWin, B::SettledPush),
        (B::SettledWin, B::Voided),
        (B::SettledWin, B::Accepted),
        (B::SettledLoss, B::SettledWin),
        (B::SettledLoss, B::SettledLoss),
        (B::SettledLoss, B::SettledPush),
        (B::SettledLoss, B::Voided),
        (B::SettledLoss, B::Accepted),
        (B::SettledPush, B::SettledWin),
        (B::SettledPush, B::SettledLoss),
        (B::SettledPush, B::SettledPush),
        (B::SettledPush, B::Voided),
        (B::SettledPush, B::Accepted),
    ];

    #[test]
    fn every_pair_follows_the_table() {
        for &from in B::ALL {
            for &to in B::ALL {
                let expected = if ALLOWED.contains(&(from, to)) {
                    Ok(to)
                } else {
                    Err(InvalidBetTransition { from, to })
                };
                assert_eq!(transition(from, to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn corrections_and_final_states() {
        assert_eq!(
            transition(B::SettledWin, B::SettledLoss),
            Ok(B::SettledLoss)
        );
        assert_eq!(transition(B::SettledLoss, B::SettledWin), Ok(B::SettledWin));
        assert_eq!(transition(B::SettledWin, B::Voided), Ok(B::Voided));
        assert!(transition(B::Voided, B::SettledWin).is_err());
        assert!(transition(B::Pending, B::SettledWin).is_err());
        assert_eq!("settled_push".parse::<BetStatus>(), Ok(B::SettledPush));
        assert_eq!(B::ALL.len(), 10);
        assert!(transition(B::CashedOut, B::SettledWin).is_err());
        assert!(transition(B::Referred, B::SettledWin).is_err());
        assert_eq!("referred".parse::<BetStatus>(), Ok(B::Referred));
    }
}
