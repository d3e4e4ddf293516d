//! Betting limits (daily, weekly and monthly stake caps) and the cooling-off of raises.
//!
//! Stored in `user_preferences.betting_limits` as
//! `{"daily": "1000.00", "weekly": "5000.00", "monthly": "20000.00",
//!   "pending": {"weekly": {"amount": "8000.00", "effective_at": "<RFC 3339>"}}}`.
//! Lowering a cap takes effect at once (and cancels a pending raise of that period);
//! raising one is stored as pending and takes effect at `effective_at`, after the
//! configured cooling-off. Pure: the caller passes the clock.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::domain::money::{Money, WALLET_COLUMN_MAX};

pub const PERIODS: [&str; 3] = ["daily", "weekly", "monthly"];

/// A raise waiting for its cooling-off to end.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRaise {
    pub amount: Money,
    pub effective_at: DateTime<Utc>,
}

/// The caps in force and the raises waiting.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BettingLimits {
    pub caps: BTreeMap<&'static str, Money>,
    pub pending: BTreeMap<&'static str, PendingRaise>,
}

/// Reads a stored amount: a money string, or a whole/decimal JSON number (the schema's
/// default `{"daily": 1000, ...}` uses numbers).
fn stored_money(v: &Value) -> Option<Money> {
    match v {
        Value::String(s) => Money::parse(s).ok(),
        Value::Number(n) => Money::parse(&n.to_string()).ok(),
        _ => None,
    }
}

impl BettingLimits {
    /// Parses the stored JSON, ignoring anything unreadable rather than failing a read.
    pub fn from_stored(v: &Value) -> BettingLimits {
        let mut out = BettingLimits::default();
        for p in PERIODS {
            if let Some(m) = v.get(p).and_then(stored_money) {
                out.caps.insert(p, m);
            }
            let pending = v.get("pending").and_then(|x| x.get(p));
            if let Some(raise) = pending.and_then(|x| {
                let amount = x.get("amount").and_then(stored_money)?;
                let at = x.get("effective_at")?.as_str()?;
                let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
                Some(PendingRaise {
                    amount,
                    effective_at: at,
                })
            }) {
                out.pending.insert(p, raise);
            }
        }
        out
    }

    /// Applies the raises whose cooling-off has ended by `now`.
    pub fn promote_due(&mut self, now: DateTime<Utc>) {
        let due: Vec<&'static str> = self
            .pending
            .iter()
            .filter(|(_, r)| r.effective_at <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            if let Some(r) = self.pending.remove(p) {
                self.caps.insert(p, r.amount);
            }
        }
    }

    /// Asks for a new cap: a cut applies now, a raise waits `cooling_off`.
    pub fn request(
        &mut self,
        period: &'static str,
        amount: Money,
        now: DateTime<Utc>,
        cooling_off: chrono::Duration,
    ) {
        self.promote_due(now);
        match self.caps.get(period) {
            Some(current) if amount > *current => {
                let effective_at = now + cooling_off;
                self.pending.insert(
                    period,
                    PendingRaise {
                        amount,
                        effective_at,
                    },
                );
            }
            // A cut, an equal cap, or a first cap (a new restriction) applies at once.
            _ => {
                self.caps.insert(period, amount);
                self.pending.remove(period);
            }
        }
    }

    /// The stored (and answered) JSON form.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        for (p, m) in &self.caps {
            obj.insert((*p).to_string(), json!(m.to_string()));
        }
        let mut pending = Map::new();
        for (p, r) in &self.pending {
            pending.insert(
                (*p).to_string(),
                json!({"amount": r.amount.to_string(), "effective_at": r.effective_at.to_rfc3339()}),
            );
        }
        obj.insert("pending".to_string(), Value::Object(pending));
        Value::Object(obj)
    }
}

/// Parses a client's cap: a positive money string no larger than the wallet column.
pub fn parse_cap(input: &str) -> Result<Money, crate::domain::money::ValidationError> {
    Money::parse_positive(input, WALLET_COLUMN_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn seed_default_numbers_are_read() {
        let l =
            BettingLimits::from_stored(&json!({"daily": 1000, "weekly": 5000, "monthly": 20000}));
        assert_eq!(l.caps["daily"], m("1000"));
        assert_eq!(l.caps["monthly"], m("20000"));
    }

    #[test]
    fn lowering_is_immediate_and_raising_waits_for_the_cooling_off() {
        let now = Utc::now();
        let day = chrono::Duration::hours(24);
        let mut l = BettingLimits::from_stored(&json!({"daily": "100.00"}));
        l.request("daily", m("50.00"), now, day);
        assert_eq!(l.caps["daily"], m("50.00"));
        l.request("daily", m("500.00"), now, day);
        assert_eq!(
            l.caps["daily"],
            m("50.00"),
            "a raise does not apply at once"
        );
        assert_eq!(l.pending["daily"].effective_at, now + day);
        let mut later = BettingLimits::from_stored(&l.to_json());
        later.promote_due(now + day - chrono::Duration::seconds(1));
        assert_eq!(later.caps["daily"], m("50.00"));
        later.promote_due(now + day);
        assert_eq!(later.caps["daily"], m("500.00"));
        assert!(later.pending.is_empty());
    }

    #[test]
    fn a_cut_cancels_a_pending_raise() {
        let now = Utc::now();
        let day = chrono::Duration::hours(24);
        let mut l = BettingLimits::from_stored(&json!({"weekly": "100.00"}));
        l.request("weekly", m("900.00"), now, day);
        l.request("weekly", m("80.00"), now, day);
        assert_eq!(l.caps["weekly"], m("80.00"));
        assert!(l.pending.is_empty());
    }
}
