//! Ordering per provider and event. The last applied `seq` is kept in memory per
//! `(provider, event_ref)` (loaded from `feed_sequences` on first use) behind one async lock
//! per key, so messages of one event are applied one at a time and in order. It is written
//! to `feed_sequences` in the fixture's own transaction, and for live messages right after
//! the change is durable (the live writer committed it): a restart never skips a message,
//! and at worst re-applies the last one, whose content is absolute (a score, a status, a
//! price, a suspension), so applying it twice changes nothing.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::ids::{EventId, MarketId};

use serde::Serialize;

/// Where a message's `seq` stands against the last applied one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Already applied (or older): acknowledged and ignored.
    Duplicate { last_seq: i64 },
    /// Exactly the next one.
    InOrder,
    /// Later than the next one: applied, and the missing range is reported.
    Gap { expected_seq: i64, missing: i64 },
}

/// Classifies `seq` given the last applied one (0 when nothing was applied yet).
pub fn classify(last_seq: i64, seq: i64) -> Verdict {
    if seq <= last_seq {
        Verdict::Duplicate { last_seq }
    } else if seq == last_seq + 1 {
        Verdict::InOrder
    } else {
        Verdict::Gap {
            expected_seq: last_seq + 1,
            missing: seq - last_seq - 1,
        }
    }
}

/// What the node knows of one `(provider, event_ref)`.
#[derive(Debug, Default)]
pub struct SeqEntry {
    /// False until read from Postgres.
    pub loaded: bool,
    pub last_seq: i64,
    /// The engine's event and its sport, once the fixture exists.
    pub event: Option<(EventId, String)>,
    /// Market ids by the feed's market key (odds messages), filled on first use.
    pub markets: HashMap<String, MarketId>,
    /// With several nodes: the event lease epoch this entry was read under (the entry is
    /// read again when it differs: the event's messages were applied elsewhere meanwhile).
    pub epoch: Option<i64>,
}

/// One event's entry behind its own async lock.
pub type SharedEntry = Arc<tokio::sync::Mutex<SeqEntry>>;

/// The per-key locks and entries. One entry per event a provider has ever mentioned on this
/// node; entries of finished events are removed.
#[derive(Debug, Default)]
pub struct Sequencer {
    entries: Mutex<HashMap<(String, String), SharedEntry>>,
}

impl Sequencer {
    pub fn entry(&self, provider: &str, event_ref: &str) -> SharedEntry {
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.entry((provider.to_string(), event_ref.to_string()))
            .or_default()
            .clone()
    }

    pub fn forget(&self, provider: &str, event_ref: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(&(provider.to_string(), event_ref.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_gaps_and_in_order() {
        assert_eq!(classify(0, 1), Verdict::InOrder);
        assert_eq!(classify(5, 6), Verdict::InOrder);
        assert_eq!(classify(5, 5), Verdict::Duplicate { last_seq: 5 });
        assert_eq!(classify(5, 2), Verdict::Duplicate { last_seq: 5 });
        assert_eq!(
            classify(5, 9),
            Verdict::Gap {
                expected_seq: 6,
                missing: 3
            }
        );
    }
}
