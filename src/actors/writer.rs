//! The batching writer of live state: every acknowledged change of odds, market and event
//! status, in-play flag, score and settings reaches Postgres through here.
//!
//! Actors hand it changes (after reserving room in its bounded queue *before* they change
//! their memory, so a full queue refuses the change with 503 `busy` and leaves live state
//! untouched). The writer closes a batch at `batch_ops_max` changes or `batch_age_ms` after
//! its first, and writes it in one transaction; each caller gets its `Durable` answer only
//! after that commit, so a trader's 200 means the change survives a `kill -9`.
//!
//! A batch is cut into runs of consecutive operations by the same actor (trader); each run
//! first sets `winzo.actor_id` / `winzo.client_ip` for the audit triggers, then writes its
//! price changes as one `UNNEST` update (last price per selection wins) and its other
//! changes one statement each. Every change is an absolute value (a price, a status), so
//! re-writing a batch after a failure is harmless: a failed batch is retried until it
//! commits, while its callers (who time out with 503) learn nothing was promised. After
//! `live_writer.retries_max` failures in a row the writer says so loudly (an error log) and
//! marks itself unhealthy, which takes `/readyz` down until a batch commits again.
use std::collections::HashMap;
use std::time::Duration;

use deadpool_postgres::Pool;
use rust_decimal::Decimal;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::domain::ids::{EventId, MarketId, SelectionId};

use super::LiveWriterSettings;
// The changes it writes are the database layer's own types (`db::markets`).
pub use crate::db::markets::{AuditActor, Change, FeedSeqMark};
use crate::domain::{EventStatus, MarketStatus};

/// A caller's changes and who made them; `done` hears once they are committed.
pub struct WriteOp {
    pub actor: AuditActor,
    pub changes: Vec<Change>,
    pub done: Option<oneshot::Sender<()>>,
}

/// Resolves once the change is committed (dropped unanswered if the engine stops first).
pub type Durable = oneshot::Receiver<()>;

/// A change was not confirmed durable within the caller's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the change could not be made durable in time")]
pub struct NotDurable;

/// Waits (bounded) until a change is committed.
pub async fn durable(d: Durable, timeout: Duration) -> Result<(), NotDurable> {
    match tokio::time::timeout(timeout, d).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(NotDurable),
    }
}

/// The writer's queue is full: the change was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterBusy;

/// Cheap to clone; held by every actor.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<WriteOp>,
    /// False while batches have failed `retries_max` times in a row (readiness).
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// True while a batch taken from the queue is being written (the shutdown drain).
    writing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Changes refused because the queue was full (for `/metrics`).
    busy_total: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Room in the writer's queue, taken before live state changes.
pub struct WriteSlot<'a> {
    permit: mpsc::Permit<'a, WriteOp>,
}

impl WriterHandle {
    /// False while the writer's batches keep failing (see the module documentation).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Nothing queued and no batch being written (the shutdown drain).
    pub fn is_idle(&self) -> bool {
        !self.writing.load(std::sync::atomic::Ordering::Acquire)
            && self.tx.capacity() == self.tx.max_capacity()
    }

    /// A handle over a queue the caller drains itself (benchmarks, tests of actors alone).
    pub fn from_sender(tx: mpsc::Sender<WriteOp>) -> WriterHandle {
        WriterHandle {
            tx,
            healthy: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            writing: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            busy_total: Default::default(),
        }
    }

    /// Takes a place in the queue, or `WriterBusy` when it is full (or the writer stopped).
    pub fn reserve(&self) -> Result<WriteSlot<'_>, WriterBusy> {
        self.tx
            .try_reserve()
            .map(|permit| WriteSlot { permit })
            .map_err(|_| {
                self.busy_total
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                WriterBusy
            })
    }

    /// Changes refused so far because the queue was full (for `/metrics`).
    pub fn busy_total(&self) -> u64 {
        self.busy_total.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Changes waiting in the queue now, and the queue's bound (for `/metrics`).
    pub fn depth(&self) -> (usize, usize) {
        let max = self.tx.max_capacity();
        (max - self.tx.capacity(), max)
    }
}

impl WriteSlot<'_> {
    /// Hands the changes over; the answer resolves once they are durable.
    pub fn send(self, actor: AuditActor, changes: Vec<Change>) -> Durable {
        let (done, durable) = oneshot::channel();
        self.permit.send(WriteOp {
            actor,
            changes,
            done: Some(done),
        });
        durable
    }
}

