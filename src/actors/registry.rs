//! The registry: event, market and selection ids → actor addresses. It starts actors on
//! demand (from Postgres), rebuilds every live event and market at start-up (before
//! `/readyz` says ready), and forgets actors that stopped (settled or voided markets,
//! finished or cancelled events) so their memory is freed.
//!
//! Actors are spread over a fixed set of arbiters (threads), round robin; each gets the
//! configured mailbox bound. [`ask`] is the only way requests reach them: `try_send` with a
//! reply channel, so a full mailbox is an immediate 503 `busy`, never an unbounded queue.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::prelude::*;
use deadpool_postgres::Pool;
use rust_decimal::Decimal;

mod mailbox;

pub use mailbox::{AskError, Counted, Mailbox, MailboxStats, Mailboxes, Slot};

use super::event::{AddMarket, EventActor, RemoveMarket};
use super::market::{MarketActor, MarketInit, SelectionState};
use super::Shared;
use crate::db::markets::{self as q, EventRow, ExposureRow, MarketRow, SelectionRow};
use crate::domain::ids::{EventId, MarketId, SelectionId};
use crate::domain::{MarketStatus, Odds};
/// Why live state could not be loaded from Postgres (the database did not answer).
#[derive(Debug, Clone, thiserror::Error)]
#[error("live state could not be loaded: {0}")]
pub struct LoadError(pub String);

impl From<deadpool_postgres::PoolError> for LoadError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        LoadError(e.to_string())
    }
}

impl From<tokio_postgres::Error> for LoadError {
    fn from(e: tokio_postgres::Error) -> Self {
        LoadError(e.to_string())
    }
}

impl From<anyhow::Error> for LoadError {
    fn from(e: anyhow::Error) -> Self {
        LoadError(format!("{e:#}"))
    }
}

/// Id → address maps, shared with the actors (weakly) so a stopping actor removes itself.
#[derive(Default)]
pub struct Directory {
    events: RwLock<HashMap<EventId, Addr<EventActor>>>,
    markets: RwLock<HashMap<MarketId, (EventId, Addr<MarketActor>)>>,
    selections: RwLock<HashMap<SelectionId, MarketId>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Directory {
    pub fn forget_market(
        &self,
        market_id: MarketId,
        selections: impl Iterator<Item = SelectionId>,
    ) {
        let removed = write(&self.markets).remove(&market_id);
        let mut sel = write(&self.selections);
        for s in selections {
            sel.remove(&s);
        }
        drop(sel);
        if let Some((event_id, _)) = removed {
            if let Some(ev) = read(&self.events).get(&event_id) {
                // Bookkeeping only, one per stopped market; not client-driven.
                ev.do_send(RemoveMarket { market_id });
            }
        }
    }

    pub fn forget_event(&self, event_id: EventId) {
        write(&self.events).remove(&event_id);
    }

    /// Forgets an event and all its markets (this node stopped owning it): with their
    /// addresses gone the actors stop once the requests holding them are answered.
    pub fn forget_event_and_markets(&self, event_id: EventId) {
        write(&self.events).remove(&event_id);
        let mut markets = write(&self.markets);
        let gone: Vec<MarketId> = markets
            .iter()
            .filter(|(_, (e, _))| *e == event_id)
            .map(|(m, _)| *m)
            .collect();
        for m in &gone {
            markets.remove(m);
        }
        drop(markets);
        write(&self.selections).retain(|_, m| !gone.contains(m));
    }
}

/// The registry, shared through `AppState`.
pub struct Registry {
    pub shared: Arc<Shared>,
    dir: Arc<Directory>,
    db: Pool,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    /// Serializes on-demand starts so one id never gets two actors.
    load_lock: tokio::sync::Mutex<()>,
    /// Queued messages per actor and their bound.
    mailboxes: Arc<Mailboxes>,
    /// Which events this node owns (all of them with one node).
    cluster: Arc<crate::cluster::Cluster>,
}

impl Registry {
    /// Must run inside an actix system (it starts the arbiters).
    /// Its actors run on `markets.arbiters` threads it starts (the engine without its book
    /// thread, the tools, the tests).
    pub fn new(shared: Arc<Shared>, db: Pool) -> Registry {
        let n = shared.markets.arbiters.max(1);
        let arbiters = (0..n).map(|_| Arbiter::new().handle()).collect();
        Registry::on(shared, db, arbiters)
    }

    /// A registry whose actors run on the given arbiters (with `bets.book_thread`: the book
    /// thread, so a bet reserves its legs without leaving it, `crate::book`).
    pub fn on(shared: Arc<Shared>, db: Pool, arbiters: Vec<ArbiterHandle>) -> Registry {
        assert!(
            !arbiters.is_empty(),
            "a registry needs an arbiter to run its actors on"
        );
        let mailboxes = Mailboxes::new(shared.markets.mailbox_capacity_messages);
        Registry {
            shared,
            dir: Arc::new(Directory::default()),
            db,
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            load_lock: tokio::sync::Mutex::new(()),
            mailboxes,
            cluster: crate::cluster::Cluster::single(),
        }
    }

