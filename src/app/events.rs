//! An event's status and event-wide market commands: the one use case behind a trader's
//! `POST /trading/events/{id}/status` (and `/suspend`, `/resume`) and a feed's `status`
//! message. The event actor changes its state and its markets in one turn; this service
//! waits until every change is durable and, for a cancellation, runs the event's void
//! settlement (`settlement::cancel`): every bet refunded once, whichever door it came by.
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::actors::errors::MarketError;
use crate::actors::event::{CommandAllMarkets, EventState, Fanout, SetEventStatus};
use crate::actors::market::MarketView;
use crate::actors::writer::{durable, NotDurable};
use crate::actors::{AskError, AuditActor, LoadError, Registry};
use crate::db::settlement::SettlementRow;
use crate::domain::ids::EventId;
use crate::domain::{EventStatus, MarketCommand};
use crate::settlement::error::SettlementError;
use crate::settlement::Settlement;

/// The handles the use case needs.
#[derive(Clone)]
pub struct EventService {
    pub registry: Arc<Registry>,
    pub settlement: Arc<Settlement>,
}

/// What an event-wide change did, once all of it is durable.
#[derive(Debug, Serialize)]
pub struct EventChanged {
    pub event: EventState,
    pub markets_changed: Vec<MarketView>,
    /// Markets that refused their part (e.g. already closed), with the reason.
    #[serde(skip)]
    pub refused: Vec<MarketError>,
    /// The void settlements a cancellation opened (one per market not voided before).
    #[serde(skip)]
    pub voided: Vec<SettlementRow>,
}

/// Why an event change was refused or could not be completed.
#[derive(Debug, Error)]
pub enum EventError {
    #[error("no such live event")]
    NotFound,
    /// The event is finished or cancelled and the change is not a transition from there
    /// (every change of a final event is refused).
    #[error("the event is over")]
    Over,
    /// The event's state machine refused the change (or the event is over).
    #[error(transparent)]
    Refused(#[from] MarketError),
    #[error("live state did not answer: {0:?}")]
    Ask(AskError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    NotDurable(#[from] NotDurable),
    /// A market did not answer in time.
    #[error("a market is busy")]
    Busy,
    /// The status changed, but the cancellation's voids could not be opened (they are
    /// opened at the next start, or by repeating the request).
    #[error(transparent)]
    Void(#[from] SettlementError),
}

impl From<AskError> for EventError {
    fn from(e: AskError) -> Self {
        EventError::Ask(e)
    }
}

impl EventService {
    /// Moves the event to `status` (with period and clock when given), waits for every
    /// change to be durable, and voids every market of a cancelled event.
    pub async fn set_status(
        &self,
        event_id: EventId,
        status: EventStatus,
        period: Option<String>,
        clock: Option<String>,
        actor: AuditActor,
    ) -> Result<EventChanged, EventError> {
        let reg = &self.registry;
        let Some(addr) = reg.event(event_id).await? else {
            return Err(over_or_missing(reg, event_id, status).await);
        };
        let fanout = reg
            .ask(&addr, |reply| SetEventStatus {
                status,
                period,
                clock,
                actor: actor.clone(),
                reply,
            })
            .await??;
        let mut changed = finish(fanout, reg.ask_timeout()).await?;
        if status == EventStatus::Cancelled {
            changed.voided =
                crate::settlement::cancel::void_event(&self.settlement, reg, event_id, actor)
                    .await?;
        }
        Ok(changed)
    }

    /// Suspends or resumes every market of the event.
    pub async fn command_all(
        &self,
        event_id: EventId,
        command: MarketCommand,
        actor: AuditActor,
    ) -> Result<EventChanged, EventError> {
        let reg = &self.registry;
        let addr = reg.event(event_id).await?.ok_or(EventError::NotFound)?;
        let fanout = reg
            .ask(&addr, |reply| CommandAllMarkets {
                command,
                actor,
                reply,
            })
            .await?;
        finish(fanout, reg.ask_timeout()).await
    }
}

/// Why an event without live state refuses `status`: it does not exist, or it is over
/// (finished or cancelled), which its state machine answers precisely.
async fn over_or_missing(reg: &Registry, event_id: EventId, status: EventStatus) -> EventError {
    match reg.stored_event_status(event_id).await {
        Ok(None) => EventError::NotFound,
        Ok(Some(stored)) => match crate::domain::event::transition(stored, status) {
            Err(refused) => EventError::Refused(refused.into()),
            Ok(_) => EventError::Over,
        },
        Err(e) => e.into(),
    }
}

/// Awaits an event-wide change: the event's own write, the in-play flags and every
/// market's answer (each bounded by `timeout`).
async fn finish(f: Fanout, timeout: Duration) -> Result<EventChanged, EventError> {
    if let Some(d) = f.durable {
        durable(d, timeout).await?;
    }
    for rx in f.in_play {
        if let Ok(Ok(Ok(Some(d)))) = tokio::time::timeout(timeout, rx).await {
            durable(d, timeout).await?;
        }
    }
    let mut markets_changed = Vec::new();
    let mut refused = Vec::new();
    for rx in f.markets {
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(Some((view, d))))) => {
                durable(d, timeout).await?;
                markets_changed.push(view);
            }
            Ok(Ok(Ok(None))) | Ok(Err(_)) => {}
            Ok(Ok(Err(e))) => refused.push(e),
            Err(_) => return Err(EventError::Busy),
        }
    }
    Ok(EventChanged {
        event: f.event,
        markets_changed,
        refused,
        voided: Vec::new(),
    })
}
