//! The feed's message types as providers send them (`docs/feed.md`): one message or an
//! array per push, each `{"seq", "event_ref", "type", ...}`.
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One feed message. `seq` and `event_ref` are required for every type but `heartbeat`.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedMessage {
    #[serde(default)]
    pub seq: Option<i64>,
    #[serde(default)]
    pub event_ref: Option<String>,
    #[serde(flatten)]
    pub body: Body,
}

/// What a message says, by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    Fixture(Fixture),
    Score(Score),
    Status(Status),
    BetStop(BetStop),
    Odds(OddsUpdate),
    /// The provider's result: settles markets of the event.
    #[serde(rename = "result")]
    MarketResults(MarketResults),
    /// The provider got a result wrong: its settlement is reversed.
    ResultRollback(ResultRollback),
    Heartbeat(Heartbeat),
}

impl Body {
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Fixture(_) => "fixture",
            Body::Score(_) => "score",
            Body::Status(_) => "status",
            Body::BetStop(_) => "bet_stop",
            Body::Odds(_) => "odds",
            Body::MarketResults(_) => "result",
            Body::ResultRollback(_) => "result_rollback",
            Body::Heartbeat(_) => "heartbeat",
        }
    }
}

/// Creates or updates the event `(provider, event_ref)`; teams are found by name under the
/// sport (created when missing); `markets` opens markets that do not exist yet.
#[derive(Debug, Clone, Deserialize)]
pub struct Fixture {
    /// The sport's slug (`football`); the sport must exist.
    pub sport: String,
    pub home: String,
    pub away: String,
    pub start_time: DateTime<Utc>,
    #[serde(default)]
    pub venue: Option<String>,
    #[serde(default)]
    pub markets: Vec<FixtureMarket>,
}

/// A market offered with the fixture, with its selections and opening odds.
#[derive(Debug, Clone, Deserialize)]
pub struct FixtureMarket {
    #[serde(flatten)]
    pub market: MarketRef,
    /// Display name; defaults to the type.
    #[serde(default)]
    pub title: Option<String>,
    pub selections: Vec<Price>,
}

/// How a feed names a market of an event: its type plus its line (the handicap of a
/// `point_spread`, the total of a `total_points`), and its name for `prop_bet`/`futures`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MarketRef {
    #[serde(rename = "type")]
    pub market_type: String,
    #[serde(default)]
    pub line: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A selection (by name within its market) and a decimal price as a string.
#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub name: String,
    pub odds: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Score {
    pub home: u32,
    pub away: u32,
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub clock: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    /// `scheduled, live, halftime, finished, postponed, cancelled, suspended`.
    pub status: String,
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub clock: Option<String>,
}

/// Suspends the named markets, or every market of the event when `markets` is absent.
#[derive(Debug, Clone, Deserialize)]
pub struct BetStop {
    #[serde(default)]
    pub markets: Option<Vec<MarketRef>>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// New prices for a market's selections; reopens the market if the feed suspended it.
#[derive(Debug, Clone, Deserialize)]
pub struct OddsUpdate {
    pub market: MarketRef,
    pub prices: Vec<Price>,
}

/// Results of markets of the event, each selection's outcome by name.
#[derive(Debug, Clone, Deserialize)]
pub struct MarketResults {
    pub markets: Vec<MarketResult>,
    /// Only the provider's final result settles (the certainty rule); a provisional one
    /// (`"final": false`) is acknowledged and changes nothing.
    #[serde(default = "final_by_default", rename = "final")]
    pub is_final: bool,
}

fn final_by_default() -> bool {
    true
}

/// One market's results: every selection of the market exactly once.
#[derive(Debug, Clone, Deserialize)]
pub struct MarketResult {
    pub market: MarketRef,
    pub results: Vec<SelectionResult>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SelectionResult {
    /// The selection's name, as the fixture named it.
    pub selection: String,
    pub result: crate::domain::LegResult,
    /// Share paid at full odds on a tie, e.g. "0.5".
    #[serde(default)]
    pub dead_heat_factor: Option<String>,
    /// Share of the stake returned, e.g. "0.5" on a quarter line.
    #[serde(default)]
    pub void_factor: Option<String>,
}

/// Markets whose feed settlement is reversed (bets back to open, payouts taken back).
#[derive(Debug, Clone, Deserialize)]
pub struct ResultRollback {
    pub markets: Vec<MarketRef>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Heartbeat {}

/// Why a push could not be read (400 for bad JSON, 422 for a wrong shape, 413 too many).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("malformed JSON: {0}")]
    Syntax(String),
    #[error("invalid message: {0}")]
    Shape(String),
    #[error("too many messages in one push: {count} > {max}")]
    TooMany { count: usize, max: usize },
}

/// Reads a push: one message or an array of at most `max` messages.
pub fn parse_push(body: &[u8], max: usize) -> Result<Vec<FeedMessage>, ParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ParseError::Syntax(e.to_string()))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    if items.len() > max {
        return Err(ParseError::TooMany {
            count: items.len(),
            max,
        });
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let msg: FeedMessage = serde_json::from_value(item)
            .map_err(|e| ParseError::Shape(format!("message {i}: {e}")))?;
        if !matches!(msg.body, Body::Heartbeat(_)) {
            match (&msg.seq, &msg.event_ref) {
                (Some(seq), Some(r)) if *seq > 0 && !r.is_empty() && r.len() <= 100 => {}
                _ => {
                    return Err(ParseError::Shape(format!(
                        "message {i}: seq (> 0) and event_ref (1 to 100 characters) are required"
                    )))
                }
            }
        }
        out.push(msg);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_or_an_array_parses() {
        let one = br#"{"seq":1,"event_ref":"m1","type":"score","home":1,"away":0}"#;
        assert_eq!(parse_push(one, 10).unwrap().len(), 1);
        let many = br#"[{"type":"heartbeat"},{"seq":2,"event_ref":"m1","type":"bet_stop"}]"#;
        let msgs = parse_push(many, 10).unwrap();
        assert!(matches!(
            msgs[1].body,
            Body::BetStop(BetStop { markets: None, .. })
        ));
    }

    #[test]
    fn wrong_shapes_are_refused() {
        assert!(matches!(parse_push(b"{", 10), Err(ParseError::Syntax(_))));
        let no_seq = br#"{"event_ref":"m1","type":"score","home":1,"away":0}"#;
        assert!(matches!(parse_push(no_seq, 10), Err(ParseError::Shape(_))));
        let unknown = br#"{"seq":1,"event_ref":"m1","type":"goal"}"#;
        assert!(matches!(parse_push(unknown, 10), Err(ParseError::Shape(_))));
        let many = br#"[{"type":"heartbeat"},{"type":"heartbeat"}]"#;
        assert!(matches!(
            parse_push(many, 1),
            Err(ParseError::TooMany { .. })
        ));
    }
}
