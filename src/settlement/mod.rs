//! Settlement of markets (docs/settlement.md): settle, resettle and void a market, void
//! one bet, and the resumable batch worker that books every bet's payout exactly once.
//!
//! - [`open`]: a trader's request becomes a durable `market_settlements` row (results and
//!   version), written in the same transaction that moves the market row to `settled` /
//!   `voided` (so no bet can be placed on it after its legs are read).
//! - [`worker`]: walks the market's legs in batches (`[settlement] batch_bets_max`), writes
//!   each leg's result, computes each bet's desired state ([`compute`]) and has the wallet
//!   shards book the difference. At most `markets_concurrent_max` markets settle at once,
//!   each on its own task: market actors are never blocked. Unfinished rows resume on
//!   start-up ([`Settlement::resume_all`]).
pub mod cancel;
pub mod compute;
pub mod error;
pub mod exposure;
pub mod open;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::Pool;
use serde::Deserialize;
use tokio::sync::{watch, Semaphore};
use uuid::Uuid;

use crate::actors::Registry;
use crate::broadcast::Hub;
use crate::db::settlement::SettlementRow;
use crate::domain::ids::UserId;
use crate::wallet::Wallet;

/// `[settlement]` in config.
#[derive(Debug, Clone, Deserialize)]
pub struct SettlementSettings {
    /// Bets read, computed and booked per batch (one transaction per wallet shard).
    pub batch_bets_max: usize,
    /// Markets settling at the same time; more wait for a turn.
    pub markets_concurrent_max: usize,
    /// Pause before a failed batch is tried again (Postgres down, shard busy).
    pub retry_interval_ms: u64,
    /// How long a settle/resettle/void request waits for completion before answering 202.
    pub answer_wait_ms: u64,
    /// Longest void reason accepted.
    pub reason_chars_max: usize,
    /// Connections of the settlement's own pool (its workers and bookings): settling never
    /// takes the connections requests and bets need.
    pub pool_connections_max: usize,
    /// Wallet shards booking settlement changes at once (each is busy for one transaction
    /// per turn); the others keep serving bets.
    pub shards_concurrent_max: usize,
}

/// The settlement service: starts and tracks workers. Cheap to share (`Arc`).
pub struct Settlement {
    /// The settlement's own pool (`pool_connections_max`).
    pool: Pool,
    wallet: Wallet,
    hub: Arc<Hub>,
    /// Live market actors: open bets leaving the book release their liability there.
    registry: Arc<Registry>,
    settings: SettlementSettings,
    turns: Arc<Semaphore>,
    /// Turns of the wallet shards for bookings (`shards_concurrent_max`).
    booking_turns: Arc<Semaphore>,
    /// The workers' own thread: reading, computing and publishing a batch never holds up
    /// the thread of the wallet shards and the bet path's tasks.
    thread: actix::ArbiterHandle,
    /// Running workers by settlement id: `true` once done.
    running: Mutex<HashMap<Uuid, watch::Receiver<bool>>>,
    /// A booking that moved bonus money tells every node's wallet shards (`Change::Bonus`).
    controls: crate::accounts::controls::AccountControls,
}

impl Settlement {
    /// Must run inside an actix system: starts the workers' thread.
    pub fn new(
        pool: Pool,
        wallet: Wallet,
        hub: Arc<Hub>,
        registry: Arc<Registry>,
        settings: SettlementSettings,
        controls: crate::accounts::controls::AccountControls,
    ) -> Self {
        let turns = Arc::new(Semaphore::new(settings.markets_concurrent_max.max(1)));
        let booking_turns = Arc::new(Semaphore::new(settings.shards_concurrent_max.max(1)));
        Settlement {
            pool,
            wallet,
            hub,
            registry,
            settings,
            turns,
            booking_turns,
            thread: actix::Arbiter::new().handle(),
            running: Mutex::new(HashMap::new()),
            controls,
        }
    }

    pub fn settings(&self) -> &SettlementSettings {
        &self.settings
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Starts the worker of `row` unless one runs already; answers its completion signal.
    pub fn spawn(self: &Arc<Self>, row: SettlementRow) -> watch::Receiver<bool> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = running.get(&row.id) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(false);
        running.insert(row.id, rx.clone());
        let me = self.clone();
        let id = row.id;
        let spawned = self.thread.spawn(async move {
            let _turn = me.turns.clone().acquire_owned().await;
            worker::run(&me, row).await;
            me.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            let _ = tx.send(true);
        });
        if !spawned {
            // Only when the engine is stopping: the settlement resumes on the next start.
            tracing::error!(settlement = %id, "settlement thread stopped; not started");
        }
        rx
    }

    /// Resumes every unfinished settlement (start-up); answers how many.
    pub async fn resume_all(self: &Arc<Self>) -> anyhow::Result<usize> {
        let client = self.pool.get().await?;
        let rows = crate::db::settlement::unfinished(&client).await?;
        let n = rows.len();
        for row in rows {
            tracing::info!(settlement = %row.id, market = %row.market_id, "resuming settlement");
            self.spawn(row);
        }
        Ok(n)
    }
}

/// The bettor's private topic.
pub fn user_topic(user_id: UserId) -> String {
    format!("user:{user_id}")
}