/// Starts the writer task on the current runtime.
pub fn spawn(pool: Pool, settings: LiveWriterSettings) -> WriterHandle {
    spawn_fenced(pool, settings, crate::cluster::Cluster::single())
}

/// [`spawn`] with the fence of a node among several: a change is written only while this
/// node holds the lease of its event (`cluster::fence`); the others are dropped unwritten
/// (their callers hear nothing was made durable).
pub fn spawn_fenced(
    pool: Pool,
    settings: LiveWriterSettings,
    cluster: std::sync::Arc<crate::cluster::Cluster>,
) -> WriterHandle {
    let (tx, rx) = mpsc::channel(settings.queue_ops_max.max(1));
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(run(
        pool,
        settings,
        rx,
        healthy.clone(),
        writing.clone(),
        cluster,
    ));
    WriterHandle {
        tx,
        healthy,
        writing,
        busy_total: Default::default(),
    }
}

async fn run(
    pool: Pool,
    settings: LiveWriterSettings,
    mut rx: mpsc::Receiver<WriteOp>,
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
    writing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cluster: std::sync::Arc<crate::cluster::Cluster>,
) {
    use std::sync::atomic::Ordering;
    let batch_max = settings.batch_ops_max.max(1);
    let age = Duration::from_millis(settings.batch_age_ms);
    let retry = Duration::from_millis(settings.retry_interval_ms.max(1));
    let mut batch: Vec<WriteOp> = Vec::with_capacity(batch_max);
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        writing.store(true, Ordering::Release);
        batch.push(first);
        let deadline = tokio::time::Instant::now() + age;
        while batch.len() < batch_max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(op)) => batch.push(op),
                Ok(None) | Err(_) => break,
            }
        }
        let mut failures: u32 = 0;
        loop {
            match write_batch(&pool, &cluster, &mut batch).await {
                Ok(()) => break,
                Err(err) => {
                    failures = failures.saturating_add(1);
                    if failures == settings.retries_max.max(1) {
                        healthy.store(false, Ordering::Release);
                        tracing::error!(error = %format!("{err:#}"), ops = batch.len(), failures,
                            "live-state writer cannot commit; the engine is not ready until it does");
                    } else {
                        tracing::warn!(error = %format!("{err:#}"), ops = batch.len(), "live-state batch failed; retrying");
                    }
                    tokio::time::sleep(retry).await;
                }
            }
        }
        if !healthy.swap(true, Ordering::AcqRel) {
            tracing::info!("live-state writer commits again");
        }
        for op in batch.drain(..) {
            if let Some(done) = op.done {
                let _ = done.send(());
            }
        }
        writing.store(false, Ordering::Release);
    }
}

async fn write_batch(
    pool: &Pool,
    cluster: &crate::cluster::Cluster,
    batch: &mut Vec<WriteOp>,
) -> anyhow::Result<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if cluster.enabled() {
        fence_ops(cluster, &tx, batch).await?;
    }
    let batch = &batch[..];
    lock_closing(&tx, batch).await?;
    let mut start = 0;
    while start < batch.len() {
        let actor = &batch[start].actor;
        let end = batch[start..]
            .iter()
            .position(|op| &op.actor != actor)
            .map_or(batch.len(), |n| start + n);
        crate::db::markets::set_audit_context(&*tx, actor).await?;
        write_run(&tx, &batch[start..end]).await?;
        start = end;
    }
    tx.commit().await?;
    Ok(())
}

