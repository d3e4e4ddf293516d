//! `EventActor`: the one writer of an event's live state (status, score, period, clock),
//! owning the addresses of its markets. Status changes go through the domain's event table;
//! entering a status that acts on markets (suspended, postponed, finished, cancelled)
//! commands every market in the same handler, and `live`/`halftime` put them in play.
//! Feed messages for the event (issue 6) arrive here in order and use the same messages.
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::oneshot;
use uuid::Uuid;

pub mod feed;

use super::errors::MarketError;
use super::market::{ApplyCommand, MarketActor, MarketView, SetInPlay};
use super::registry::Directory;
use super::writer::{AuditActor, Change, Durable};
use super::Shared;
use crate::db::markets::EventRow;
use crate::domain::ids::{EventId, MarketId};
use crate::domain::{event, EventStatus, MarketCommand};

pub struct EventActor {
    e: EventRow,
    /// The event's markets, in creation order.
    markets: Vec<(MarketId, Addr<MarketActor>)>,
    shared: Arc<Shared>,
    directory: std::sync::Weak<Directory>,
    event_topic: crate::broadcast::TopicHandle,
    sport_topic: crate::broadcast::TopicHandle,
}

/// The event's own live state (markets are asked separately).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventState {
    #[schema(value_type = uuid::Uuid)]
    pub id: EventId,
    pub sport_id: Uuid,
    pub sport_slug: String,
    pub league_id: Option<Uuid>,
    pub home_team_id: Uuid,
    pub away_team_id: Uuid,
    pub home_team_name: String,
    pub away_team_name: String,
    pub start_time: DateTime<Utc>,
    #[schema(value_type = String)]
    pub status: EventStatus,
    pub period: Option<String>,
    pub clock: Option<String>,
    pub home_score: i32,
    pub away_score: i32,
    pub venue: Option<String>,
}

/// A market's answer to a command fanned out by the event.
pub type MarketAnswer = oneshot::Receiver<Result<Option<(MarketView, Durable)>, MarketError>>;

/// What an event-wide change produced: the event's own durability (if it changed) and
/// each market's answer, which the caller awaits.
pub struct Fanout {
    pub event: EventState,
    pub durable: Option<Durable>,
    pub markets: Vec<MarketAnswer>,
    pub in_play: Vec<oneshot::Receiver<Result<Option<Durable>, MarketError>>>,
}

impl Actor for EventActor {
    type Context = Context<Self>;
}

impl EventActor {
    pub fn new(e: EventRow, shared: Arc<Shared>, directory: std::sync::Weak<Directory>) -> Self {
        let event_topic = shared.hub.handle(&crate::broadcast::event_topic(e.id));
        let sport_topic = shared
            .hub
            .handle(&crate::broadcast::sport_topic(&e.sport_slug));
        EventActor {
            e,
            markets: Vec::new(),
            shared,
            directory,
            event_topic,
            sport_topic,
        }
    }

    fn state(&self) -> EventState {
        let e = &self.e;
        EventState {
            id: e.id,
            sport_id: e.sport_id,
            sport_slug: e.sport_slug.clone(),
            league_id: e.league_id,
            home_team_id: e.home_team_id,
            away_team_id: e.away_team_id,
            home_team_name: e.home_team_name.clone(),
            away_team_name: e.away_team_name.clone(),
            start_time: e.start_time,
            status: e.status,
            period: e.period.clone(),
            clock: e.clock.clone(),
            home_score: e.home_score,
            away_score: e.away_score,
            venue: e.venue.clone(),
        }
    }

    fn publish<T: Serialize>(&self, kind: &'static str, data: &T) {
        self.shared
            .hub
            .publish_all(&[&self.event_topic, &self.sport_topic], kind, data);
    }

