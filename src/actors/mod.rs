//! Live state in actors: one [`event::EventActor`] per scheduled or live event, one
//! [`market::MarketActor`] per market, the [`registry::Registry`] that maps ids to them,
//! and the batching [`writer`] that makes every change durable.
//!
//! Shape (see docs/live-markets.md): handlers and feeds reach actors only through
//! [`Registry::ask`] (bounded mailbox, `try_send`, reply channel, timeout); actors change
//! their memory only after taking a slot in the writer's queue, publish each change to the
//! topic hub, and hand back a `Durable` that resolves after the commit.
use std::sync::Arc;

use crate::broadcast::Hub;
use crate::domain::ids::{MarketId, SelectionId};

pub mod errors;
pub mod event;
pub mod market;
pub mod registry;
pub mod writer;

pub use errors::{LegRejection, MarketError};
pub use registry::{AskError, LoadError, Registry};
pub use writer::{AuditActor, Durable, WriterHandle};

/// What every live actor shares: settings, the topic hub, the writer.
pub struct Shared {
    pub markets: MarketsSettings,
    pub hub: Arc<Hub>,
    pub writer: WriterHandle,
    /// Where markets tell of their price changes (automatic cash-out, pushed offers).
    pub price_moves: PriceMoves,
    /// The book's currencies: a leg's stake is checked against the limits, and counted in
    /// the liability, in the base currency.
    pub currencies: Arc<crate::domain::currency::Currencies>,
}

/// A market's selections whose price changed.
#[derive(Debug, Clone)]
pub struct PriceMove {
    pub market_id: MarketId,
    pub selections: Vec<SelectionId>,
}

/// The bounded queue of price changes to the cash-out watcher (`app::cashout`). A full
/// queue drops the notice (a market is never slowed by it); the next change of the same
/// selections is noticed again. `None`: nobody listens (tools, tests of actors alone).
#[derive(Debug, Clone, Default)]
pub struct PriceMoves(pub Option<tokio::sync::mpsc::Sender<PriceMove>>);

impl PriceMoves {
    pub fn notify(&self, market_id: MarketId, selections: Vec<SelectionId>) {
        if let Some(tx) = &self.0 {
            if tx
                .try_send(PriceMove {
                    market_id,
                    selections,
                })
                .is_err()
            {
                tracing::debug!(%market_id, "price move not queued for cash-out (queue full)");
            }
        }
    }
}

/// Live markets: actor mailboxes, price rules, catalogue limits and the per-sport
/// defaults of every market's trading settings.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MarketsSettings {
    /// Bound of every event and market actor mailbox; a full mailbox answers 503 `busy`.
    pub mailbox_capacity_messages: usize,
    /// Longest wait for an actor's answer (or a change to become durable) before 503.
    pub ask_timeout_ms: u64,
    /// Markets whose selections and open liabilities one query reads when live state is
    /// recovered (at start and when a node takes events over).
    pub recover_batch_markets: usize,
    /// Threads (actix arbiters) the event and market actors are spread over.
    pub arbiters: usize,
    /// Highest decimal price accepted from traders and feeds.
    pub odds_max: rust_decimal::Decimal,
    /// Lowest overround (`sum(1/odds) - 1`) a market may be priced at; a price change
    /// that would take it lower is refused (422 `margin_below_floor`).
    pub margin_floor: rust_decimal::Decimal,
    /// Whether a suspended market takes new prices (a trader re-pricing before resuming).
    /// When false, a price change on a suspended market is 409 `market_suspended`.
    pub suspended_accepts_prices: bool,
    /// Largest page of `GET /sports/{slug}/events`.
    pub catalogue_page_limit_max: i64,
    /// Most teams and most events answered by `GET /search`.
    pub search_results_max: i64,
    /// Longest accepted search query.
    pub search_query_chars_max: usize,
    /// Most selections in one market (create) and prices in one price update.
    pub selections_per_market_max: usize,
    /// Trading settings of a market when neither the market nor its sport sets them.
    pub defaults: crate::domain::limits::MarketLimits,
    /// Per-sport overrides of `defaults`, by sport slug.
    #[serde(default)]
    pub sports: std::collections::HashMap<String, crate::domain::limits::MarketLimitsOverride>,
    /// Per-sport, per-market-type overrides (`[markets.market_types.<sport>.<type>]`), laid
    /// over the sport's: e.g. referral on for one market type of a sport only.
    #[serde(default)]
    pub market_types: std::collections::HashMap<
        String,
        std::collections::HashMap<String, crate::domain::limits::MarketLimitsOverride>,
    >,
}
impl MarketsSettings {
    /// The defaults of a sport: `defaults` overlaid with `sports.<slug>`.
    pub fn sport_limits(&self, sport_slug: &str) -> crate::domain::limits::MarketLimits {
        match self.sports.get(sport_slug) {
            Some(over) => self.defaults.overlaid(over),
            None => self.defaults,
        }
    }

    /// The defaults of a market type of a sport: the sport's overlaid with
    /// `market_types.<slug>.<type>`.
    pub fn type_limits(
        &self,
        sport_slug: &str,
        market_type: &str,
    ) -> crate::domain::limits::MarketLimits {
        let sport = self.sport_limits(sport_slug);
        match self
            .market_types
            .get(sport_slug)
            .and_then(|types| types.get(market_type))
        {
            Some(over) => sport.overlaid(over),
            None => sport,
        }
    }
}
/// The batching writer of live state (odds, statuses, scores, settings).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LiveWriterSettings {
    /// Changes waiting for the writer; when full, a change is refused with 503 `busy`.
    pub queue_ops_max: usize,
    /// A batch closes at this many changes...
    pub batch_ops_max: usize,
    /// ...or this long after its first change arrived.
    pub batch_age_ms: u64,
    /// Pause before a failed batch (Postgres down) is tried again.
    pub retry_interval_ms: u64,
    /// Failures of one batch in a row after which the writer is declared failing (an
    /// error log, `/readyz` 503) while it keeps trying.
    pub retries_max: u32,
    /// Postgres connections of the writer's own pool (driven by the writer's thread, so
    /// commits never wait behind request or WebSocket work on the HTTP workers).
    pub db_connections_max: usize,
}
