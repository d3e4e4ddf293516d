//! Several engine nodes (issue 20): event ownership by lease, with a fencing epoch.
//!
//! Every event with live state is owned by one node at a time through a row of
//! `event_leases` (V70), renewed by a conditional UPDATE every `renew_interval_ms` and
//! lapsing `lease_ttl_ms` after its last renewal by the database's clock. A lapsed (or
//! free) lease may be taken by any node, which gives it a new epoch from one sequence.
//!
//! - A node serves an event only while its own clock says the lease is valid: from the
//!   moment it sent the renewal that succeeded, plus `lease_ttl_ms`, less
//!   `safety_margin_ms`. That moment is before the database's `now()` of the renewal, so
//!   the node stops before the lease lapses in the database and before anyone can take it.
//! - The ledger writer and the live-state writer commit only while the lease rows of the
//!   events they write still name this node with the epoch it holds ([`fence`]): a stale
//!   owner (paused, cut off, its clock wrong) has its commit refused.
//! - [`Cluster::route`] answers whether a request for an event is served here (taking a
//!   free or lapsed lease on the way) or by which node it must be forwarded to.
//! - The background task ([`spawn`]) renews, forgets what it lost (stopping the actors),
//!   takes lapsed leases of live events up to a fair share, and gives up events beyond it
//!   (never one in play), `events_per_round_max` per round.
//! - What a node gives up is freed as lapsed *now*, and a node above its share takes a
//!   lapsed lease on demand only once it has been lapsed for a whole `lease_ttl_ms`: so
//!   the event goes to a node below its share. (Before, the node that gave an event up got
//!   the next bet for it and took it straight back, round after round, while a node that
//!   had rejoined with none waited.) A stopping node frees its leases as lapsed long ago,
//!   for anyone to take at once.
//!
//! With `cluster.enabled = false` the node owns every event and nothing here touches the
//! database.
pub mod fence;
pub mod legs;
mod settings;
mod wallets;

pub use settings::{ClusterSettings, NODE_ID_CHARS_MAX};
pub use wallets::WalletFlight;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::domain::ids::{EventId, MarketId};

use deadpool_postgres::Pool;
use serde::Serialize;
use tokio_postgres::error::SqlState;

/// The header carrying `forward_secret` on a request one node forwards to another.
pub const FORWARD_HEADER: &str = "x-winzo-forwarded";

/// What the registry does with events this node stopped owning.
type LostHook = Box<dyn Fn(&[EventId]) + Send + Sync>;

/// One held lease, as this node sees it.
#[derive(Debug, Clone, Copy)]
struct Held {
    epoch: i64,
    /// By this node's clock: serve the event only before this instant.
    valid_until: Instant,
}

/// A table of leases and its key column (constant names, never input).
#[derive(Clone, Copy)]
struct LeaseTable {
    name: &'static str,
    key: &'static str,
    /// The key's array type in SQL.
    array: &'static str,
}

const EVENTS: LeaseTable = LeaseTable {
    name: "event_leases",
    key: "event_id",
    array: "uuid[]",
};

const WALLETS: LeaseTable = LeaseTable {
    name: "wallet_leases",
    key: "part",
    array: "int[]",
};

/// Where a request for an event is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Here (this node holds the lease, or the event has no live state to own).
    Local,
    /// At the owner, reached at `addr`.
    Remote { node_id: String, addr: String },
}

/// The lease could not be checked (the database did not answer) or its owner is unknown.
#[derive(Debug, Clone, thiserror::Error)]
#[error("event ownership unknown: {0}")]
pub struct RouteError(pub String);

impl From<deadpool_postgres::PoolError> for RouteError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        RouteError(e.to_string())
    }
}

impl From<tokio_postgres::Error> for RouteError {
    fn from(e: tokio_postgres::Error) -> Self {
        RouteError(e.to_string())
    }
}

/// Counters for `/metrics` and `GET /api/v1/cluster`.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    pub leases_acquired: AtomicU64,
    pub leases_lost: AtomicU64,
    pub leases_released: AtomicU64,
    pub forwarded: AtomicU64,
    pub forward_failed: AtomicU64,
    pub fenced_bets: AtomicU64,
    pub fenced_changes: AtomicU64,
    /// Parts of feed pushes sent to their events' owners and applied there.
    pub feed_parts_forwarded: AtomicU64,
    pub feed_messages_forwarded: AtomicU64,
    /// Wallet partitions taken (on demand or rebalancing) and given up by rebalancing.
    pub wallet_parts_acquired: AtomicU64,
    pub wallet_parts_released: AtomicU64,
    /// Legs reserved here for another node's bet and settled from what Postgres says
    /// (their confirmation never came).
    pub legs_reconciled: AtomicU64,
}

