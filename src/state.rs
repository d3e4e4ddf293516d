//! Shared application state handed to every handler: pools, live-state handles, metrics.

pub mod snapshot_loads;
pub mod ws_slots;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use deadpool_postgres::Pool;
use redis::aio::ConnectionManager;

use crate::config::Settings;
use crate::ledger::LedgerWriter;
use crate::metrics::Metrics;

/// Cloned into every worker; every field is cheap to clone (Arc or handle).
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    /// Postgres, the system of record.
    pub db: Pool,
    /// Redis: sessions, rate limits, cross-node fan-out. Never money state.
    pub redis: ConnectionManager,
    /// Verified sessions, briefly, with revocations pushed over Redis pub/sub.
    pub sessions: Arc<crate::auth::cache::SessionCache>,
    /// The password threads (Argon2 work, bounded).
    pub passwords: crate::auth::password::pool::PasswordPool,
    pub metrics: Arc<Metrics>,
    /// Group-commit writer of accepted bets.
    pub ledger: LedgerWriter,
    /// A trader's actions on one market.
    pub markets: crate::app::markets::MarketService,
    /// Event status and event-wide commands (trader and feed).
    pub events: crate::app::events::EventService,
    /// Verification (KYC): codes, documents, the support queue.
    pub kyc: crate::app::kyc::KycService,
    /// Bonus money and free bets: grants, the bettor's list, expiry.
    pub bonus: crate::app::bonus::BonusService,
    /// Placing bets (REST and WebSocket).
    pub bets: crate::app::bets::BetService,
    /// Cash-out offers, taking them, automatic cash-out.
    pub cash_out: crate::app::cashout::CashOutService,
    pub referrals: crate::app::referrals::ReferralService,
    /// Set once every live event and market has been recovered from Postgres;
    /// `/readyz` answers 200 only after that.
    pub recovered: Arc<AtomicBool>,
    /// Live events and markets: id → actor address (issue 4).
    pub registry: Arc<crate::actors::Registry>,
    /// In-process topics `event:<id>` and `sport:<slug>` (WebSocket sessions attach here).
    pub hub: Arc<crate::broadcast::Hub>,
    /// Last push per feed provider (the silent-provider watchdog).
    pub feed_liveness: Arc<crate::feed::watchdog::Liveness>,
    /// Last applied feed `seq` per provider and event, one lock per event (feed ingest).
    pub feed_sequencer: Arc<crate::feed::sequencer::Sequencer>,
    /// Node-wide WebSocket counters (the connection limit).
    pub ws: Arc<ws_slots::WsShared>,
    /// Wallet shard actors: the only writers of balances.
    pub wallet: crate::wallet::Wallet,
    /// The one path of account-control changes to every holder (`accounts::controls`).
    pub controls: crate::accounts::controls::AccountControls,
    /// Bounded background writer of `system_events` (failed logins, 401/403).
    pub security: crate::accounts::security_log::SecurityLog,
    /// Settlement service: opens settlements and runs their batch workers.
    pub settlement: Arc<crate::settlement::Settlement>,
    /// Where feed pushes are applied: a thread and Postgres connections of their own.
    pub feed: FeedRuntime,
}

/// The feed's thread and pool (`feed.db_connections_max`), apart from the HTTP workers.
#[derive(Clone)]
pub struct FeedRuntime {
    pub arbiter: actix::ArbiterHandle,
    pub db: Pool,
}

impl AppState {
    pub fn is_recovered(&self) -> bool {
        self.recovered.load(Ordering::Acquire)
    }

    pub fn mark_recovered(&self) {
        self.recovered.store(true, Ordering::Release);
    }
}
