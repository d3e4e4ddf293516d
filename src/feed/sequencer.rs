//! Ordering per provider and event: the last applied `seq` lives in `feed_sequences` and
//! moves in the same Postgres transaction as the change it acknowledges, so a restart
//! neither re-applies nor skips a message.
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