/// This node's view of the cluster; shared by the registry, the writers and the routes.
pub struct Cluster {
    pub settings: ClusterSettings,
    /// The client for calls to other nodes (kept-alive connections to each).
    http: reqwest::Client,
    db: Option<Pool>,
    held: RwLock<HashMap<EventId, Held>>,
    /// Wallet partitions held (`wallets`): this node writes their users' balances.
    parts: RwLock<HashMap<i32, Held>>,
    pub counters: ClusterCounters,
    /// Test hook (`POST /api/v1/cluster/pause-renewal`, test profile only): while set, the
    /// background task neither renews nor takes leases, as if cut off from Postgres.
    renewal_paused: AtomicBool,
    /// Test hook (`POST /api/v1/cluster/test/drop-leg-settlements`, test profile only):
    /// while set, this node never confirms or releases legs reserved at other nodes, as if
    /// it died right after its commit (or refusal).
    leg_settlements_dropped: AtomicBool,
    /// Called with the events this node stopped owning (the registry stops their actors).
    on_lost: RwLock<Option<LostHook>>,
    /// Forwarded requests in flight (bounded by `forward_concurrency_max`).
    pub forward_slots: Arc<tokio::sync::Semaphore>,
    /// One taking of leases at a time on this node (a request's and the round's), so a
    /// lease this node just took is never mistaken for an earlier one of its own.
    taking: tokio::sync::Mutex<()>,
    /// This node's fair share of events and of wallet partitions, as the last round found
    /// them (unbounded before the first round). Above its share, a node takes a lapsed
    /// lease on demand only once it has been free for a whole lease time, so that what
    /// another node gave up by rebalancing goes to a node below its share, not back.
    event_share: AtomicUsize,
    part_share: AtomicUsize,
    /// Bets in flight per wallet partition ([`wallets::WalletFlight`]).
    flights: std::sync::Mutex<HashMap<i32, usize>>,
    /// Legs reserved here for bets at other nodes, not yet confirmed or released.
    unconfirmed: std::sync::Mutex<HashMap<(MarketId, u64), legs::Unconfirmed>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A node's fair share of `total` leases among `nodes` live nodes (rounded up).
fn fair_share(total: i64, nodes: i64) -> usize {
    let nodes = nodes.max(1);
    usize::try_from((total + nodes - 1) / nodes).unwrap_or(0)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Cluster {
    /// `db`: a small pool of the cluster's own (renewals must never wait behind requests).
    pub fn new(settings: ClusterSettings, db: Option<Pool>) -> Arc<Cluster> {
        let slots = settings.forward_concurrency_max.max(1);
        Arc::new(Cluster {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap_or_default(),
            db: if settings.enabled { db } else { None },
            settings,
            held: RwLock::new(HashMap::new()),
            parts: RwLock::new(HashMap::new()),
            counters: ClusterCounters::default(),
            renewal_paused: AtomicBool::new(false),
            leg_settlements_dropped: AtomicBool::new(false),
            on_lost: RwLock::new(None),
            forward_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            taking: tokio::sync::Mutex::new(()),
            event_share: AtomicUsize::new(usize::MAX),
            part_share: AtomicUsize::new(usize::MAX),
            flights: std::sync::Mutex::new(HashMap::new()),
            unconfirmed: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The HTTP client for calls to other nodes (forwarded requests, remote legs).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// One node owning everything (no leases).
    pub fn single() -> Arc<Cluster> {
        Cluster::new(
            ClusterSettings {
                enabled: false,
                node_id: "single".into(),
                advertise_addr: String::new(),
                lease_ttl_ms: 0,
                renew_interval_ms: 0,
                safety_margin_ms: 0,
                events_per_round_max: 0,
                forward_secret: String::new(),
                forward_concurrency_max: 1,
                forward_timeout_ms: 0,
                wallet_partitions: 1,
                fenced_idle_timeout_ms: 0,
                wallet_parts_per_round_max: 0,
                leg_confirm_deadline_ms: 0,
                unconfirmed_legs_max: 0,
            },
            None,
        )
    }

    pub fn enabled(&self) -> bool {
        self.db.is_some()
    }

    pub fn node_id(&self) -> &str {
        &self.settings.node_id
    }

    /// Registers what to do with events this node stopped owning.
    pub fn on_lost(&self, f: impl Fn(&[EventId]) + Send + Sync + 'static) {
        *write(&self.on_lost) = Some(Box::new(f));
    }

    fn validity(&self) -> Duration {
        Duration::from_millis(
            self.settings
                .lease_ttl_ms
                .saturating_sub(self.settings.safety_margin_ms),
        )
    }

    /// The epoch this node holds for `event_id`, if its lease is valid now by this node's
    /// clock (always `Some(0)` when the cluster is off).
    pub fn epoch_of(&self, event_id: EventId) -> Option<i64> {
        if !self.enabled() {
            return Some(0);
        }
        let held = read(&self.held).get(&event_id).copied()?;
        (Instant::now() < held.valid_until).then_some(held.epoch)
    }

    /// True when this node may serve `event_id` now.
    pub fn owns(&self, event_id: EventId) -> bool {
        self.epoch_of(event_id).is_some()
    }

    /// Events held now, with their epochs.
    pub fn held(&self) -> Vec<(EventId, i64)> {
        let now = Instant::now();
        read(&self.held)
            .iter()
            .filter(|(_, h)| now < h.valid_until)
            .map(|(id, h)| (*id, h.epoch))
            .collect()
    }

    /// How many events are held now (`held().len()` without the list).
    fn events_held(&self) -> usize {
        let now = Instant::now();
        read(&self.held)
            .values()
            .filter(|h| now < h.valid_until)
            .count()
    }

    pub fn pause_renewal(&self, paused: bool) {
        self.renewal_paused.store(paused, Ordering::Release);
    }

    pub fn drop_leg_settlements(&self, dropped: bool) {
        self.leg_settlements_dropped
            .store(dropped, Ordering::Release);
    }

    pub fn leg_settlements_dropped(&self) -> bool {
        self.leg_settlements_dropped.load(Ordering::Acquire)
    }

    pub fn renewal_paused(&self) -> bool {
        self.renewal_paused.load(Ordering::Acquire)
    }

    fn ttl_ms(&self) -> f64 {
        self.settings.lease_ttl_ms as f64
    }

    /// Takes the lease of `event_id` if it is free or lapsed; else names its owner.
    /// `Local` also for an event that does not exist (the local answer is a 404).
    pub async fn route(&self, event_id: EventId) -> Result<Route, RouteError> {
        let Some(pool) = &self.db else {
            return Ok(Route::Local);
        };
        if self.owns(event_id) {
            return Ok(Route::Local);
        }
        if self.renewal_paused() {
            return Err(RouteError("lease renewal paused".into()));
        }
        // A node cut off from Postgres answers within this instead of hanging its callers.
        let wait = self.validity().max(Duration::from_millis(100));
        tokio::time::timeout(wait, self.take_or_find(pool, event_id))
            .await
            .map_err(|_| RouteError("the lease table did not answer in time".into()))?
    }

    async fn take_or_find(&self, pool: &Pool, event_id: EventId) -> Result<Route, RouteError> {
        let client = pool.get().await?;
        // Most often another node holds a valid lease: named without taking the lock that
        // serializes takings (a bet with legs elsewhere asks this for every such leg).
        if let Some(row) = self.owner_row(&client, EVENTS, &event_id, true).await? {
            return self.remote_of(Some(row));
        }
        let _taking = self.taking.lock().await;
        if self.owns(event_id) {
            return Ok(Route::Local);
        }
        let patient = self.events_held() > self.event_share.load(Ordering::Relaxed);
        let sent = Instant::now();
        match self.try_take(&client, EVENTS, &event_id, patient).await {
            Ok(Some(epoch)) => {
                self.record(event_id, epoch, sent);
                self.counters
                    .leases_acquired
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(%event_id, epoch, "event lease taken");
                return Ok(Route::Local);
            }
            Ok(None) => {}
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                return Ok(Route::Local);
            }
            Err(e) => return Err(e.into()),
        }
        if patient {
            return self.handed_over(&client, EVENTS, &event_id).await;
        }
        let owner = self.owner_row(&client, EVENTS, &event_id, false).await?;
        self.remote_of(owner)
    }

    /// The answer of a node above its share that left a recently freed lease of `key` to
    /// the others: its new owner if one took it meanwhile, else "being handed over".
    async fn handed_over(
        &self,
        client: &tokio_postgres::Client,
        table: LeaseTable,
        key: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Route, RouteError> {
        match self.owner_row(client, table, key, true).await? {
            Some(row) => self.remote_of(Some(row)),
            None => Err(RouteError(format!(
                "the lease ({}) is being handed over to a node below its fair share; \
                 try again shortly",
                table.name
            ))),
        }
    }

    /// The lease row of `key` in `table` (`node_id`, `advertise_addr`): with `others_valid`,
    /// only if another node holds it and it has not lapsed.
    async fn owner_row(
        &self,
        client: &tokio_postgres::Client,
        table: LeaseTable,
        key: &(dyn tokio_postgres::types::ToSql + Sync),
        others_valid: bool,
    ) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
        let (t, k) = (table.name, table.key);
        let sql = format!(
            "SELECT l.node_id, n.advertise_addr FROM {t} l
             LEFT JOIN cluster_nodes n ON n.node_id = l.node_id
             WHERE l.{k} = $1 AND (NOT $3 OR (l.expires_at > now() AND l.node_id <> $2))"
        );
        client
            .query_opt(&sql, &[key, &self.settings.node_id, &others_valid])
            .await
    }

    /// Takes the lease of `key` in `table` if it is free or lapsed: its new epoch.
    /// `patient` (this node is above its share): a lapsed lease only once it has been
    /// lapsed for a whole lease time; a row never taken, or freed by a stopping node, at
    /// once.
    async fn try_take(
        &self,
        client: &tokio_postgres::Client,
        table: LeaseTable,
        key: &(dyn tokio_postgres::types::ToSql + Sync),
        patient: bool,
    ) -> Result<Option<i64>, tokio_postgres::Error> {
        let (t, k) = (table.name, table.key);
        let sql = format!(
            "INSERT INTO {t} ({k}, node_id, epoch, expires_at)
             VALUES ($1, $2, nextval('event_lease_epoch'),
                     now() + $3::float8 * interval '1 millisecond')
             ON CONFLICT ({k}) DO UPDATE
                SET node_id = EXCLUDED.node_id, epoch = EXCLUDED.epoch,
                    acquired_at = now(), expires_at = EXCLUDED.expires_at
              WHERE {t}.expires_at < now() - $4::float8 * interval '1 millisecond'
             RETURNING epoch"
        );
        let wait_ms = if patient { self.ttl_ms() } else { 0.0 };
        Ok(client
            .query_opt(
                &sql,
                &[key, &self.settings.node_id, &self.ttl_ms(), &wait_ms],
            )
            .await?
            .map(|r| r.get(0)))
    }

    /// The owner named by a lease row (`node_id`, `advertise_addr`) another node won.
    fn remote_of(&self, owner: Option<tokio_postgres::Row>) -> Result<Route, RouteError> {
        match owner {
            Some(row) => {
                let node_id: String = row.get(0);
                let addr: Option<String> = row.get(1);
                if node_id == self.settings.node_id {
                    // Ours in the database but not valid here (a restart under the same
                    // name within the lease time): wait until it lapses.
                    return Err(RouteError(
                        "this node's previous lease has not lapsed yet".into(),
                    ));
                }
                let addr = addr.ok_or_else(|| RouteError(format!("node {node_id} unknown")))?;
                Ok(Route::Remote { node_id, addr })
            }
            None => Err(RouteError("lease vanished".into())),
        }
    }

    fn record(&self, event_id: EventId, epoch: i64, sent: Instant) {
        write(&self.held).insert(
            event_id,
            Held {
                epoch,
                valid_until: sent + self.validity(),
            },
        );
    }

    /// Forgets leases and tells the registry (its actors stop).
    fn lose(&self, events: &[EventId], released: bool) {
        if events.is_empty() {
            return;
        }
        {
            let mut held = write(&self.held);
            for e in events {
                held.remove(e);
            }
        }
        let counter = if released {
            &self.counters.leases_released
        } else {
            &self.counters.leases_lost
        };
        counter.fetch_add(events.len() as u64, Ordering::Relaxed);
        if let Some(f) = read(&self.on_lost).as_ref() {
            f(events);
        }
    }

    /// Forgets leases that lapsed by this node's clock (before anyone else may take them).
    pub fn expire_local(&self) -> Vec<EventId> {
        let now = Instant::now();
        write(&self.parts).retain(|_, h| now < h.valid_until);
        let lapsed: Vec<EventId> = read(&self.held)
            .iter()
            .filter(|(_, h)| now >= h.valid_until)
            .map(|(id, _)| *id)
            .collect();
        if !lapsed.is_empty() {
            tracing::warn!(
                events = lapsed.len(),
                "event leases lapsed by this node's clock; their actors stop"
            );
            self.lose(&lapsed, false);
        }
        lapsed
    }

    /// One round: heartbeat, renewal, local expiry, then taking or giving up events.
    /// Returns the events newly taken (the caller recovers their live state).
    pub async fn round(&self) -> Result<Vec<EventId>, RouteError> {
        let Some(pool) = &self.db else {
            return Ok(Vec::new());
        };
        if self.renewal_paused() {
            self.expire_local();
            return Ok(Vec::new());
        }
        let client = pool.get().await?;
        let sent = Instant::now();
        self.heartbeat(&client).await?;
        self.renew_events(&client, sent).await?;
        self.renew_parts(&client, sent).await?;
        self.expire_local();
        self.rebalance(&client).await
    }

    /// Renews these `(key, epoch)` leases of `table` still naming this node: those renewed.
    async fn renew_rows<K>(
        &self,
        client: &tokio_postgres::Client,
        table: LeaseTable,
        mine: &[(K, i64)],
    ) -> Result<HashMap<K, i64>, RouteError>
    where
        K: tokio_postgres::types::ToSql
            + for<'a> tokio_postgres::types::FromSql<'a>
            + Sync
            + Copy
            + Eq
            + std::hash::Hash,
    {
        let (keys, epochs): (Vec<K>, Vec<i64>) = mine.iter().copied().unzip();
        let (t, k, a) = (table.name, table.key, table.array);
        let sql = format!(
            "UPDATE {t} l
                SET expires_at = now() + $3::float8 * interval '1 millisecond'
               FROM UNNEST($1::{a}, $2::bigint[]) AS u(k, epoch)
              WHERE l.{k} = u.k AND l.epoch = u.epoch AND l.node_id = $4
                AND l.expires_at > now()
              RETURNING l.{k}, l.epoch"
        );
        Ok(client
            .query(
                &sql,
                &[&keys, &epochs, &self.ttl_ms(), &self.settings.node_id],
            )
            .await?
            .iter()
            .map(|r| (r.get::<_, K>(0), r.get::<_, i64>(1)))
            .collect())
    }

    /// Says this node is alive (and where it is reached) until `lease_ttl_ms` from now.
    async fn heartbeat(&self, client: &tokio_postgres::Client) -> Result<(), RouteError> {
        client
            .execute(
                "INSERT INTO cluster_nodes (node_id, advertise_addr, expires_at)
                 VALUES ($1, $2, now() + $3::float8 * interval '1 millisecond')
                 ON CONFLICT (node_id) DO UPDATE
                    SET advertise_addr = EXCLUDED.advertise_addr, heartbeat_at = now(),
                        expires_at = EXCLUDED.expires_at",
                &[
                    &self.settings.node_id,
                    &self.settings.advertise_addr,
                    &self.ttl_ms(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Renews the event leases held (`sent`: when the round started); those the database
    /// no longer names this node for are lost (their actors stop).
    async fn renew_events(
        &self,
        client: &tokio_postgres::Client,
        sent: Instant,
    ) -> Result<(), RouteError> {
        let mine: Vec<(EventId, i64)> = read(&self.held)
            .iter()
            .map(|(id, h)| (*id, h.epoch))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let kept = self.renew_rows(client, EVENTS, &mine).await?;
        let mut lost = Vec::new();
        {
            let mut held = write(&self.held);
            for (id, epoch) in &mine {
                match held.get_mut(id) {
                    // The database confirmed the lease as of a moment after `sent`.
                    Some(h) if kept.get(id) == Some(epoch) => {
                        h.valid_until = sent + self.validity();
                    }
                    // Taken again (a new epoch) while this round ran.
                    Some(h) if h.epoch != *epoch => {}
                    _ => lost.push(*id),
                }
            }
        }
        if !lost.is_empty() {
            tracing::warn!(events = lost.len(), "event leases lost");
            self.lose(&lost, false);
        }
        Ok(())
    }

    /// Takes lapsed or free leases of live events up to this node's fair share, or gives
    /// up events beyond it (never one in play), at most `events_per_round_max` either way.
    async fn rebalance(&self, client: &tokio_postgres::Client) -> Result<Vec<EventId>, RouteError> {
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM events WHERE status NOT IN ('finished', 'cancelled')),
                        (SELECT count(*) FROM cluster_nodes WHERE expires_at > now())",
                &[],
            )
            .await?;
        let (live, nodes): (i64, i64) = (row.get(0), row.get(1));
        self.rebalance_parts(client, nodes).await?;
        let share = fair_share(live, nodes);
        self.event_share.store(share, Ordering::Relaxed);
        let held = self.events_held();
        let per_round = self.settings.events_per_round_max.max(1);
        if held < share {
            return self.take_free(client, (share - held).min(per_round)).await;
        }
        // One event of slack, so two nodes never hand one event back and forth.
        if held > share + 1 {
            self.give_up(client, (held - share - 1).min(per_round))
                .await?;
        }
        Ok(Vec::new())
    }

    /// Takes up to `want` free or lapsed leases of live events (the earliest first).
    async fn take_free(
        &self,
        client: &tokio_postgres::Client,
        want: usize,
    ) -> Result<Vec<EventId>, RouteError> {
        let want = i64::try_from(want).unwrap_or(0);
        let _taking = self.taking.lock().await;
        let sent = Instant::now();
        let free = "SELECT e.id FROM events e
                    LEFT JOIN event_leases l ON l.event_id = e.id
                    WHERE e.status NOT IN ('finished', 'cancelled')
                      AND (l.event_id IS NULL OR l.expires_at < now())
                    ORDER BY e.start_time LIMIT $1";
        let rows = self.take_rows(client, EVENTS, free, &[&want]).await?;
        let mut taken = Vec::with_capacity(rows.len());
        for r in rows {
            let (id, epoch): (EventId, i64) = (r.get(0), r.get(1));
            self.record(id, epoch, sent);
            taken.push(id);
        }
        if !taken.is_empty() {
            self.counters
                .leases_acquired
                .fetch_add(taken.len() as u64, Ordering::Relaxed);
            tracing::info!(events = taken.len(), "event leases taken");
        }
        Ok(taken)
    }

    /// Takes the leases of `table` whose keys the query `free` selects (it may use `$1` and
    /// `$4` on: `extra` are those parameters): the rows `(key, epoch)` taken.
    async fn take_rows(
        &self,
        client: &tokio_postgres::Client,
        table: LeaseTable,
        free: &str,
        extra: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let (t, k) = (table.name, table.key);
        let sql = format!(
            "WITH free AS ({free})
             INSERT INTO {t} ({k}, node_id, epoch, expires_at)
             SELECT * , $2, nextval('event_lease_epoch'),
                    now() + $3::float8 * interval '1 millisecond' FROM free
             ON CONFLICT ({k}) DO UPDATE
                SET node_id = EXCLUDED.node_id, epoch = EXCLUDED.epoch,
                    acquired_at = now(), expires_at = EXCLUDED.expires_at
              WHERE {t}.expires_at < now()
             RETURNING {k}, epoch"
        );
        let (first, rest) = extra
            .split_first()
            .map_or((None, &[][..]), |(f, r)| (Some(*f), r));
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
        params.extend(first);
        params.push(&self.settings.node_id);
        let ttl = self.ttl_ms();
        params.push(&ttl);
        params.extend_from_slice(rest);
        client.query(&sql, &params).await
    }

    /// Gives up to `give` events that are not live (nothing in play): this node stops
    /// serving them, then frees their rows for the others to take.
    async fn give_up(
        &self,
        client: &tokio_postgres::Client,
        give: usize,
    ) -> Result<(), RouteError> {
        let (ids, epochs): (Vec<EventId>, Vec<i64>) = self.held().into_iter().unzip();
        let movable = client
            .query(
                "SELECT u.id, u.epoch FROM UNNEST($1::uuid[], $2::bigint[]) AS u(id, epoch)
                 JOIN events e ON e.id = u.id
                 WHERE e.status IN ('scheduled', 'postponed', 'suspended')
                   AND NOT EXISTS (SELECT 1 FROM markets m
                                   WHERE m.event_id = u.id AND m.in_play)
                 ORDER BY e.start_time DESC LIMIT $3",
                &[&ids, &epochs, &i64::try_from(give).unwrap_or(0)],
            )
            .await?;
        let (ids, epochs): (Vec<EventId>, Vec<i64>) = movable
            .iter()
            .map(|r| (r.get::<_, EventId>(0), r.get::<_, i64>(1)))
            .unzip();
        if ids.is_empty() {
            return Ok(());
        }
        // Stop serving first (and fence our own writers), then free the rows (as lapsed
        // now: `release_events`).
        self.lose(&ids, true);
        self.release_events(client, &ids, &epochs, true).await?;
        tracing::info!(events = ids.len(), "event leases given up (rebalancing)");
        Ok(())
    }

    /// Frees these event leases' rows (the events already stopped here): for a stopping
    /// node as lapsed long ago (any node takes them at once), when `rebalancing` as lapsed
    /// now (nodes above their share, this one too, leave them to the others for a lease
    /// time: `try_take`). The wallet partitions' twin is `release_parts`.
    async fn release_events(
        &self,
        client: &tokio_postgres::Client,
        ids: &[EventId],
        epochs: &[i64],
        rebalancing: bool,
    ) -> Result<u64, tokio_postgres::Error> {
        client
            .execute(
                "UPDATE event_leases l
                    SET expires_at = CASE WHEN $4 THEN now() ELSE '-infinity' END
                   FROM UNNEST($1::uuid[], $2::bigint[]) AS u(id, epoch)
                  WHERE l.event_id = u.id AND l.epoch = u.epoch AND l.node_id = $3",
                &[&ids, &epochs, &self.settings.node_id, &rebalancing],
            )
            .await
    }

    /// Frees every lease this node holds (graceful shutdown: the others take them at once).
    pub async fn release_all(&self) {
        let Some(pool) = &self.db else { return };
        let (ids, epochs): (Vec<EventId>, Vec<i64>) = self.held().into_iter().unzip();
        self.lose(&ids, true);
        let parts: Vec<(i32, i64)> = write(&self.parts)
            .drain()
            .map(|(p, h)| (p, h.epoch))
            .collect();
        if let Ok(client) = pool.get().await {
            self.release_parts(&client, &parts, false).await;
            let _ = self.release_events(&client, &ids, &epochs, false).await;
            let _ = client
                .execute(
                    "UPDATE cluster_nodes SET expires_at = now() WHERE node_id = $1",
                    &[&self.settings.node_id],
                )
                .await;
        }
    }

    /// This node's counters as `GET /api/v1/cluster` shows them.
    fn counters_view(&self) -> CountersView {
        CountersView {
            leases_acquired: self.counters.leases_acquired.load(Ordering::Relaxed),
            leases_lost: self.counters.leases_lost.load(Ordering::Relaxed),
            leases_released: self.counters.leases_released.load(Ordering::Relaxed),
            forwarded: self.counters.forwarded.load(Ordering::Relaxed),
            forward_failed: self.counters.forward_failed.load(Ordering::Relaxed),
            fenced_bets: self.counters.fenced_bets.load(Ordering::Relaxed),
            fenced_changes: self.counters.fenced_changes.load(Ordering::Relaxed),
            feed_parts_forwarded: self.counters.feed_parts_forwarded.load(Ordering::Relaxed),
            feed_messages_forwarded: self
                .counters
                .feed_messages_forwarded
                .load(Ordering::Relaxed),
            wallet_parts_acquired: self.counters.wallet_parts_acquired.load(Ordering::Relaxed),
            wallet_parts_released: self.counters.wallet_parts_released.load(Ordering::Relaxed),
            legs_reconciled: self.counters.legs_reconciled.load(Ordering::Relaxed),
            unconfirmed_legs: self.unconfirmed_len() as u64,
        }
    }

    /// The nodes and leases as `GET /api/v1/cluster` shows them.
    pub async fn view(&self) -> Result<ClusterView, RouteError> {
        let counters = self.counters_view();
        let Some(pool) = &self.db else {
            return Ok(ClusterView {
                enabled: false,
                node_id: self.settings.node_id.clone(),
                lease_ttl_ms: self.settings.lease_ttl_ms,
                nodes: Vec::new(),
                leases: Vec::new(),
                counters,
            });
        };
        let client = pool.get().await?;
        let nodes = client
            .query(
                "SELECT n.node_id, n.advertise_addr, n.heartbeat_at, n.expires_at > now(),
                        (SELECT count(*) FROM event_leases l
                          WHERE l.node_id = n.node_id AND l.expires_at > now()),
                        (SELECT count(*) FROM wallet_leases w
                          WHERE w.node_id = n.node_id AND w.expires_at > now())
                 FROM cluster_nodes n ORDER BY n.node_id LIMIT 1000",
                &[],
            )
            .await?
            .iter()
            .map(|r| NodeView {
                node_id: r.get(0),
                advertise_addr: r.get(1),
                heartbeat_at: r.get(2),
                alive: r.get(3),
                events_owned: r.get(4),
                wallet_partitions_owned: r.get(5),
            })
            .collect();
        let leases = client
            .query(
                "SELECT l.event_id, l.node_id, l.epoch, l.expires_at, l.expires_at > now()
                 FROM event_leases l JOIN events e ON e.id = l.event_id
                 WHERE e.status NOT IN ('finished', 'cancelled')
                 ORDER BY l.event_id LIMIT 10000",
                &[],
            )
            .await?
            .iter()
            .map(|r| LeaseView {
                event_id: r.get(0),
                node_id: r.get(1),
                epoch: r.get(2),
                expires_at: r.get(3),
                valid: r.get(4),
            })
            .collect();
        Ok(ClusterView {
            enabled: true,
            node_id: self.settings.node_id.clone(),
            lease_ttl_ms: self.settings.lease_ttl_ms,
            nodes,
            leases,
            counters,
        })
    }
}

/// `GET /api/v1/cluster`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    pub enabled: bool,
    /// The node that answered.
    pub node_id: String,
    pub lease_ttl_ms: u64,
    pub nodes: Vec<NodeView>,
    /// Leases of live events (at most 10,000).
    pub leases: Vec<LeaseView>,
    /// The answering node's counters.
    pub counters: CountersView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeView {
    pub node_id: String,
    pub advertise_addr: String,
    pub heartbeat_at: chrono::DateTime<chrono::Utc>,
    pub alive: bool,
    pub events_owned: i64,
    /// Wallet partitions whose users' balances this node writes.
    pub wallet_partitions_owned: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeaseView {
    #[schema(value_type = uuid::Uuid)]
    pub event_id: EventId,
    pub node_id: String,
    pub epoch: i64,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub valid: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CountersView {
    pub leases_acquired: u64,
    pub leases_lost: u64,
    pub leases_released: u64,
    pub forwarded: u64,
    pub forward_failed: u64,
    pub fenced_bets: u64,
    pub fenced_changes: u64,
    /// Parts of feed pushes forwarded to their events' owners (and their messages).
    pub feed_parts_forwarded: u64,
    pub feed_messages_forwarded: u64,
    /// Wallet partitions taken here (on a bet's demand or rebalancing), and given up here
    /// by rebalancing.
    pub wallet_parts_acquired: u64,
    pub wallet_parts_released: u64,
    /// Legs reserved here for another node's bet, settled from Postgres after their
    /// confirmation did not come; and those still awaiting one.
    pub legs_reconciled: u64,
    pub unconfirmed_legs: u64,
}

/// Runs [`Cluster::round`] every `renew_interval_ms`; events taken are handed to
/// `recover` (the registry starts their actors from Postgres).
pub fn spawn<F, Fut>(cluster: Arc<Cluster>, recover: F)
where
    F: Fn(Vec<EventId>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    if !cluster.enabled() {
        return;
    }
    let every = Duration::from_millis(cluster.settings.renew_interval_ms.max(10));
    let round_max = (every * 2).max(cluster.validity() / 2);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // A round that hangs (Postgres unreachable) must not keep lapsed leases alive.
            match tokio::time::timeout(round_max, cluster.round()).await {
                Ok(Ok(taken)) if !taken.is_empty() => recover(taken).await,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cluster round failed");
                    cluster.expire_local();
                }
                Err(_) => {
                    tracing::warn!("cluster round timed out");
                    cluster.expire_local();
                }
            }
        }
    });
}

impl Cluster {
    /// This node's figures in Prometheus text format (appended to `/metrics`).
    pub fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let gauges = self.gauges();
        let counters = self.counter_values();
        let all = gauges
            .iter()
            .map(|g| ("gauge", g))
            .chain(counters.iter().map(|c| ("counter", c)));
        for (kind, (name, help, value)) in all {
            let _ = writeln!(out, "# HELP winzo_cluster_{name} {help}");
            let _ = writeln!(out, "# TYPE winzo_cluster_{name} {kind}");
            let _ = writeln!(out, "winzo_cluster_{name} {value}");
        }
        out
    }

    /// (name, help, value) of this node's gauges.
    fn gauges(&self) -> Vec<(&'static str, &'static str, u64)> {
        let held = self.held();
        let max_epoch = held.iter().map(|(_, e)| *e).max().unwrap_or(0);
        vec![
            (
                "enabled",
                "1 when this node shares its events with others by lease",
                u64::from(self.enabled()),
            ),
            (
                "leases_held",
                "Event leases this node holds and may serve now",
                held.len() as u64,
            ),
            (
                "wallet_partitions_held",
                "Wallet partitions this node holds (it writes their users' balances)",
                self.parts_held() as u64,
            ),
            (
                "epoch_max",
                "Highest fencing epoch among this node's leases",
                u64::try_from(max_epoch).unwrap_or(0),
            ),
            (
                "unconfirmed_legs",
                "Legs reserved here for another node's bet, awaiting confirmation",
                self.unconfirmed_len() as u64,
            ),
        ]
    }

    /// (name, help, value) of this node's counters.
    fn counter_values(&self) -> Vec<(&'static str, &'static str, u64)> {
        let c = &self.counters;
        [
            (
                "leases_acquired_total",
                "Event leases taken",
                &c.leases_acquired,
            ),
            (
                "leases_lost_total",
                "Event leases lost (lapsed or taken by another node)",
                &c.leases_lost,
            ),
            (
                "leases_released_total",
                "Event leases given up (rebalancing, shutdown)",
                &c.leases_released,
            ),
            (
                "forwarded_total",
                "Requests forwarded to the event's owner and answered",
                &c.forwarded,
            ),
            (
                "forward_failed_total",
                "Requests that could not be forwarded (503)",
                &c.forward_failed,
            ),
            (
                "fenced_bets_total",
                "Bets refused at commit by the lease fence",
                &c.fenced_bets,
            ),
            (
                "fenced_changes_total",
                "Live-state changes refused by the lease fence",
                &c.fenced_changes,
            ),
            (
                "feed_parts_forwarded_total",
                "Parts of feed pushes applied by their events' owners",
                &c.feed_parts_forwarded,
            ),
            (
                "feed_messages_forwarded_total",
                "Feed messages applied by their events' owners",
                &c.feed_messages_forwarded,
            ),
            (
                "wallet_parts_acquired_total",
                "Wallet partitions taken (on a bet's demand or rebalancing)",
                &c.wallet_parts_acquired,
            ),
            (
                "wallet_parts_released_total",
                "Wallet partitions given up by rebalancing",
                &c.wallet_parts_released,
            ),
            (
                "legs_reconciled_total",
                "Legs reserved for another node's bet, settled from Postgres",
                &c.legs_reconciled,
            ),
        ]
        .into_iter()
        .map(|(name, help, v)| (name, help, v.load(Ordering::Relaxed)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn a_fair_share_rounds_up_and_survives_no_live_node() {
        assert_eq!(fair_share(9, 2), 5);
        assert_eq!(fair_share(9, 3), 3);
        assert_eq!(fair_share(10, 3), 4);
        assert_eq!(fair_share(0, 3), 0);
        // No live node counted yet (this one's heartbeat not in): all of them.
        assert_eq!(fair_share(9, 0), 9);
    }
}
