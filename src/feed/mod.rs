//! Feed ingest: signed pushes from data providers (scores, statuses, bet stops, odds).
//!
//! A push is verified on its raw bytes ([`auth`]) before anything is parsed, split into
//! messages ([`messages`]), ordered per provider and event ([`sequencer`]) and applied to
//! live state ([`apply`]; results settle markets through [`results`]); the [`watchdog`] suspends the markets of a provider that went
//! silent. The protocol is documented in `docs/feed.md`.
use std::collections::HashMap;

use serde::Deserialize;

pub mod apply;
pub mod auth;
pub mod messages;
pub mod results;
pub mod sequencer;
pub mod watchdog;

/// What applying feed messages needs, and nothing else: the feed's own connections, live
/// state, the services two doors share (event status, settlement) and the settings that
/// bound a message. Built by the ingest adapter (`routes::feed`).
#[derive(Clone)]
pub struct FeedContext {
    /// The feed's own Postgres connections (`feed.db_connections_max`).
    pub db: deadpool_postgres::Pool,
    pub registry: std::sync::Arc<crate::actors::Registry>,
    /// Last applied `seq` per provider and event.
    pub sequencer: std::sync::Arc<sequencer::Sequencer>,
    /// Status changes, cancellation refunds included (shared with the trader's door).
    pub events: crate::app::events::EventService,
    /// Results settle through it (shared with the trader's settle and resettle).
    pub settlement: std::sync::Arc<crate::settlement::Settlement>,
    pub feed: std::sync::Arc<FeedSettings>,
    /// Most selections in one price update (`markets.selections_per_market_max`).
    pub selections_per_market_max: usize,
    /// Highest decimal price (`markets.odds_max`, capped by `feed.odds_max`).
    pub odds_max: rust_decimal::Decimal,
}

/// The `[feed]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedSettings {
    /// Largest raw body of one push; larger is 413 before anything is read further.
    pub body_max_bytes: usize,
    /// Most messages in one push (an array).
    pub messages_per_push_max: usize,
    /// Largest distance between `X-Feed-Timestamp` and the server's clock.
    pub timestamp_skew_max_s: i64,
    /// Period of the silent-provider check.
    pub watchdog_interval_ms: u64,
    /// Most markets one bet stop or one watchdog pass suspends (a bound on one turn).
    pub suspend_batch_markets_max: i64,
    /// Highest decimal price a feed may set.
    pub odds_max: rust_decimal::Decimal,
    /// Known providers; anything else is 401.
    pub providers: Vec<ProviderSettings>,
    /// Per sport slug: the market types a score change suspends (`"all"` for every one).
    /// `default` applies to sports not listed.
    pub suspend_on_score: HashMap<String, Vec<String>>,
    /// Pushes are applied on a thread of their own with this many Postgres connections of
    /// their own, so a push is never queued behind WebSocket fan-out on the HTTP workers.
    pub db_connections_max: usize,
    /// Market ids remembered per event for `odds` messages (beyond, they are looked up).
    pub markets_cached_per_event_max: usize,
}

/// One data provider.
#[derive(Clone, Deserialize)]
pub struct ProviderSettings {
    /// The `{provider}` of the push URL and `events.provider`.
    pub id: String,
    /// HMAC-SHA256 key; development and test values only in `config/`.
    pub secret: String,
    /// Silence after which every live market the provider feeds is suspended.
    pub heartbeat_window_ms: u64,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log line.
        f.debug_struct("ProviderSettings")
            .field("id", &self.id)
            .field("heartbeat_window_ms", &self.heartbeat_window_ms)
            .finish_non_exhaustive()
    }
}

impl FeedSettings {
    /// `WINZO_FEED_SECRET_<ID>` (the provider id upper-cased, `-` as `_`) replaces a
    /// provider's secret: production secrets never live in `config/`.
    pub fn secrets_from_env(&mut self) {
        for p in &mut self.providers {
            let var = format!(
                "WINZO_FEED_SECRET_{}",
                p.id.to_ascii_uppercase().replace('-', "_")
            );
            if let Ok(secret) = std::env::var(var) {
                if !secret.is_empty() {
                    p.secret = secret;
                }
            }
        }
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderSettings> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// The market types a score change suspends in a sport; `None` means all of them.
    pub fn score_suspends(&self, sport_slug: &str) -> Option<Vec<String>> {
        let rule = self
            .suspend_on_score
            .get(sport_slug)
            .or_else(|| self.suspend_on_score.get("default"))?;
        if rule.iter().any(|t| t == "all") {
            None
        } else {
            Some(rule.clone())
        }
    }
}
