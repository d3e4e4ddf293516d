//! The ledger writer: accepted bets (bet, legs, stake debit, balance update) committed to
//! Postgres in batches — one transaction per batch, `synchronous_commit` on, many bets per
//! fsync (group commit). A bet is acknowledged only after its batch commits.
//!
//! Bets are routed to one of `writers_count` writer tasks by a hash of the user id, so a
//! user's bets are always written in order by one task and two tasks never contend for
//! the same balance row. A batch closes at `batch_bets_max` bets or `batch_age_max_us`
//! after its first bet. If a batch fails on a constraint, its bets are retried one by one
//! so that one bad bet cannot sink the others; if Postgres is unreachable every bet in
//! the batch is refused (the caller answers 503 and releases its reservations).
//!
//! Failover (docs/operations.md): a batch whose COMMIT loses its connection is in doubt;
//! the writer finds out on the new primary whether it committed before answering it. A
//! bet that waited in the queue past `commit_timeout_ms` (its caller already answered
//! 503) is dropped unwritten, so a 503 means "not stored" except for the one batch in
//! doubt, which the bettor resolves with the same idempotency key.
mod writer;

use serde::Deserialize;

pub use writer::{LedgerWriter, Outcome};
// What the writer commits is the database layer's own record (`db::ledger`).
pub use crate::db::ledger::{BetRecord, LeaseFence, LegRecord, ReferralRecord};

/// Tuning of the group commit; every value comes from `[ledger]` in config.
#[derive(Debug, Clone, Deserialize)]
pub struct LedgerSettings {
    /// Parallel writer tasks (each with its own connection); users are hashed over them.
    pub writers_count: usize,
    /// A batch never holds more bets than this.
    pub batch_bets_max: usize,
    /// A batch is flushed this long after its first bet arrived, full or not.
    pub batch_age_max_us: u64,
    /// Bets waiting for a writer; when full, new bets are refused as busy (503).
    pub queue_bets_max: usize,
    /// A caller waiting longer than this for its commit gets 503 (the outcome is then
    /// found again with its idempotency key).
    pub commit_timeout_ms: u64,
    /// A batch whose COMMIT lost its connection (the primary died, a failover) is in doubt:
    /// the writer looks for it on whichever server is primary now, for at most this long,
    /// so its bets are answered and their holds settled by what really happened. Bets
    /// still undecided after it are answered as not stored (503) and logged as errors.
    pub in_doubt_resolve_max_ms: u64,
    /// Pause between two attempts to reach the database while a batch is in doubt.
    pub in_doubt_retry_interval_ms: u64,
}

/// Why a bet was not committed.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LedgerError {
    /// The writer's queue is full: refuse now rather than queue without limit.
    #[error("ledger writer busy")]
    Busy,
    /// Postgres could not be reached or the commit failed for a reason not of this bet.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The bet's idempotency key was already used by this user (a committed bet exists).
    #[error("duplicate idempotency key")]
    DuplicateKey,
    /// The database refused this bet on its own (a constraint or the placement check).
    #[error("refused by the database: {0}")]
    Refused(String),
    /// No answer from the writer in time; the outcome is unknown to the caller.
    #[error("ledger commit timed out")]
    Timeout,
}