    /// Serves only the events `cluster` says this node owns; the actors of an event it
    /// stops owning are forgotten (and stop).
    pub fn with_cluster(mut self, cluster: Arc<crate::cluster::Cluster>) -> Registry {
        let dir = Arc::downgrade(&self.dir);
        cluster.on_lost(move |events| {
            if let Some(dir) = dir.upgrade() {
                for e in events {
                    dir.forget_event_and_markets(*e);
                }
            }
        });
        self.cluster = cluster;
        self
    }

    /// The book's currencies (scales and rates to the base).
    pub fn currencies(&self) -> &Arc<crate::domain::currency::Currencies> {
        &self.shared.currencies
    }

    pub fn cluster(&self) -> &Arc<crate::cluster::Cluster> {
        &self.cluster
    }

    /// Takes the event's lease if needed; an error when another node owns it.
    async fn own(&self, event_id: EventId) -> Result<(), LoadError> {
        if self.cluster.owns(event_id) {
            return Ok(());
        }
        // Actors left from an earlier lease hold state that may be stale now.
        self.dir.forget_event_and_markets(event_id);
        match self.cluster.route(event_id).await {
            Ok(crate::cluster::Route::Local) => Ok(()),
            Ok(crate::cluster::Route::Remote { node_id, .. }) => {
                Err(LoadError(format!("the event is served by node {node_id}")))
            }
            Err(e) => Err(LoadError(e.to_string())),
        }
    }

    pub fn ask_timeout(&self) -> Duration {
        Duration::from_millis(self.shared.markets.ask_timeout_ms)
    }

    /// The mailbox figures of this engine's actors (`/metrics`).
    pub fn mailboxes(&self) -> &Mailboxes {
        &self.mailboxes
    }

    /// Asks an actor, bounded by its mailbox and `ask_timeout_ms` (see [`mailbox::ask`]).
    pub async fn ask<A, M, R>(
        &self,
        addr: &Addr<A>,
        make: impl FnOnce(tokio::sync::oneshot::Sender<R>) -> M,
    ) -> Result<R, AskError>
    where
        A: Actor + Handler<Counted<M>> + Mailbox,
        A::Context: actix::dev::ToEnvelope<A, Counted<M>>,
        M: Message<Result = ()> + Send + 'static,
    {
        self.ask_within(addr, self.ask_timeout(), make).await
    }

    /// [`Registry::ask`] with a timeout of the caller's (a bet leg waits its bet delay too).
    pub async fn ask_within<A, M, R>(
        &self,
        addr: &Addr<A>,
        timeout: Duration,
        make: impl FnOnce(tokio::sync::oneshot::Sender<R>) -> M,
    ) -> Result<R, AskError>
    where
        A: Actor + Handler<Counted<M>> + Mailbox,
        A::Context: actix::dev::ToEnvelope<A, Counted<M>>,
        M: Message<Result = ()> + Send + 'static,
    {
        mailbox::ask(&self.mailboxes, addr, timeout, make).await
    }

    fn arbiter(&self) -> &ArbiterHandle {
        let i = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        &self.arbiters[i]
    }

    /// Counts of live actors: (events, markets).
    pub fn counts(&self) -> (usize, usize) {
        (read(&self.dir.events).len(), read(&self.dir.markets).len())
    }

    /// Every live event's address (recovery checks, catalogue listings).
    pub fn event_ids(&self) -> Vec<EventId> {
        read(&self.dir.events).keys().copied().collect()
    }

    pub fn running_event(&self, id: EventId) -> Option<Addr<EventActor>> {
        read(&self.dir.events).get(&id).cloned()
    }

    pub fn running_market(&self, id: MarketId) -> Option<Addr<MarketActor>> {
        read(&self.dir.markets).get(&id).map(|(_, a)| a.clone())
    }

    /// The event of a running market.
    pub fn event_of_market(&self, market_id: MarketId) -> Option<EventId> {
        read(&self.dir.markets).get(&market_id).map(|(e, _)| *e)
    }

    /// A running market whose event this node owns now.
    fn owned_market(&self, id: MarketId) -> Option<Addr<MarketActor>> {
        let (event_id, addr) = read(&self.dir.markets).get(&id).cloned()?;
        self.cluster.owns(event_id).then_some(addr)
    }

    /// The market of a live selection, if its market runs.
    pub fn market_of_selection(&self, selection_id: SelectionId) -> Option<MarketId> {
        read(&self.dir.selections).get(&selection_id).copied()
    }

