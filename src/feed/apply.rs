//! Applying feed messages to live state. Messages of one `(provider, event_ref)` are applied
//! one at a time in `seq` order ([`super::sequencer`]). A fixture is written to Postgres in
//! one transaction with its `seq` and its actors are started; every other message goes to
//! the event's actor (scores, bet stops, statuses) or the market's actor (odds), which
//! change memory, publish the deltas and hand back their durability; the `seq` is stored
//! once every change is durable.
//!
//! A message that is well formed but cannot apply (unknown sport, market or selection, a
//! forbidden status change, a market a trader suspended) is `rejected`: its `seq` is
//! consumed, nothing changes, the reason is reported. Infrastructure failures (Postgres,
//! a busy actor) fail the push with 503 and the `seq` is not stored: the provider retries.
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::messages::{Body, FeedMessage, Fixture, MarketRef, OddsUpdate, Price, Status};
use super::sequencer::{classify, SeqEntry, Verdict};
use super::FeedContext;
use crate::actors::event::feed::{FeedBetStop, FeedScore, SuspendAnswers};
use crate::actors::event::{ScoreUpdate, SetScore};
use crate::actors::market::feed::{FeedFilter, FeedMarketKey, FeedPrices};
use crate::actors::writer::FeedSeqMark;
use crate::actors::{AuditActor, Durable, MarketError};
use crate::app::events::EventError;
use crate::db::feed as sql;
use crate::domain::{EventStatus, MarketType, Odds};
use crate::settlement::error::SettlementError;

mod fixture;
mod live;
#[allow(unused_imports)]
pub use fixture::*;
#[allow(unused_imports)]
pub use live::*;

/// What became of one message of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Applied in order.
    Applied,
    /// Applied, but earlier messages of the event are missing (`expected_seq`).
    Gap,
    /// Seen before: nothing done.
    Duplicate,
    /// Well formed but cannot apply (`reason`): its seq is consumed, nothing changed.
    Rejected,
}

impl Applied {
    /// The word on the wire and in the metrics' `outcome` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Applied::Applied => "applied",
            Applied::Gap => "gap",
            Applied::Duplicate => "duplicate",
            Applied::Rejected => "rejected",
        }
    }
}

/// The answer for one message of a push.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Outcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_ref: Option<String>,
    pub outcome: Applied,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a message did not apply.
pub enum ApplyError {
    /// The message's fault: reported, `seq` consumed.
    Reject(String),
    /// The engine's: the push fails with 503, `seq` not consumed.
    Infra(String),
}

fn reject(msg: impl Into<String>) -> ApplyError {
    ApplyError::Reject(msg.into())
}

fn infra(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Infra(e.to_string())
}

impl From<tokio_postgres::Error> for ApplyError {
    fn from(e: tokio_postgres::Error) -> Self {
        let data = e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("23") || c.starts_with("22") || c == "P0001"
        });
        match (data, e.as_db_error()) {
            (true, Some(db)) => ApplyError::Reject(db.message().to_string()),
            _ => ApplyError::Infra(crate::db::describe(&e)),
        }
    }
}

impl From<crate::actors::LoadError> for ApplyError {
    fn from(e: crate::actors::LoadError) -> Self {
        ApplyError::Infra(e.to_string())
    }
}

impl From<crate::actors::AskError> for ApplyError {
    fn from(e: crate::actors::AskError) -> Self {
        ApplyError::Infra(format!("live state did not answer: {e:?}"))
    }
}

/// The feed's identity in live-state changes (no user; audit rows show the system).
fn feed_actor() -> AuditActor {
    AuditActor {
        user_id: None,
        client_ip: None,
    }
}

