//! Frames of the WebSocket protocol: client operations in, server messages out, and the
//! close and error codes (`docs/websocket.md`).
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::domain::ids::EventId;

/// Normal closure (the client asked).
pub const CLOSE_NORMAL: u16 = 1000;
/// Binary frames are not part of the protocol.
pub const CLOSE_UNSUPPORTED_DATA: u16 = 1003;
/// A frame over `ws.incoming_message_bytes_max`.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// No frame and no pong for `ws.heartbeat_timeout_ms`.
pub const CLOSE_HEARTBEAT_TIMEOUT: u16 = 4001;
/// The session's send queue was full: the client does not read fast enough.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// More than `ws.incoming_messages_per_second_max` messages in one second.
pub const CLOSE_RATE_LIMITED: u16 = 4029;
/// The engine is shutting down or the session failed internally.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// A client operation. `id` is echoed on every answer to it.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientOp {
    Subscribe {
        #[serde(default)]
        id: Option<Value>,
        topics: Vec<String>,
    },
    Unsubscribe {
        #[serde(default)]
        id: Option<Value>,
        topics: Vec<String>,
    },
    Ping {
        #[serde(default)]
        id: Option<Value>,
    },
    /// The first-message alternative to `?token=`: opens the private channel.
    Auth {
        #[serde(default)]
        id: Option<Value>,
        token: String,
    },
    PlaceBet {
        #[serde(default)]
        id: Option<Value>,
        #[serde(flatten)]
        body: serde_json::Map<String, Value>,
    },
}

/// A topic a client may subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    Event(EventId),
    Sport(String),
    /// The staff-only bet ticker (`trading`).
    Trading,
}

impl Topic {
    /// Parses `event:<uuid>`, `sport:<slug>` or `trading`; private `user:` topics are not
    /// subscribable (and `trading` only by staff: the session checks the role).
    pub fn parse(s: &str) -> Option<Topic> {
        if s == super::TRADING_TOPIC {
            return Some(Topic::Trading);
        }
        if let Some(id) = s.strip_prefix("event:") {
            return id.parse::<EventId>().ok().map(Topic::Event);
        }
        let slug = s.strip_prefix("sport:")?;
        let ok = !slug.is_empty()
            && slug.len() <= 50
            && slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        ok.then(|| Topic::Sport(slug.to_string()))
    }

    pub fn name(&self) -> String {
        match self {
            Topic::Event(id) => crate::broadcast::event_topic(*id),
            Topic::Sport(slug) => crate::broadcast::sport_topic(slug),
            Topic::Trading => super::TRADING_TOPIC.to_string(),
        }
    }
}

/// The `id` of a frame that failed to parse, if it has one (so the error can carry it).
pub fn id_of(text: &str) -> Option<Value> {
    serde_json::from_str::<Value>(text).ok()?.get("id").cloned()
}

/// `{"type": "error", "id", "code", "message"}`.
pub fn error(id: Option<Value>, code: &str, message: &str) -> String {
    serde_json::json!({"type": "error", "id": id, "code": code, "message": message}).to_string()
}

/// An engine error as a WebSocket `error`, with the HTTP status and details REST would give
/// (e.g. `odds_changed` with the current price): the one mapping of `routes::error_map`.
pub fn api_error(id: Option<Value>, e: impl Into<crate::routes::error::ApiError>) -> String {
    let e: crate::routes::error::ApiError = e.into();
    serde_json::json!({"type": "error", "id": id, "code": e.code, "message": e.message,
                       "status": e.status.as_u16(), "details": e.details})
    .to_string()
}

/// The answer to a `place_bet` another node placed (its `POST /api/v1/bets` answer), in the
/// same shape as one placed here: `bet_result` for a 201, else the error it carried.
pub fn forwarded_bet(id: Option<Value>, answer: Option<(u16, Value)>) -> String {
    match answer {
        Some((201, bet)) => {
            serde_json::json!({"type": "bet_result", "id": id, "status": 201, "bet": bet})
                .to_string()
        }
        Some((status, body)) => {
            let e = &body["error"];
            serde_json::json!({"type": "error", "id": id, "code": e["code"],
                               "message": e["message"], "status": status,
                               "details": e.get("details").cloned().unwrap_or(Value::Null)})
            .to_string()
        }
        None => {
            let e = crate::routes::error::ApiError::unavailable(
                "the bettor's wallet node did not answer; retry shortly",
            );
            api_error(id, e)
        }
    }
}

/// A reply that is not a topic message (`pong`, `unsubscribed`, `authenticated`, `bet_result`).
#[derive(Serialize)]
pub struct Reply<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub id: Option<Value>,
    #[serde(flatten)]
    pub data: T,
}

/// `{"type": "snapshot", "id", "topic", "seq", "data"}`: the topic's state at `seq`;
/// deltas with a larger `seq` follow.
pub fn snapshot(id: Option<&Value>, topic: &str, seq: u64, data: &RawValue) -> String {
    /// The snapshot's own fields; `data` is JSON shared by every subscriber of the load,
    /// written in as it is.
    #[derive(Serialize)]
    struct Fields<'a> {
        topic: &'a str,
        seq: u64,
        data: &'a RawValue,
    }
    let reply = Reply {
        kind: "snapshot",
        id: id.cloned(),
        data: Fields { topic, seq, data },
    };
    // Plain strings, numbers and already-checked JSON: serializing cannot fail.
    serde_json::to_string(&reply).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_and_private_ones_are_refused() {
        let id = EventId::new_random();
        assert_eq!(Topic::parse(&format!("event:{id}")), Some(Topic::Event(id)));
        assert_eq!(
            Topic::parse("sport:football"),
            Some(Topic::Sport("football".into()))
        );
        assert_eq!(Topic::parse("event:nope"), None);
        assert_eq!(Topic::parse(&format!("user:{id}")), None);
        assert_eq!(Topic::parse("sport:"), None);
        assert_eq!(Topic::parse("sport:a b"), None);
    }

    #[test]
    fn a_snapshot_wraps_the_shared_data_as_it_is() {
        let data = r#"{"markets":[{"id":"m","name":"Match \"winner\""}]}"#;
        for id in [
            None,
            Some(serde_json::json!(7)),
            Some(serde_json::json!("a\"b")),
        ] {
            let raw = serde_json::value::RawValue::from_string(data.to_string()).unwrap();
            let text = snapshot(id.as_ref(), "event:x", 12, &raw);
            let v: Value = serde_json::from_str(&text).expect("valid JSON");
            assert_eq!(v["type"], "snapshot");
            assert_eq!(v["id"], id.clone().unwrap_or(Value::Null));
            assert_eq!(v["topic"], "event:x");
            assert_eq!(v["seq"], 12);
            assert_eq!(v["data"]["markets"][0]["name"], "Match \"winner\"");
        }
    }

    #[test]
    fn ops_parse() {
        let op: ClientOp =
            serde_json::from_str(r#"{"op":"subscribe","id":1,"topics":["sport:x"]}"#).unwrap();
        assert!(matches!(op, ClientOp::Subscribe { .. }));
        assert!(serde_json::from_str::<ClientOp>(r#"{"op":"dance","id":1}"#).is_err());
        assert_eq!(
            id_of(r#"{"op":"dance","id":7}"#),
            Some(serde_json::json!(7))
        );
    }
}