    /// Starts an event actor (replacing none: the caller checked it is not running).
    pub fn start_event(&self, row: EventRow) -> Addr<EventActor> {
        let id = row.id;
        let cap = self.shared.markets.mailbox_capacity_messages.max(1);
        let (shared, dir) = (self.shared.clone(), Arc::downgrade(&self.dir));
        let addr = EventActor::start_in_arbiter(self.arbiter(), move |ctx| {
            ctx.set_mailbox_capacity(cap);
            EventActor::new(row, shared, dir)
        });
        write(&self.dir.events).insert(id, addr.clone());
        addr
    }

    /// Starts a market actor and tells its event.
    pub fn start_market(
        &self,
        event: &EventRow,
        row: MarketRow,
        selections: Vec<SelectionRow>,
        exposure: &HashMap<SelectionId, (Decimal, Decimal)>,
    ) -> anyhow::Result<Addr<MarketActor>> {
        let limits = self
            .shared
            .markets
            .type_limits(&event.sport_slug, row.market_type.as_str())
            .overlaid(&row.settings);
        let mut states = Vec::with_capacity(selections.len());
        for s in selections {
            let (stake, payout) = exposure.get(&s.id).copied().unwrap_or_default();
            states.push(SelectionState {
                id: s.id,
                name: s.name,
                odds: Odds::from_decimal(s.odds, crate::domain::odds::ODDS_COLUMN_MAX)?,
                stake,
                payout,
                reserved_stake: Decimal::ZERO,
                reserved_payout: Decimal::ZERO,
            });
        }
        let selection_ids: Vec<SelectionId> = states.iter().map(|s| s.id).collect();
        let init = MarketInit {
            id: row.id,
            event_id: event.id,
            sport_slug: Arc::from(event.sport_slug.as_str()),
            event_start: event.start_time,
            market_type: row.market_type,
            name: row.name,
            handicap: row.handicap,
            total_points: row.total_points,
            status: row.status,
            in_play: row.in_play,
            feed_suspended: row.feed_suspended,
            limits,
            selections: states,
        };
        let cap = self.shared.markets.mailbox_capacity_messages.max(1);
        let (shared, dir) = (self.shared.clone(), Arc::downgrade(&self.dir));
        let addr = MarketActor::start_in_arbiter(self.arbiter(), move |ctx| {
            ctx.set_mailbox_capacity(cap);
            MarketActor::new(init, shared, dir)
        });
        write(&self.dir.markets).insert(row.id, (event.id, addr.clone()));
        let mut sel = write(&self.dir.selections);
        for s in selection_ids {
            sel.insert(s, row.id);
        }
        drop(sel);
        if let Some(ev) = self.running_event(event.id) {
            // One message per market start; not client-driven.
            ev.do_send(AddMarket {
                market_id: row.id,
                addr: addr.clone(),
            });
        }
        Ok(addr)
    }

    /// Rebuilds every live event and its markets (with liabilities from open bets).
    pub async fn recover(&self) -> anyhow::Result<(usize, usize)> {
        let client = self.db.get().await?;
        let _guard = self.load_lock.lock().await;
        let mut events = q::load_live_events(&**client).await?;
        // With several nodes: only the events this node owns and does not serve yet.
        events.retain(|e| self.cluster.owns(e.id) && self.running_event(e.id).is_none());
        let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
        let markets = q::load_markets_of_events(&**client, &ids).await?;
        let market_count = markets.len();
        let mut by_event: HashMap<EventId, Vec<MarketRow>> = HashMap::new();
        for m in markets {
            by_event.entry(m.event_id).or_default().push(m);
        }
        for e in events.iter() {
            self.start_event(e.clone());
        }
        // Selections and open exposure are read for many events' markets at once (a
        // query per event cost a plan over every partition of `bets` each: 17 s to start on
        // 2,805 events), at most `recover_batch_markets` markets per round trip.
        let batch_max = self.shared.markets.recover_batch_markets.max(1);
        let mut batch: Vec<(&EventRow, Vec<MarketRow>)> = Vec::new();
        let mut in_batch = 0;
        for e in events.iter() {
            let Some(ms) = by_event.remove(&e.id) else {
                continue;
            };
            if in_batch > 0 && in_batch + ms.len() > batch_max {
                self.start_markets_loaded(&client, std::mem::take(&mut batch))
                    .await?;
                in_batch = 0;
            }
            in_batch += ms.len();
            batch.push((e, ms));
        }
        if !batch.is_empty() {
            self.start_markets_loaded(&client, batch).await?;
        }
        Ok((events.len(), market_count))
    }

