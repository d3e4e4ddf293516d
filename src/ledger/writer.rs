//! The writer tasks: collect bets into batches, commit each batch in one transaction,
//! answer every bet with its own outcome.
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

use super::{BetRecord, LedgerError, LedgerSettings};
use crate::domain::ids::{BetId, EventId, UserId};
use crate::metrics::Metrics;

/// A bet waiting for its batch, with the channel its outcome goes back on.
struct Job {
    bet: BetRecord,
    reply: oneshot::Sender<Result<(), LedgerError>>,
    queued_at: tokio::time::Instant,
}

/// Handle to the writer tasks; cheap to clone.
#[derive(Clone)]
pub struct LedgerWriter {
    queues: Arc<Vec<mpsc::Sender<Job>>>,
    commit_timeout: Duration,
    /// Batches taken from the queues and not yet answered (the shutdown drain waits for 0).
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl LedgerWriter {
    /// Starts `writers_count` writer tasks on the current tokio runtime.
    pub fn start(pool: Pool, settings: &LedgerSettings, metrics: Arc<Metrics>) -> Self {
        Self::start_fenced(pool, settings, metrics, crate::cluster::Cluster::single())
    }

    /// [`start`](Self::start) with the fence of a node among several: a bet is written only
    /// while this node holds the leases of its legs' events (`cluster::fence`).
    pub fn start_fenced(
        pool: Pool,
        settings: &LedgerSettings,
        metrics: Arc<Metrics>,
        cluster: Arc<crate::cluster::Cluster>,
    ) -> Self {
        let writers = settings.writers_count.max(1);
        let per_queue = (settings.queue_bets_max / writers).max(1);
        let mut queues = Vec::with_capacity(writers);
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for index in 0..writers {
            let (tx, rx) = mpsc::channel(per_queue);
            let task = WriterTask {
                index,
                pool: pool.clone(),
                rx,
                batch_max: settings.batch_bets_max.max(1),
                batch_age: Duration::from_micros(settings.batch_age_max_us),
                commit_timeout: Duration::from_millis(settings.commit_timeout_ms),
                in_doubt_max: Duration::from_millis(settings.in_doubt_resolve_max_ms),
                in_doubt_retry: Duration::from_millis(settings.in_doubt_retry_interval_ms.max(10)),
                metrics: metrics.clone(),
                in_flight: in_flight.clone(),
                cluster: cluster.clone(),
            };
            tokio::spawn(task.run());
            queues.push(tx);
        }
        LedgerWriter {
            queues: Arc::new(queues),
            commit_timeout: Duration::from_millis(settings.commit_timeout_ms),
            in_flight,
        }
    }

    /// Nothing queued and no batch being committed (the shutdown drain).
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(std::sync::atomic::Ordering::Acquire) == 0
            && self.queues.iter().all(|q| q.capacity() == q.max_capacity())
    }

    /// Queues a bet and waits until its batch committed (Ok) or failed (Err).
    pub async fn commit_bet(&self, bet: BetRecord) -> Result<(), LedgerError> {
        let mut answer = self.submit_bet(bet)?;
        self.wait(&mut answer).await
    }

    /// Queues a bet and hands back the channel its outcome will arrive on; the writer
    /// always answers it once the batch is done, whether or not anyone still waits.
    pub fn submit_bet(&self, bet: BetRecord) -> Result<Outcome, LedgerError> {
        let mut h = DefaultHasher::new();
        bet.user_id.hash(&mut h);
        let queue = &self.queues[(h.finish() % self.queues.len() as u64) as usize];
        let (reply, answer) = oneshot::channel();
        queue
            .try_send(Job {
                bet,
                reply,
                queued_at: tokio::time::Instant::now(),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => LedgerError::Busy,
                mpsc::error::TrySendError::Closed(_) => {
                    LedgerError::Unavailable("ledger writer stopped".into())
                }
            })?;
        Ok(Outcome(answer))
    }

    /// Waits at most `commit_timeout_ms` for an outcome; after a `Timeout` the outcome can
    /// still be awaited with [`Outcome::finish`].
    pub async fn wait(&self, outcome: &mut Outcome) -> Result<(), LedgerError> {
        match tokio::time::timeout(self.commit_timeout, &mut outcome.0).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(LedgerError::Unavailable("ledger writer stopped".into())),
            Err(_) => Err(LedgerError::Timeout),
        }
    }
}