    /// Sends a command to every market. Internal fan-out (one message per market per event
    /// change, never driven by bettors) uses `do_send` so a busy market cannot miss a
    /// suspension; the bound of the market's mailbox applies to client-driven traffic.
    fn command_markets(&self, command: MarketCommand, actor: &AuditActor) -> Vec<MarketAnswer> {
        self.markets
            .iter()
            .map(|(_, addr)| {
                let (reply, rx) = oneshot::channel();
                addr.do_send(ApplyCommand {
                    command,
                    actor: actor.clone(),
                    skip_if_invalid: true,
                    reply,
                });
                rx
            })
            .collect()
    }

    fn set_in_play(
        &self,
        in_play: bool,
        actor: &AuditActor,
    ) -> Vec<oneshot::Receiver<Result<Option<Durable>, MarketError>>> {
        self.markets
            .iter()
            .map(|(_, addr)| {
                let (reply, rx) = oneshot::channel();
                addr.do_send(SetInPlay {
                    in_play,
                    actor: actor.clone(),
                    reply,
                });
                rx
            })
            .collect()
    }

    /// A new status through the event table, with period and clock when given (the same
    /// status again only moves period and clock, when given). One write, one `event_status`.
    fn set_status(
        &mut self,
        msg: SetEventStatus,
        ctx: &mut Context<Self>,
    ) -> Result<Fanout, MarketError> {
        let SetEventStatus {
            status: to,
            period,
            clock,
            actor,
            ..
        } = msg;
        let moves_clock = period.is_some() || clock.is_some();
        let next = match event::transition(self.e.status, to) {
            Ok(next) => next,
            Err(t) if t.from == t.to && moves_clock => to,
            Err(t) => return Err(t.into()),
        };
        let changed = next != self.e.status;
        let slot = self
            .shared
            .writer
            .reserve()
            .map_err(|_| MarketError::Busy)?;
        let was_in_play = self.e.status.is_in_play();
        self.e.status = next;
        let mut changes = vec![Change::EventStatus {
            event_id: self.e.id,
            status: next,
        }];
        if moves_clock {
            self.e.period = period.or(self.e.period.take());
            self.e.clock = clock.or(self.e.clock.take());
            changes.push(Change::EventScore {
                event_id: self.e.id,
                home_score: self.e.home_score,
                away_score: self.e.away_score,
                period: self.e.period.clone(),
                clock: self.e.clock.clone(),
            });
        }
        let durable = slot.send(actor.clone(), changes);
        self.publish(
            "event_status",
            &StatusOut {
                event_id: self.e.id,
                status: next,
                period: self.e.period.clone(),
                clock: self.e.clock.clone(),
            },
        );
        let markets = match next.market_command_on_entry() {
            Some(command) if changed => self.command_markets(command, &actor),
            _ => Vec::new(),
        };
        let in_play = if next.is_in_play() != was_in_play && !next.is_final() {
            self.set_in_play(next.is_in_play(), &actor)
        } else {
            Vec::new()
        };
        if next.is_final() {
            if let Some(dir) = self.directory.upgrade() {
                dir.forget_event(self.e.id);
            }
            ctx.stop();
        }
        Ok(Fanout {
            event: self.state(),
            durable: Some(durable),
            markets,
            in_play,
        })
    }

    fn set_score(&mut self, s: &ScoreUpdate, actor: AuditActor) -> Result<Durable, MarketError> {
        if s.home_score < 0 || s.away_score < 0 {
            return Err(MarketError::Validation("scores are not negative".into()));
        }
        let slot = self
            .shared
            .writer
            .reserve()
            .map_err(|_| MarketError::Busy)?;
        self.e.home_score = s.home_score;
        self.e.away_score = s.away_score;
        self.e.period = s.period.clone().or(self.e.period.take());
        self.e.clock = s.clock.clone().or(self.e.clock.take());
        let durable = slot.send(
            actor,
            vec![Change::EventScore {
                event_id: self.e.id,
                home_score: self.e.home_score,
                away_score: self.e.away_score,
                period: self.e.period.clone(),
                clock: self.e.clock.clone(),
            }],
        );
        self.publish(
            "score",
            &ScoreOut {
                event_id: self.e.id,
                home_score: self.e.home_score,
                away_score: self.e.away_score,
                period: self.e.period.clone(),
                clock: self.e.clock.clone(),
            },
        );
        Ok(durable)
    }
}