    /// Starts the markets of these events with their selections and the liabilities of
    /// their open bets, read in one query each.
    async fn start_markets_loaded(
        &self,
        client: &tokio_postgres::Client,
        events: Vec<(&EventRow, Vec<MarketRow>)>,
    ) -> anyhow::Result<()> {
        let ids: Vec<MarketId> = events
            .iter()
            .flat_map(|(_, ms)| ms.iter().map(|m| m.id))
            .collect();
        let mut sels: HashMap<MarketId, Vec<SelectionRow>> = HashMap::new();
        for s in q::load_selections(client, &ids).await? {
            sels.entry(s.market_id).or_default().push(s);
        }
        // In the base currency, as the markets count (exactly as each bet added it).
        let mut exposure: HashMap<SelectionId, (Decimal, Decimal)> = HashMap::new();
        for row in q::load_open_exposure(client, &ids).await? {
            let ExposureRow {
                selection_id,
                currency_code,
                stake,
                payout,
            } = row;
            let currency = self.shared.currencies.of(&currency_code);
            let e = exposure.entry(selection_id).or_default();
            e.0 += currency.to_base(stake);
            e.1 += currency.to_base(payout);
        }
        for (event, markets) in events {
            for m in markets {
                let s = sels.remove(&m.id).unwrap_or_default();
                self.start_market(event, m, s, &exposure)?;
            }
        }
        Ok(())
    }

    /// The event's actor, started from Postgres if needed; `None` when the event does not
    /// exist or is finished or cancelled (its state is then read from Postgres).
    pub async fn event(&self, id: EventId) -> Result<Option<Addr<EventActor>>, LoadError> {
        if let Some(a) = self.running_event(id) {
            if self.cluster.owns(id) {
                return Ok(Some(a));
            }
        }
        let _guard = self.load_lock.lock().await;
        if let Some(a) = self.running_event(id) {
            if self.cluster.owns(id) {
                return Ok(Some(a));
            }
        }
        let client = self.db.get().await?;
        let Some(row) = q::load_event(&**client, id).await? else {
            return Ok(None);
        };
        if row.status.is_final() {
            return Ok(None);
        }
        self.own(id).await?;
        let addr = self.start_event(row.clone());
        let started = async {
            let markets = q::load_markets_of_events(&**client, &[id]).await?;
            self.start_markets_loaded(&client, vec![(&row, markets)])
                .await
        };
        if let Err(e) = started.await {
            // Never leave an event running without its markets.
            self.dir.forget_event_and_markets(id);
            return Err(e.into());
        }
        Ok(Some(addr))
    }

    /// The stored status of an event without live state (finished or cancelled), `None`
    /// when there is no such event.
    pub async fn stored_event_status(
        &self,
        id: EventId,
    ) -> Result<Option<crate::domain::EventStatus>, LoadError> {
        let client = self.db.get().await?;
        Ok(q::load_event(&**client, id).await?.map(|row| row.status))
    }

    /// The market's actor, started (with its event) from Postgres if needed; `None` when
    /// it does not exist or is settled or voided.
    pub async fn market(&self, id: MarketId) -> Result<Option<Addr<MarketActor>>, LoadError> {
        if let Some(a) = self.owned_market(id) {
            return Ok(Some(a));
        }
        let row = {
            let client = self.db.get().await?;
            q::load_market(&**client, id).await?
        };
        let Some(row) = row else {
            return Ok(None);
        };
        if matches!(row.status, MarketStatus::Settled | MarketStatus::Voided) {
            return Ok(None);
        }
        if self.event(row.event_id).await?.is_some() {
            if let Some(a) = self.owned_market(id) {
                return Ok(Some(a));
            }
        }
        // The event is over but the market awaits settlement, or the event's start missed
        // it (a recovery under way, a failed load): start it alone.
        let _guard = self.load_lock.lock().await;
        if let Some(a) = self.owned_market(id) {
            return Ok(Some(a));
        }
        self.own(row.event_id).await?;
        let client = self.db.get().await?;
        let Some(event) = q::load_event(&**client, row.event_id).await? else {
            return Ok(None);
        };
        self.start_markets_loaded(&client, vec![(&event, vec![row])])
            .await?;
        Ok(self.running_market(id))
    }

    /// The market of a selection, started if needed (the bet path's first step).
    pub async fn market_for_selection(
        &self,
        selection_id: SelectionId,
    ) -> Result<Option<Addr<MarketActor>>, LoadError> {
        if let Some(m) = self.market_of_selection(selection_id) {
            if let Some(a) = self.owned_market(m) {
                return Ok(Some(a));
            }
        }
        let market_id = {
            let client = self.db.get().await?;
            q::market_of_selection(&**client, selection_id).await?
        };
        match market_id {
            Some(m) => self.market(m).await,
            None => Ok(None),
        }
    }
}
