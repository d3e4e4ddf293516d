//! Bounded asks: how every request reaches an event or market actor. [`ask`] counts the
//! messages queued per actor (by stripe) and answers busy at the configured bound before
//! sending, then waits a bounded time for the reply.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use tokio::sync::oneshot;

use crate::actors::event::{self, EventActor};
use crate::actors::market::{self, MarketActor};

/// Why an actor could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskError {
    /// Mailbox full, or no answer within `ask_timeout_ms`.
    Busy,
    /// The actor stopped (its market was settled or voided meanwhile).
    Gone,
}

/// Mailbox stripes per actor kind: an actor's queued count lives in stripe
/// `hash(address) % MAILBOX_STRIPES` (two actors sharing a stripe share its bound).
const MAILBOX_STRIPES: usize = 4096;

/// Mailbox figures of one actor kind, kept by [`ask`] with relaxed atomics, exported in
/// `/metrics`, and the bound itself: actix parks a *sender* whose message found the mailbox
/// full, but every request holds a fresh clone of the address, so its bound alone lets each
/// new clone add one more message. [`ask`] therefore counts messages queued per actor (by
/// stripe) and answers busy at `markets.mailbox_capacity_messages` before sending.
pub struct MailboxStats {
    pub kind: &'static str,
    /// Messages sent through [`ask`] and not yet taken by their actor, over the kind.
    pub queued: AtomicUsize,
    /// The bound per actor (0: none).
    pub capacity: AtomicUsize,
    /// Asks refused at once because the actor's mailbox was full.
    pub busy_full: AtomicU64,
    /// Asks not answered within their timeout.
    pub busy_timeout: AtomicU64,
    stripes: [AtomicUsize; MAILBOX_STRIPES],
}

impl MailboxStats {
    pub fn new(kind: &'static str, capacity: usize) -> MailboxStats {
        MailboxStats {
            kind,
            queued: AtomicUsize::new(0),
            capacity: AtomicUsize::new(capacity),
            busy_full: AtomicU64::new(0),
            busy_timeout: AtomicU64::new(0),
            stripes: [const { AtomicUsize::new(0) }; MAILBOX_STRIPES],
        }
    }

    /// The most messages queued for one actor (stripe) now: the fullest mailbox.
    pub fn fullest(&self) -> usize {
        self.stripes
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }
}

/// The mailbox figures of both actor kinds: one per engine (the registry holds it), shared
/// with every message in flight so each can give its place back.
pub struct Mailboxes {
    pub events: MailboxStats,
    pub markets: MailboxStats,
}

impl Mailboxes {
    /// Both kinds bounded at `capacity` messages per actor (0: no bound).
    pub fn new(capacity: usize) -> Arc<Mailboxes> {
        Arc::new(Mailboxes {
            events: MailboxStats::new("event", capacity),
            markets: MailboxStats::new("market", capacity),
        })
    }

    /// Takes a place in an actor's mailbox, or `None` when it is full.
    fn enter(
        self: &Arc<Self>,
        kind: fn(&Mailboxes) -> &MailboxStats,
        stripe: usize,
    ) -> Option<Slot> {
        let stats = kind(self);
        let cap = stats.capacity.load(Ordering::Relaxed);
        let before = stats.stripes[stripe].fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            boxes: self.clone(),
            kind,
            stripe,
        };
        if cap > 0 && before >= cap {
            drop(slot);
            stats.busy_full.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        stats.queued.fetch_add(1, Ordering::Relaxed);
        Some(slot)
    }
}

/// A message's place in its actor's mailbox count: given back when the actor takes the
/// message, or when the message is dropped unhandled (the actor stopped).
pub struct Slot {
    boxes: Arc<Mailboxes>,
    kind: fn(&Mailboxes) -> &MailboxStats,
    stripe: usize,
}

impl Slot {
    fn stats(&self) -> &MailboxStats {
        (self.kind)(&self.boxes)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stats().stripes[self.stripe].fetch_sub(1, Ordering::Relaxed);
    }
}

/// A message sent by [`ask`], counted in its actor's mailbox until handled.
pub struct Counted<M> {
    msg: M,
    slot: Slot,
}

impl<M: Message<Result = ()>> Message for Counted<M> {
    type Result = ();
}

/// An actor reached through [`ask`]: where its kind's mailbox figures are kept.
pub trait Mailbox {
    fn stats(boxes: &Mailboxes) -> &MailboxStats;
}

macro_rules! counted_actor {
    ($actor:ty, $field:ident, $($msg:ty),+) => {
        impl Mailbox for $actor {
            fn stats(boxes: &Mailboxes) -> &MailboxStats {
                &boxes.$field
            }
        }
        $(
            impl Handler<Counted<$msg>> for $actor {
                type Result = ();
                fn handle(&mut self, c: Counted<$msg>, ctx: &mut Self::Context) {
                    let Counted { msg, slot } = c;
                    slot.stats().queued.fetch_sub(1, Ordering::Relaxed);
                    drop(slot);
                    <$actor as Handler<$msg>>::handle(self, msg, ctx)
                }
            }
        )+
    };
}

// Every message sent through `ask` (internal bookkeeping uses `do_send`/`send`).
counted_actor!(
    EventActor,
    events,
    event::GetEvent,
    event::SetEventStatus,
    event::CommandAllMarkets,
    event::SetScore,
    event::feed::FeedScore,
    event::feed::FeedBetStop
);
counted_actor!(
    MarketActor,
    markets,
    market::GetMarket,
    market::GetLiability,
    market::SetPrices,
    market::ApplyCommand,
    market::UpdateSettings,
    market::CheckAndReserve,
    market::CashOutPrice,
    market::feed::FeedPrices
);

fn stripe_of<A: Actor>(addr: &Addr<A>) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    addr.hash(&mut h);
    (h.finish() as usize) % MAILBOX_STRIPES
}

/// Sends `make(reply)` with `try_send` and waits (bounded) for the reply. A mailbox holding
/// `markets.mailbox_capacity_messages` is an immediate `Busy`.
pub async fn ask<A, M, R>(
    boxes: &Arc<Mailboxes>,
    addr: &Addr<A>,
    timeout: Duration,
    make: impl FnOnce(oneshot::Sender<R>) -> M,
) -> Result<R, AskError>
where
    A: Actor + Handler<Counted<M>> + Mailbox,
    A::Context: ToEnvelope<A, Counted<M>>,
    M: Message<Result = ()> + Send + 'static,
{
    let stats = A::stats(boxes);
    let slot = boxes
        .enter(A::stats, stripe_of(addr))
        .ok_or(AskError::Busy)?;
    let (tx, rx) = oneshot::channel();
    let msg = Counted {
        msg: make(tx),
        slot,
    };
    addr.try_send(msg).map_err(|e| match e {
        SendError::Full(c) => {
            c.slot.stats().queued.fetch_sub(1, Ordering::Relaxed);
            stats.busy_full.fetch_add(1, Ordering::Relaxed);
            AskError::Busy
        }
        SendError::Closed(c) => {
            c.slot.stats().queued.fetch_sub(1, Ordering::Relaxed);
            AskError::Gone
        }
    })?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err(AskError::Gone),
        Err(_) => {
            stats.busy_timeout.fetch_add(1, Ordering::Relaxed);
            Err(AskError::Busy)
        }
    }
}