/// The pending outcome of a submitted bet.
pub struct Outcome(oneshot::Receiver<Result<(), LedgerError>>);

impl Outcome {
    /// Waits as long as it takes (the writer always answers, or stops).
    pub async fn finish(self) -> Result<(), LedgerError> {
        self.0
            .await
            .unwrap_or_else(|_| Err(LedgerError::Unavailable("ledger writer stopped".into())))
    }
}

struct WriterTask {
    index: usize,
    pool: Pool,
    rx: mpsc::Receiver<Job>,
    batch_max: usize,
    batch_age: Duration,
    /// A bet queued longer than this was answered 503 already: it is dropped, not written.
    commit_timeout: Duration,
    in_doubt_max: Duration,
    in_doubt_retry: Duration,
    metrics: Arc<Metrics>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    cluster: Arc<crate::cluster::Cluster>,
}

impl WriterTask {
    /// Runs until every sender is gone: on shutdown the queue is drained and the last
    /// batch committed before the task ends.
    async fn run(mut self) {
        let mut batch: Vec<Job> = Vec::with_capacity(self.batch_max);
        while let Some(first) = self.rx.recv().await {
            // The batch closes `batch_age` after its oldest bet was queued: bets that queued
            // up while the previous batch committed have waited already and go at once.
            let deadline = first.queued_at + self.batch_age;
            self.in_flight
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            batch.push(first);
            while batch.len() < self.batch_max {
                match self.rx.try_recv() {
                    Ok(job) => {
                        batch.push(job);
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    Ok(None) | Err(_) => break,
                }
            }
            self.flush(std::mem::take(&mut batch)).await;
            self.in_flight
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
        tracing::debug!(writer = self.index, "ledger writer stopped");
    }

    async fn flush(&self, jobs: Vec<Job>) {
        let jobs = self.drop_expired(jobs);
        if jobs.is_empty() {
            return;
        }
        let started = Instant::now();
        self.metrics.ledger_batch_bets.observe(jobs.len() as f64);
        let bets: Vec<&BetRecord> = jobs.iter().map(|j| &j.bet).collect();
        let outcome = self.commit_batch(&bets).await;
        self.metrics
            .ledger_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.answer(jobs, outcome).await;
    }

    /// Bets whose caller stopped waiting (the writer was stuck on a dead primary, say)
    /// were answered 503 "retry with the same key": writing them now would make that
    /// answer ambiguous, so they are refused here and their holds released. Returns the rest.
    fn drop_expired(&self, jobs: Vec<Job>) -> Vec<Job> {
        let (expired, jobs): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|j| j.queued_at.elapsed() >= self.commit_timeout);
        if !expired.is_empty() {
            self.metrics
                .ledger_expired_bets_total
                .inc_by(expired.len() as u64);
            tracing::warn!(
                writer = self.index,
                bets = expired.len(),
                "bets waited past the commit timeout; dropped unwritten"
            );
            for job in expired {
                let _ = job.reply.send(Err(LedgerError::Unavailable(
                    "the bet waited past the commit timeout".into(),
                )));
            }
        }
        jobs
    }

    /// Commits one batch: once more after a transient failure, and a batch whose COMMIT
    /// lost its connection is looked for before it is called failed.
    async fn commit_batch(&self, bets: &[&BetRecord]) -> Result<Vec<bool>, BatchError> {
        let cluster = &*self.cluster;
        let mut outcome = commit(&self.pool, cluster, bets).await;
        if outcome.as_ref().is_err_and(is_transient) {
            // A deadlock with a market or event being closed (advisory locks, V40) or a
            // serialization failure: nothing was written; the batch is tried once more.
            outcome = commit(&self.pool, cluster, bets).await;
        }
        if let Err(BatchError::InDoubt(e, allowed)) = &outcome {
            tracing::warn!(writer = self.index, error = %crate::db::describe(e), bets = bets.len(),
                "ledger batch in doubt: its COMMIT lost the connection; looking for it");
            let allowed = allowed.clone();
            match self.settle_in_doubt(bets, &allowed).await {
                Some(true) => outcome = Ok(allowed),
                Some(false) => {
                    outcome = Err(BatchError::NotCommitted(
                        "the database lost the batch before it committed".into(),
                    ))
                }
                None => {}
            }
        }
        outcome
    }

    /// Whether the fenced-in bets of a batch in doubt (`allowed`) committed, counted and
    /// logged by what was found.
    async fn settle_in_doubt(&self, bets: &[&BetRecord], allowed: &[bool]) -> Option<bool> {
        let written: Vec<&BetRecord> = bets
            .iter()
            .zip(allowed)
            .filter(|(_, ok)| **ok)
            .map(|(b, _)| *b)
            .collect();
        let found = self.resolve(&written).await;
        let label = match found {
            Some(true) => "committed",
            Some(false) => "not_committed",
            None => "unknown",
        };
        self.metrics
            .ledger_in_doubt_batches_total
            .with_label_values(&[label])
            .inc();
        tracing::warn!(
            writer = self.index,
            outcome = label,
            bets = bets.len(),
            "ledger batch in doubt resolved"
        );
        found
    }

    /// Answers every bet of the batch by its outcome; after a refusal of a batch of
    /// several, the bets are committed one by one so one bad bet does not sink the rest.
    async fn answer(&self, jobs: Vec<Job>, outcome: Result<Vec<bool>, BatchError>) {
        match outcome {
            Ok(written) => {
                for (job, ok) in jobs.into_iter().zip(written) {
                    let _ = job.reply.send(if ok { Ok(()) } else { Err(fenced()) });
                }
            }
            Err(err) if jobs.len() > 1 && is_refusal(&err) => {
                for job in jobs {
                    let single = commit(&self.pool, &self.cluster, &[&job.bet]).await;
                    let single = match single {
                        Ok(w) if w.first() == Some(&true) => Ok(()),
                        Ok(_) => Err(fenced()),
                        Err(e) => Err(classify(e)),
                    };
                    let _ = job.reply.send(single);
                }
            }
            Err(err) => {
                let err = classify(err);
                if let LedgerError::Unavailable(reason) = &err {
                    tracing::warn!(writer = self.index, %reason, bets = jobs.len(), "ledger batch failed");
                }
                for job in jobs {
                    let _ = job.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

impl WriterTask {
    /// Whether a batch in doubt committed, asked of whichever server is primary now (the
    /// pool reconnects through the multi-host URL); `None` when the database could not be
    /// reached within `in_doubt_resolve_max_ms`.
    async fn resolve(&self, bets: &[&BetRecord]) -> Option<bool> {
        let mut users: Vec<UserId> = bets.iter().map(|b| b.user_id).collect();
        users.sort_unstable();
        users.dedup();
        let ids: Vec<BetId> = bets.iter().map(|b| b.bet_id).collect();
        let deadline = tokio::time::Instant::now() + self.in_doubt_max;
        loop {
            let attempt = async {
                let mut client = self.pool.get().await.map_err(|e| e.to_string())?;
                crate::db::ledger::batch_committed(&mut client, &users, &ids)
                    .await
                    .map_err(|e| crate::db::describe(&e))
            };
            match attempt.await {
                Ok(found) => return Some(found),
                Err(reason) if tokio::time::Instant::now() + self.in_doubt_retry < deadline => {
                    tracing::debug!(writer = self.index, %reason, "batch in doubt: database not reachable yet");
                    tokio::time::sleep(self.in_doubt_retry).await;
                }
                Err(reason) => {
                    tracing::error!(writer = self.index, %reason, bets = ids.len(),
                        "batch in doubt: database unreachable; its bets are answered as not stored but may be");
                    return None;
                }
            }
        }
    }
}

/// Deadlock or serialization failure: worth one more try.
fn is_transient(err: &BatchError) -> bool {
    match err {
        BatchError::Pool(_) | BatchError::InDoubt(..) | BatchError::NotCommitted(_) => false,
        BatchError::Pg(e) => e.code().is_some_and(|c| {
            *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
        }),
    }
}

/// A failure this batch caused (constraint, placement check) rather than the database
/// being unreachable.
fn is_refusal(err: &BatchError) -> bool {
    match err {
        BatchError::Pool(_) | BatchError::InDoubt(..) | BatchError::NotCommitted(_) => false,
        BatchError::Pg(e) => e
            .code()
            .is_some_and(|c| c.code().starts_with("23") || *c == SqlState::RAISE_EXCEPTION),
    }
}

fn classify(err: BatchError) -> LedgerError {
    match err {
        BatchError::Pool(e) => LedgerError::Unavailable(e.to_string()),
        BatchError::InDoubt(e, _) => LedgerError::Unavailable(format!(
            "commit outcome unknown: {}",
            crate::db::describe(&e)
        )),
        BatchError::NotCommitted(why) => LedgerError::Unavailable(why),
        BatchError::Pg(e) => match e.code() {
            Some(c)
                if *c == SqlState::UNIQUE_VIOLATION
                    && e.as_db_error().and_then(|d| d.constraint())
                        == Some("bets_user_idempotency_key") =>
            {
                LedgerError::DuplicateKey
            }
            Some(c) if c.code().starts_with("23") || *c == SqlState::RAISE_EXCEPTION => {
                let msg = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_default();
                LedgerError::Refused(msg)
            }
            _ => LedgerError::Unavailable(crate::db::describe(&e)),
        },
    }
}

#[derive(Debug)]
enum BatchError {
    Pool(deadpool_postgres::PoolError),
    /// Nothing was committed (the failure came before COMMIT, or COMMIT itself refused).
    Pg(tokio_postgres::Error),
    /// COMMIT was sent and its answer lost: the batch may or may not be in the database
    /// (with the bets that passed the fence and were written).
    InDoubt(tokio_postgres::Error, Vec<bool>),
    /// A batch in doubt that the database turned out not to hold.
    NotCommitted(String),
}

/// A bet whose event this node no longer owns (the fence refused it; nothing written).
fn fenced() -> LedgerError {
    LedgerError::Unavailable("this node no longer owns the bet's event; retry".into())
}

/// Commits the bets that pass the fence (all of them with one node); says which did.
async fn commit(
    pool: &Pool,
    cluster: &crate::cluster::Cluster,
    bets: &[&BetRecord],
) -> Result<Vec<bool>, BatchError> {
    let mut client = pool.get().await.map_err(BatchError::Pool)?;
    let tx = client.transaction().await.map_err(BatchError::Pg)?;
    let allowed = if cluster.enabled() {
        fence_bets(cluster, &tx, bets)
            .await
            .map_err(BatchError::Pg)?
    } else {
        vec![true; bets.len()]
    };
    let written: Vec<&BetRecord> = bets
        .iter()
        .zip(&allowed)
        .filter(|(_, ok)| **ok)
        .map(|(b, _)| *b)
        .collect();
    if !written.is_empty() {
        crate::db::ledger::write_bets(&tx, &written)
            .await
            .map_err(BatchError::Pg)?;
    }
    tx.commit().await.map_err(|e| {
        // COMMIT refused by the server (a deferred constraint, a rollback-class error)
        // committed nothing; any other failure (a closed connection, the server shutting
        // down) leaves the outcome unknown.
        let refused = e.code().is_some_and(|c| {
            c.code().starts_with("23")
                || c.code().starts_with("40")
                || *c == SqlState::RAISE_EXCEPTION
        });
        if refused {
            BatchError::Pg(e)
        } else {
            BatchError::InDoubt(e, allowed.clone())
        }
    })?;
    let refused = allowed.iter().filter(|ok| !**ok).count();
    if refused > 0 {
        cluster
            .counters
            .fenced_bets
            .fetch_add(refused as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(bets = refused, "bets refused by the lease fence");
    }
    Ok(allowed)
}

/// For each bet, whether it passes the fence (inside `tx`): every leg's event lease still
/// as its reservation was taken, and the bettor's wallet partition still this node's with
/// the epoch its stake was held under.
async fn fence_bets(
    cluster: &crate::cluster::Cluster,
    tx: &deadpool_postgres::Transaction<'_>,
    bets: &[&BetRecord],
) -> Result<Vec<bool>, tokio_postgres::Error> {
    use crate::cluster::fence;
    let mut leases: Vec<(EventId, String, i64)> = bets
        .iter()
        .flat_map(|b| b.fence.events.iter().cloned())
        .collect();
    leases.sort();
    leases.dedup();
    fence::bound_idle(cluster, &**tx).await?;
    let mut parts: Vec<(i32, i64)> = bets.iter().filter_map(|b| b.fence.wallet).collect();
    parts.sort_unstable();
    parts.dedup();
    let held = fence::leases_held(cluster, &**tx, &leases).await?;
    let wallets = fence::wallets_owned(cluster, &**tx, &parts).await?;
    Ok(bets
        .iter()
        .map(|b| {
            !b.fence.events.is_empty()
                && b.fence.events.iter().all(|l| held.contains(l))
                && b.fence.wallet.is_some_and(|w| wallets.contains(&w))
        })
        .collect())
}