#[derive(Serialize)]
struct StatusOut {
    event_id: EventId,
    status: EventStatus,
    period: Option<String>,
    clock: Option<String>,
}

#[derive(Serialize)]
struct ScoreOut {
    event_id: EventId,
    home_score: i32,
    away_score: i32,
    period: Option<String>,
    clock: Option<String>,
}

/// The event's state and its markets' addresses (the caller asks each market).
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetEvent {
    pub reply: oneshot::Sender<(EventState, Vec<Addr<MarketActor>>)>,
}

impl Handler<GetEvent> for EventActor {
    type Result = ();
    fn handle(&mut self, msg: GetEvent, _: &mut Context<Self>) {
        let addrs = self.markets.iter().map(|(_, a)| a.clone()).collect();
        let _ = msg.reply.send((self.state(), addrs));
    }
}

/// A market of this event was started (creation, recovery, on-demand).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddMarket {
    pub market_id: MarketId,
    pub addr: Addr<MarketActor>,
}

impl Handler<AddMarket> for EventActor {
    type Result = ();
    fn handle(&mut self, msg: AddMarket, _: &mut Context<Self>) {
        if !self.markets.iter().any(|(id, _)| *id == msg.market_id) {
            self.markets.push((msg.market_id, msg.addr));
        }
    }
}

/// A market stopped (settled, voided): the event no longer lists it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoveMarket {
    pub market_id: MarketId,
}

impl Handler<RemoveMarket> for EventActor {
    type Result = ();
    fn handle(&mut self, msg: RemoveMarket, _: &mut Context<Self>) {
        self.markets.retain(|(id, _)| *id != msg.market_id);
    }
}

/// A new event status (trader or feed), through the event table.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetEventStatus {
    pub status: EventStatus,
    /// Set with the status when given (validated by the caller: `domain::event`).
    pub period: Option<String>,
    pub clock: Option<String>,
    pub actor: AuditActor,
    pub reply: oneshot::Sender<Result<Fanout, MarketError>>,
}

impl Handler<SetEventStatus> for EventActor {
    type Result = ();
    fn handle(&mut self, msg: SetEventStatus, ctx: &mut Context<Self>) {
        let (reply, msg) = take_reply(msg);
        let _ = reply.send(self.set_status(msg, ctx));
    }
}

/// Splits the reply channel from the rest of the message.
fn take_reply(
    mut msg: SetEventStatus,
) -> (oneshot::Sender<Result<Fanout, MarketError>>, SetEventStatus) {
    let (placeholder, _) = oneshot::channel();
    let reply = std::mem::replace(&mut msg.reply, placeholder);
    (reply, msg)
}

/// Suspend or resume every market of the event at once (markets already there are skipped).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CommandAllMarkets {
    pub command: MarketCommand,
    pub actor: AuditActor,
    pub reply: oneshot::Sender<Fanout>,
}

impl Handler<CommandAllMarkets> for EventActor {
    type Result = ();
    fn handle(&mut self, msg: CommandAllMarkets, _: &mut Context<Self>) {
        let markets = self.command_markets(msg.command, &msg.actor);
        let _ = msg.reply.send(Fanout {
            event: self.state(),
            durable: None,
            markets,
            in_play: Vec::new(),
        });
    }
}

/// A score (and optionally period and clock) for the event.
#[derive(Debug, Clone)]
pub struct ScoreUpdate {
    pub home_score: i32,
    pub away_score: i32,
    pub period: Option<String>,
    pub clock: Option<String>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct SetScore {
    pub score: ScoreUpdate,
    pub actor: AuditActor,
    pub reply: oneshot::Sender<Result<(EventState, Durable), MarketError>>,
}

impl Handler<SetScore> for EventActor {
    type Result = ();
    fn handle(&mut self, msg: SetScore, _: &mut Context<Self>) {
        let out = self
            .set_score(&msg.score, msg.actor)
            .map(|d| (self.state(), d));
        let _ = msg.reply.send(out);
    }
}
