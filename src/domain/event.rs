//! Events: `EventStatus` (Postgres `event_status`) and its one exhaustive transition table,
//! with what each status means for bets and for the event's markets.

use thiserror::Error;

use super::market::MarketCommand;

wire_enum! {
    /// A sporting event's life (Postgres `event_status`).
    pub enum EventStatus: "event_status" {
        Scheduled = "scheduled",
        Live = "live",
        Halftime = "halftime",
        Finished = "finished",
        Postponed = "postponed",
        Cancelled = "cancelled",
        Suspended = "suspended",
    }
}

/// A status change the table does not allow (409 at the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("an event cannot go from {from} to {to}")]
pub struct InvalidEventTransition {
    pub from: EventStatus,
    pub to: EventStatus,
}

/// The event state machine, the only place an event's status changes:
///
/// | from      | allowed targets                                              |
/// |-----------|--------------------------------------------------------------|
/// | scheduled | live, postponed, cancelled, suspended                        |
/// | live      | halftime, finished, suspended, cancelled                     |
/// | halftime  | live, finished, suspended, cancelled                         |
/// | suspended | scheduled, live, halftime, finished, postponed, cancelled    |
/// | postponed | scheduled, cancelled                                         |
/// | finished  | none (final)                                                 |
/// | cancelled | none (final)                                                 |
///
/// Decisions: a suspension (weather, crowd, a feed outage) may happen before or during play,
/// and the status alone does not remember which, so `suspended` may go back to `scheduled`,
/// `live` or `halftime`; the caller knows which is right. It may also end as `finished`
/// (play abandoned late with the result declared to stand), `postponed` or `cancelled`.
/// Setting the status an event already has is refused: a feed repeating a status skips it.
pub fn transition(
    from: EventStatus,
    to: EventStatus,
) -> Result<EventStatus, InvalidEventTransition> {
    use EventStatus as E;
    let allowed = match from {
        E::Scheduled => matches!(to, E::Live | E::Postponed | E::Cancelled | E::Suspended),
        E::Live => matches!(to, E::Halftime | E::Finished | E::Suspended | E::Cancelled),
        E::Halftime => matches!(to, E::Live | E::Finished | E::Suspended | E::Cancelled),
        E::Suspended => matches!(
            to,
            E::Scheduled | E::Live | E::Halftime | E::Finished | E::Postponed | E::Cancelled
        ),
        E::Postponed => matches!(to, E::Scheduled | E::Cancelled),
        E::Finished | E::Cancelled => false,
    };
    if allowed {
        Ok(to)
    } else {
        Err(InvalidEventTransition { from, to })
    }
}

impl EventStatus {
    /// Play is under way: the event's markets are in-play (bet delay applies).
    pub const fn is_in_play(self) -> bool {
        matches!(self, EventStatus::Live | EventStatus::Halftime)
    }

    /// Bets may be taken on the event's markets (each market has its own status too).
    pub const fn accepts_bets(self) -> bool {
        matches!(
            self,
            EventStatus::Scheduled | EventStatus::Live | EventStatus::Halftime
        )
    }

    /// "Upcoming and live": what event lists and the sport topic's snapshot show by
    /// default (the REST list takes a `status` filter for the rest).
    pub const fn is_upcoming_or_live(self) -> bool {
        matches!(
            self,
            EventStatus::Scheduled
                | EventStatus::Live
                | EventStatus::Halftime
                | EventStatus::Suspended
        )
    }

    /// Nothing follows: the event actor can stop once its markets are done.
    pub const fn is_final(self) -> bool {
        matches!(self, EventStatus::Finished | EventStatus::Cancelled)
    }

    /// What entering this status does to the event's markets that the command applies to:
    /// `suspended` and `postponed` suspend open markets, `finished` closes open and
    /// suspended ones, `cancelled` voids every market not yet voided. Going (back) to
    /// `scheduled`, `live` or `halftime` changes no market: resuming markets is the trader's
    /// or the feed's explicit call.
    pub const fn market_command_on_entry(self) -> Option<MarketCommand> {
        match self {
            EventStatus::Suspended | EventStatus::Postponed => Some(MarketCommand::Suspend),
            EventStatus::Finished => Some(MarketCommand::Close),
            EventStatus::Cancelled => Some(MarketCommand::Void),
            EventStatus::Scheduled | EventStatus::Live | EventStatus::Halftime => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventStatus as E;

    const ALLOWED: &[(EventStatus, EventStatus)] = &[
        (E::Scheduled, E::Live),
        (E::Scheduled, E::Postponed),
        (E::Scheduled, E::Cancelled),
        (E::Scheduled, E::Suspended),
        (E::Live, E::Halftime),
        (E::Live, E::Finished),
        (E::Live, E::Suspended),
        (E::Live, E::Cancelled),
        (E::Halftime, E::Live),
        (E::Halftime, E::Finished),
        (E::Halftime, E::Suspended),
        (E::Halftime, E::Cancelled),
        (E::Suspended, E::Scheduled),
        (E::Suspended, E::Live),
        (E::Suspended, E::Halftime),
        (E::Suspended, E::Finished),
        (E::Suspended, E::Postponed),
        (E::Suspended, E::Cancelled),
        (E::Postponed, E::Scheduled),
        (E::Postponed, E::Cancelled),
    ];

    #[test]
    fn every_pair_follows_the_table() {
        for &from in EventStatus::ALL {
            for &to in EventStatus::ALL {
                let expected = if ALLOWED.contains(&(from, to)) {
                    Ok(to)
                } else {
                    Err(InvalidEventTransition { from, to })
                };
                assert_eq!(transition(from, to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn final_statuses_and_self_transitions_are_refused() {
        for &to in EventStatus::ALL {
            assert!(transition(E::Finished, to).is_err());
            assert!(transition(E::Cancelled, to).is_err());
            assert!(transition(to, to).is_err());
        }
        let err = transition(E::Finished, E::Live).unwrap_err();
        assert_eq!(err.to_string(), "an event cannot go from finished to live");
    }

    #[test]
    fn in_play_and_betting_statuses() {
        let in_play: Vec<EventStatus> = E::ALL.iter().copied().filter(|s| s.is_in_play()).collect();
        assert_eq!(in_play, [E::Live, E::Halftime]);
        let betting: Vec<EventStatus> = E::ALL
            .iter()
            .copied()
            .filter(|s| s.accepts_bets())
            .collect();
        assert_eq!(betting, [E::Scheduled, E::Live, E::Halftime]);
    }

    #[test]
    fn statuses_that_stop_play_act_on_markets() {
        assert_eq!(
            E::Suspended.market_command_on_entry(),
            Some(MarketCommand::Suspend)
        );
        assert_eq!(
            E::Finished.market_command_on_entry(),
            Some(MarketCommand::Close)
        );
        assert_eq!(
            E::Cancelled.market_command_on_entry(),
            Some(MarketCommand::Void)
        );
        assert_eq!(E::Live.market_command_on_entry(), None);
    }

    #[test]
    fn spellings_match_postgres() {
        let spellings: Vec<&str> = E::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            spellings,
            [
                "scheduled",
                "live",
                "halftime",
                "finished",
                "postponed",
                "cancelled",
                "suspended"
            ]
        );
        assert_eq!("halftime".parse::<EventStatus>(), Ok(E::Halftime));
    }
}
