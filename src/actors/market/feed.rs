//! Feed messages of a `MarketActor` (issue 6): the feed's own suspension flag
//! (`feed_suspended`, apart from the trader's status, so a feed can never undo a trader's
//! suspension) and feed prices, which clear that flag.
use std::sync::Arc;

use actix::prelude::*;
use rust_decimal::Decimal;
use tokio::sync::oneshot;

use super::super::errors::MarketError;
use super::super::writer::{AuditActor, Change, Durable, FeedSeqMark};
use super::{MarketActor, MarketView};
use crate::domain::{MarketStatus, MarketType, Odds};

/// How a feed names a market: type, line (handicap or total) and, for props, the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMarketKey {
    pub market_type: MarketType,
    pub handicap: Option<Decimal>,
    pub total_points: Option<Decimal>,
    pub name: Option<String>,
}

/// Which markets of an event a feed suspension hits.
#[derive(Debug, Clone)]
pub enum FeedFilter {
    All,
    Types(Vec<MarketType>),
    Keys(Vec<FeedMarketKey>),
}

impl MarketActor {
    fn feed_matches(&self, filter: &FeedFilter) -> bool {
        match filter {
            FeedFilter::All => true,
            FeedFilter::Types(types) => types.contains(&self.m.market_type),
            FeedFilter::Keys(keys) => keys.iter().any(|k| self.feed_key_matches(k)),
        }
    }

    pub(super) fn feed_key_matches(&self, k: &FeedMarketKey) -> bool {
        k.market_type == self.m.market_type
            && k.handicap == self.m.handicap
            && k.total_points == self.m.total_points
            && k.name.as_ref().is_none_or(|n| *n == self.m.name)
    }

    /// Sets or clears the feed's flag; `None` when nothing changed. A full writer queue
    /// still changes memory when suspending (a suspension must never be lost to load); the
    /// flag is then persisted with the market's next change.
    fn set_feed_suspended(&mut self, on: bool, actor: AuditActor) -> Option<Durable> {
        if self.m.feed_suspended == on
            || !matches!(self.m.status, MarketStatus::Open | MarketStatus::Suspended)
        {
            return None;
        }
        let slot = self.shared.writer.reserve();
        if slot.is_err() && !on {
            return None;
        }
        self.m.feed_suspended = on;
        self.publish_status();
        match slot {
            Ok(slot) => Some(slot.send(
                actor,
                vec![Change::MarketFeedSuspended {
                    market_id: self.m.id,
                    feed_suspended: on,
                }],
            )),
            Err(_) => {
                tracing::error!(market = %self.m.id, "live writer full: feed suspension kept in memory only");
                None
            }
        }
    }
}

/// Suspends this market for the feed if it matches `filter`. Sent by its EventActor in the
/// same turn as the score or bet stop that causes it (internal fan-out, `do_send`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FeedSuspend {
    pub filter: Arc<FeedFilter>,
    pub actor: AuditActor,
    /// The change's durability when this market was suspended now.
    pub reply: oneshot::Sender<Option<Durable>>,
}

impl Handler<FeedSuspend> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: FeedSuspend, _: &mut Context<Self>) {
        let out = if self.feed_matches(&msg.filter) {
            self.set_feed_suspended(true, msg.actor)
        } else {
            None
        };
        let _ = msg.reply.send(out);
    }
}

/// Feed prices by selection name; reopens the market if the feed had suspended it (a
/// trader's suspension stays: prices are then refused as for any suspended market).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FeedPrices {
    pub prices: Vec<(String, Odds)>,
    pub actor: AuditActor,
    /// The feed message's seq, written by the live writer right after the prices (one
    /// commit for both instead of a second round trip by the feed).
    pub seq_mark: Option<FeedSeqMark>,
    pub reply: oneshot::Sender<Result<FeedPricesDone, MarketError>>,
}

/// The market after a feed's prices, what to await for durability, and whether the
/// message's seq went to the writer with them.
pub struct FeedPricesDone {
    pub view: MarketView,
    pub durables: Vec<Durable>,
    pub seq_queued: bool,
}

impl Handler<FeedPrices> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: FeedPrices, _: &mut Context<Self>) {
        let _ = msg
            .reply
            .send(self.feed_prices(&msg.prices, msg.actor, msg.seq_mark));
    }
}

impl MarketActor {
    fn feed_prices(
        &mut self,
        prices: &[(String, Odds)],
        actor: AuditActor,
        seq_mark: Option<FeedSeqMark>,
    ) -> Result<FeedPricesDone, MarketError> {
        let mut by_id = Vec::with_capacity(prices.len());
        for (name, odds) in prices {
            let s = self
                .m
                .selections
                .iter()
                .find(|s| s.name == *name)
                .ok_or_else(|| MarketError::Validation(format!("unknown selection {name}")))?;
            by_id.push((s.id, *odds));
        }
        let (_, durable) = self.set_prices(&by_id, actor.clone())?;
        let mut durables = vec![durable];
        durables.extend(self.set_feed_suspended(false, actor.clone()));
        let mut seq_queued = false;
        if let Some(mark) = seq_mark {
            // After the prices in the writer's queue; a full queue leaves it to the feed.
            if let Ok(slot) = self.shared.writer.reserve() {
                durables.push(slot.send(actor, vec![Change::FeedSeq(mark)]));
                seq_queued = true;
            }
        }
        Ok(FeedPricesDone {
            view: self.view(),
            durables,
            seq_queued,
        })
    }
}