/// Applies one sequenced message (not a heartbeat). `Err` is an infrastructure failure:
/// nothing is acknowledged and the provider retries. An `odds` message's durability (its
/// prices and its seq, queued together in the writer) is left in `pending`: the caller awaits
/// it with [`wait_pending`] before acknowledging the push, so the next message need not wait.
pub async fn apply_one(
    state: &FeedContext,
    provider: &str,
    msg: &FeedMessage,
    pending: &mut Vec<Durable>,
) -> Result<Outcome, String> {
    let (Some(seq), Some(event_ref)) = (msg.seq, msg.event_ref.as_deref()) else {
        return Err("apply_one needs seq and event_ref".into());
    };
    let mut outcome = Outcome {
        seq: Some(seq),
        event_ref: Some(event_ref.to_string()),
        outcome: Applied::Applied,
        expected_seq: None,
        reason: None,
    };
    let entry = state.sequencer.entry(provider, event_ref);
    let mut e = entry.lock().await;
    load_entry(state, provider, event_ref, &mut e).await?;
    match classify(e.last_seq, seq) {
        Verdict::Duplicate { .. } => {
            outcome.outcome = Applied::Duplicate;
            return Ok(outcome);
        }
        Verdict::Gap { expected_seq, .. } => {
            outcome.outcome = Applied::Gap;
            outcome.expected_seq = Some(expected_seq);
        }
        Verdict::InOrder => {}
    }
    let mark = FeedSeqMark {
        provider: provider.to_string(),
        event_ref: event_ref.to_string(),
        seq,
    };
    // Ok(true) when the seq was written with the change (the fixture's transaction, or the
    // live writer's commit of an odds update).
    let result = apply_body(state, provider, &msg.body, mark, &mut e, pending).await;
    let mut stored_in_tx = false;
    match result {
        Ok(stored) => stored_in_tx = stored,
        Err(ApplyError::Reject(reason)) => {
            outcome.outcome = Applied::Rejected;
            outcome.reason = Some(reason);
        }
        Err(ApplyError::Infra(cause)) => return Err(cause),
    }
    if !stored_in_tx {
        let client = state.db.get().await.map_err(|e| e.to_string())?;
        sql::store_seq(&client, provider, event_ref, seq)
            .await
            .map_err(|e| e.to_string())?;
    }
    e.last_seq = seq;
    if let Body::Status(st) = &msg.body {
        if outcome.reason.is_none() && st.status.parse::<EventStatus>().is_ok_and(|s| s.is_final())
        {
            // The event is over: its entry goes (a late message reloads it from Postgres).
            state.sequencer.forget(provider, event_ref);
        }
    }
    Ok(outcome)
}

/// Reads the event's last stored seq and its id the first time the entry is used.
async fn load_entry(
    state: &FeedContext,
    provider: &str,
    event_ref: &str,
    e: &mut SeqEntry,
) -> Result<(), String> {
    // With several nodes, what this node knew of the event may be stale if the event was
    // owned elsewhere meanwhile (its messages applied there): read again under a new lease.
    let epoch = e
        .event
        .as_ref()
        .and_then(|(id, _)| state.registry.cluster().epoch_of(*id));
    if e.loaded && epoch == e.epoch {
        return Ok(());
    }
    let client = state.db.get().await.map_err(|e| e.to_string())?;
    e.last_seq = sql::last_seq(&client, provider, event_ref)
        .await
        .map_err(|e| e.to_string())?;
    e.event = sql::event_of_ref(&client, provider, event_ref)
        .await
        .map_err(|e| e.to_string())?;
    e.epoch = e
        .event
        .as_ref()
        .and_then(|(id, _)| state.registry.cluster().epoch_of(*id));
    e.loaded = true;
    Ok(())
}

/// Applies a message's body; `Ok(true)` when its seq was stored with the change.
async fn apply_body(
    state: &FeedContext,
    provider: &str,
    body: &Body,
    mark: FeedSeqMark,
    e: &mut SeqEntry,
    pending: &mut Vec<Durable>,
) -> Result<bool, ApplyError> {
    let event = e.event.clone();
    match body {
        Body::Fixture(f) => apply_fixture(state, provider, &mark.event_ref, mark.seq, f, e)
            .await
            .map(|()| true),
        // Results come when the event is over (no actor): they need only its markets.
        Body::MarketResults(r) => match event {
            Some((event_id, _)) => super::results::apply(state, event_id, r)
                .await
                .map(|()| false),
            None => Err(reject("no fixture yet for this event_ref")),
        },
        Body::ResultRollback(r) => match event {
            Some((event_id, _)) => super::results::rollback(state, event_id, r)
                .await
                .map(|()| false),
            None => Err(reject("no fixture yet for this event_ref")),
        },
        body => apply_live(state, e, body, mark, pending).await,
    }
}

/// The actors' key of a feed market reference (type, line, name for props).
pub fn market_key(r: &MarketRef) -> Result<FeedMarketKey, ApplyError> {
    let market_type = r
        .market_type
        .parse::<MarketType>()
        .map_err(|_| reject(format!("unknown market type {}", r.market_type)))?;
    let line = match &r.line {
        None => None,
        Some(l) => Some(
            l.parse::<Decimal>()
                .ok()
                .filter(|d| d.scale() <= 2 && d.abs() < Decimal::from(100_000_000))
                .ok_or_else(|| reject(format!("bad line {l}")))?,
        ),
    };
    let (handicap, total_points) = match market_type {
        MarketType::PointSpread => (line, None),
        MarketType::TotalPoints => (None, line),
        _ => (None, None),
    };
    let name = matches!(market_type, MarketType::PropBet | MarketType::Futures)
        .then(|| r.name.clone())
        .flatten();
    Ok(FeedMarketKey {
        market_type,
        handicap,
        total_points,
        name,
    })
}
