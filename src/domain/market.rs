//! Markets: `MarketStatus`, the commands traders and feeds apply, the one exhaustive
//! transition table between them, and `MarketType`.

use thiserror::Error;

wire_enum! {
    /// A market's life (Postgres `market_status`).
    pub enum MarketStatus: "market_status" {
        Open = "open",
        Suspended = "suspended",
        Closed = "closed",
        Settled = "settled",
        Voided = "voided",
    }
}

wire_enum! {
    /// What can be done to a market's status.
    pub enum MarketCommand: "market_command" {
        Suspend = "suspend",
        Resume = "resume",
        Close = "close",
        Settle = "settle",
        /// Correct a settlement; the market stays settled.
        Resettle = "resettle",
        Void = "void",
    }
}

wire_enum! {
    /// What a market prices (Postgres `market_type`).
    pub enum MarketType: "market_type" {
        Moneyline = "moneyline",
        PointSpread = "point_spread",
        TotalPoints = "total_points",
        FirstHalf = "first_half",
        PropBet = "prop_bet",
        Futures = "futures",
    }
}

/// A command that does not apply to the market's status (409 at the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("cannot {command} a {from} market")]
pub struct InvalidTransition {
    pub from: MarketStatus,
    pub command: MarketCommand,
}

/// The market state machine, the only place a market's status changes:
///
/// | from \ command | suspend   | resume | close  | settle  | resettle | void   |
/// |----------------|-----------|--------|--------|---------|----------|--------|
/// | open           | suspended | -      | closed | -       | -        | voided |
/// | suspended      | -         | open   | closed | -       | -        | voided |
/// | closed         | -         | -      | -      | settled | -        | voided |
/// | settled        | -         | -      | -      | -       | settled  | voided |
/// | voided         | -         | -      | -      | -       | -        | -      |
///
/// Decisions: a market is settled only once closed; settling an open or suspended market is
/// `close` then `settle`, both through this table. Repeating a command (suspending a
/// suspended market, settling a settled one) is refused, so a caller sees it did nothing;
/// bulk callers (suspend every market of an event) skip markets already there. `resettle`
/// corrects a settled market and keeps it settled. `void` after settlement is allowed: it is
/// the correction that refunds every bet (issue 7), and `voided` is final.
pub fn transition(
    from: MarketStatus,
    command: MarketCommand,
) -> Result<MarketStatus, InvalidTransition> {
    use MarketCommand as C;
    use MarketStatus as S;
    match (from, command) {
        (S::Open, C::Suspend) => Ok(S::Suspended),
        (S::Suspended, C::Resume) => Ok(S::Open),
        (S::Open | S::Suspended, C::Close) => Ok(S::Closed),
        (S::Closed, C::Settle) => Ok(S::Settled),
        (S::Settled, C::Resettle) => Ok(S::Settled),
        (S::Open | S::Suspended | S::Closed | S::Settled, C::Void) => Ok(S::Voided),
        (S::Open, C::Resume | C::Settle | C::Resettle)
        | (S::Suspended, C::Suspend | C::Settle | C::Resettle)
        | (S::Closed, C::Suspend | C::Resume | C::Close | C::Resettle)
        | (S::Settled, C::Suspend | C::Resume | C::Close | C::Settle)
        | (S::Voided, _) => Err(InvalidTransition { from, command }),
    }
}

impl MarketStatus {
    /// Bets are taken only on an open market.
    pub const fn accepts_bets(self) -> bool {
        matches!(self, MarketStatus::Open)
    }

    /// Prices and bets still move: the market needs a live actor.
    pub const fn is_trading(self) -> bool {
        matches!(self, MarketStatus::Open | MarketStatus::Suspended)
    }

    /// No command applies any more.
    pub const fn is_final(self) -> bool {
        matches!(self, MarketStatus::Voided)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MarketCommand as C;
    use MarketStatus as S;

    /// Every allowed pair; every other pair of `ALL × ALL` must be refused.
    const ALLOWED: &[(MarketStatus, MarketCommand, MarketStatus)] = &[
        (S::Open, C::Suspend, S::Suspended),
        (S::Open, C::Close, S::Closed),
        (S::Open, C::Void, S::Voided),
        (S::Suspended, C::Resume, S::Open),
        (S::Suspended, C::Close, S::Closed),
        (S::Suspended, C::Void, S::Voided),
        (S::Closed, C::Settle, S::Settled),
        (S::Closed, C::Void, S::Voided),
        (S::Settled, C::Resettle, S::Settled),
        (S::Settled, C::Void, S::Voided),
    ];

    #[test]
    fn every_pair_follows_the_table() {
        for &from in MarketStatus::ALL {
            for &command in MarketCommand::ALL {
                let expected = ALLOWED
                    .iter()
                    .find(|(f, c, _)| *f == from && *c == command)
                    .map(|(_, _, to)| *to)
                    .ok_or(InvalidTransition { from, command });
                assert_eq!(transition(from, command), expected, "{from} + {command}");
            }
        }
        assert_eq!(MarketStatus::ALL.len() * MarketCommand::ALL.len(), 30);
        assert_eq!(ALLOWED.len(), 10);
    }

    #[test]
    fn settling_an_open_market_goes_through_close() {
        assert!(transition(S::Open, C::Settle).is_err());
        let closed = transition(S::Open, C::Close).unwrap();
        assert_eq!(transition(closed, C::Settle), Ok(S::Settled));
    }

    #[test]
    fn a_voided_market_refuses_everything() {
        for &command in MarketCommand::ALL {
            assert!(transition(S::Voided, command).is_err());
        }
    }

    #[test]
    fn errors_name_the_status_and_command() {
        let err = transition(S::Settled, C::Suspend).unwrap_err();
        assert_eq!(err.to_string(), "cannot suspend a settled market");
    }

    #[test]
    fn spellings_match_postgres() {
        let statuses: Vec<&str> = MarketStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            statuses,
            ["open", "suspended", "closed", "settled", "voided"]
        );
        let types: Vec<&str> = MarketType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            types,
            [
                "moneyline",
                "point_spread",
                "total_points",
                "first_half",
                "prop_bet",
                "futures"
            ]
        );
        assert_eq!(
            "point_spread".parse::<MarketType>(),
            Ok(MarketType::PointSpread)
        );
        assert_eq!(
            serde_json::to_string(&S::Suspended).unwrap(),
            "\"suspended\""
        );
        assert!("Open".parse::<MarketStatus>().is_err());
    }

    #[test]
    fn only_open_markets_take_bets() {
        let taking: Vec<MarketStatus> = MarketStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.accepts_bets())
            .collect();
        assert_eq!(taking, [S::Open]);
    }
}
