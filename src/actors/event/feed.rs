//! Feed messages of an `EventActor` (issue 6): a score or a bet stop suspends the affected
//! markets in the same handler that applies it, so every bet check a market runs after this
//! turn sees the suspension (each market's mailbox is FIFO and the suspension is queued in
//! this turn).
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::super::errors::MarketError;
use super::super::market::feed::{FeedFilter, FeedSuspend};
use super::super::writer::{AuditActor, Durable};
use super::{EventActor, EventState, ScoreUpdate};

/// Each suspended market's durability (None: it was not hit or already suspended).
pub type SuspendAnswers = Vec<oneshot::Receiver<Option<Durable>>>;

impl EventActor {
    fn feed_suspend(&self, filter: Arc<FeedFilter>, actor: &AuditActor) -> SuspendAnswers {
        self.markets
            .iter()
            .map(|(_, addr)| {
                let (reply, rx) = oneshot::channel();
                // Internal fan-out, one per market per feed message: a suspension must not
                // be refused by a full mailbox (bets are bounded by `try_send` upstream).
                addr.do_send(FeedSuspend {
                    filter: filter.clone(),
                    actor: actor.clone(),
                    reply,
                });
                rx
            })
            .collect()
    }
}

/// A bet stop: suspends the matching markets for the feed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FeedBetStop {
    pub filter: Arc<FeedFilter>,
    pub actor: AuditActor,
    pub reply: oneshot::Sender<SuspendAnswers>,
}

impl Handler<FeedBetStop> for EventActor {
    type Result = ();
    fn handle(&mut self, msg: FeedBetStop, _: &mut Context<Self>) {
        let _ = msg.reply.send(self.feed_suspend(msg.filter, &msg.actor));
    }
}

/// A score from the feed: when it differs from the current one, the markets the sport's
/// rule names are suspended first, then the score is applied and published.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FeedScore {
    pub score: ScoreUpdate,
    /// Markets a score change suspends (per sport, from `[feed.suspend_on_score]`).
    pub on_change: Arc<FeedFilter>,
    pub actor: AuditActor,
    pub reply: oneshot::Sender<Result<(EventState, Durable, SuspendAnswers), MarketError>>,
}

impl Handler<FeedScore> for EventActor {
    type Result = ();
    fn handle(&mut self, msg: FeedScore, _: &mut Context<Self>) {
        let changed =
            msg.score.home_score != self.e.home_score || msg.score.away_score != self.e.away_score;
        let suspended = if changed {
            self.feed_suspend(msg.on_change, &msg.actor)
        } else {
            Vec::new()
        };
        let out = self
            .set_score(&msg.score, msg.actor)
            .map(|d| (self.state(), d, suspended));
        let _ = msg.reply.send(out);
    }
}