/// Drops (unanswered: not durable) the operations touching an event this node no longer
/// owns; the rest are written under the share locks the fence took.
async fn fence_ops(
    cluster: &crate::cluster::Cluster,
    tx: &tokio_postgres::Transaction<'_>,
    batch: &mut Vec<WriteOp>,
) -> anyhow::Result<()> {
    use crate::cluster::fence;
    fence::bound_idle(cluster, tx).await?;
    let (mut selections, mut markets, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for change in batch.iter().flat_map(|op| op.changes.iter()) {
        match change_target(change) {
            Some(Target::Selection(id)) => selections.push(id),
            Some(Target::Market(id)) => markets.push(id),
            Some(Target::Event(id)) => events.push(id),
            None => {}
        }
    }
    let of_selection: HashMap<SelectionId, EventId> = fence::events_of_selections(tx, &selections)
        .await?
        .into_iter()
        .collect();
    let of_market: HashMap<MarketId, EventId> = fence::events_of_markets(tx, &markets)
        .await?
        .into_iter()
        .collect();
    events.extend(of_selection.values().copied());
    events.extend(of_market.values().copied());
    events.sort();
    events.dedup();
    let owned = fence::owned(cluster, tx, &events).await?;
    let event_of = |change: &Change| match change_target(change) {
        Some(Target::Selection(id)) => of_selection.get(&id).copied(),
        Some(Target::Market(id)) => of_market.get(&id).copied(),
        Some(Target::Event(id)) => Some(id),
        None => None,
    };
    let before = batch.len();
    batch.retain(|op| {
        op.changes.iter().all(|c| match change_target(c) {
            None => true,
            Some(_) => event_of(c).is_some_and(|e| owned.contains(&e)),
        })
    });
    let dropped = before - batch.len();
    if dropped > 0 {
        cluster
            .counters
            .fenced_changes
            .fetch_add(dropped as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            ops = dropped,
            "live-state changes refused by the lease fence"
        );
    }
    Ok(())
}

enum Target {
    Selection(SelectionId),
    Market(MarketId),
    Event(EventId),
}

/// What a change writes to (a feed's `seq` mark belongs to no one lease).
fn change_target(change: &Change) -> Option<Target> {
    match change {
        Change::SelectionOdds { selection_id, .. } => Some(Target::Selection(*selection_id)),
        Change::MarketStatus { market_id, .. }
        | Change::MarketInPlay { market_id, .. }
        | Change::MarketFeedSuspended { market_id, .. }
        | Change::MarketSettings { market_id, .. } => Some(Target::Market(*market_id)),
        Change::EventStatus { event_id, .. } | Change::EventScore { event_id, .. } => {
            Some(Target::Event(*event_id))
        }
        Change::FeedSeq(_) => None,
    }
}

/// A batch that settles or voids markets, or finishes or cancels events, takes their bet
/// locks (V40: `bet_lock_key`, exclusive; the status triggers take them again) first, all
/// at once in key order: the order in which ledger batches take them shared. Taken one by
/// one in batch order instead, a batch closing two of them could wait for a bet batch that
/// waits for it (a deadlock Postgres breaks after a second by failing one side).
async fn lock_closing(
    tx: &tokio_postgres::Transaction<'_>,
    batch: &[WriteOp],
) -> anyhow::Result<()> {
    let mut kinds: Vec<&str> = Vec::new();
    // Markets and events side by side: the lock key takes the kind with a bare uuid.
    let mut ids: Vec<Uuid> = Vec::new();
    for change in batch.iter().flat_map(|op| op.changes.iter()) {
        match change {
            Change::MarketStatus {
                market_id,
                status: MarketStatus::Settled | MarketStatus::Voided,
            } => {
                kinds.push("market");
                ids.push(market_id.as_uuid());
            }
            Change::EventStatus {
                event_id,
                status: EventStatus::Finished | EventStatus::Cancelled,
            } => {
                kinds.push("event");
                ids.push(event_id.as_uuid());
            }
            _ => {}
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    tx.execute(
        "SELECT pg_advisory_xact_lock(k.key)
         FROM (SELECT DISTINCT bet_lock_key(u.kind, u.id) AS key
               FROM UNNEST($1::text[], $2::uuid[]) AS u(kind, id)
               ORDER BY 1) k",
        &[&kinds, &ids],
    )
    .await?;
    Ok(())
}

/// One actor's consecutive operations: prices coalesced into one statement (last wins),
/// then the other changes in order.
async fn write_run(tx: &tokio_postgres::Transaction<'_>, ops: &[WriteOp]) -> anyhow::Result<()> {
    let mut odds: HashMap<SelectionId, Decimal> = HashMap::new();
    let mut others: Vec<&Change> = Vec::new();
    for change in ops.iter().flat_map(|op| op.changes.iter()) {
        match change {
            Change::SelectionOdds {
                selection_id,
                odds: o,
            } => {
                odds.insert(*selection_id, *o);
            }
            other => others.push(other),
        }
    }
    if !odds.is_empty() {
        let (ids, prices): (Vec<SelectionId>, Vec<Decimal>) = odds.into_iter().unzip();
        crate::db::markets::write_odds(tx, &ids, &prices).await?;
    }
    for change in others {
        crate::db::markets::write_change(tx, change).await?;
    }
    Ok(())
}
