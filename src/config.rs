//! Configuration: typed settings layered from `config/` files and environment variables.
//!
//! Order (later wins): `config/default.toml`, `config/{WINZO_ENV}.toml` (`development`
//! when unset), `config/local.toml` (optional, git-ignored), then `WINZO__SECTION__KEY`
//! environment variables. `DATABASE_URL` and `REDIS_URL` override the two URLs.
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Every setting of the engine. Each section lives in its own struct; every field has its
/// value in `config/default.toml`, so a missing key is a configuration error, not a guess.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub log: LogSettings,
    pub ledger: crate::ledger::LedgerSettings,
    pub bets: crate::bets::settings::BetSettings,
    pub markets: MarketsSettings,
    pub live_writer: LiveWriterSettings,
    pub broadcast: BroadcastSettings,
    pub feed: crate::feed::FeedSettings,
    pub ws: crate::ws::WsSettings,
    pub feed_sim: crate::feed_sim::FeedSimSettings,
    pub bridge: crate::bridge::BridgeSettings,
    pub auth: AuthSettings,
    pub accounts: AccountsSettings,
    pub wallet: WalletSettings,
    pub audit: AuditSettings,
    pub maintenance: MaintenanceSettings,
    pub monitoring: MonitoringSettings,
    pub settlement: crate::settlement::SettlementSettings,
    pub payments: crate::wallet::processor::PaymentSettings,
    pub metrics: MetricsSettings,
    /// The profile these settings were loaded for (`WINZO_ENV`: development, test,
    /// production...); the production profile refuses unsafe values at start-up.
    #[serde(default)]
    pub profile: String,
}

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// A bearer token that opens `/metrics` from anywhere (empty: none).
    pub token: String,
    /// Whether a request from a loopback peer that no proxy forwarded (no
    /// `X-Forwarded-For`) may read it without the token: a scraper on the same host.
    pub allow_loopback: bool,
}

/// Sessions, login throttling and the security-event log (issue 3).
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// Lifetime of a session token in Redis.
    pub session_ttl_s: u64,
    /// How long a verified session is trusted from the in-process cache (0: no cache).
    /// Revocations reach the cache at once over Redis pub/sub; this bounds the rest.
    pub session_cache_ttl_ms: u64,
    /// Sessions kept in the in-process cache at most (0: no cache).
    pub session_cache_entries_max: usize,
    /// Threads hashing and verifying passwords (Argon2id: 19 MiB and a core each).
    pub password_threads: usize,
    /// Password jobs waiting for a thread; more are answered 503 `busy`.
    pub password_queue_jobs_max: usize,
    /// Failed logins for one account within the window before 429.
    pub login_failures_per_account_max: u64,
    /// Failed logins from one client address within the window before 429.
    pub login_failures_per_address_max: u64,
    /// The window (and the longest `Retry-After`) of the failed-login counters.
    pub login_failure_window_s: u64,
    /// Redis key prefix of the failed-login counters.
    pub login_rate_key_prefix: String,
    /// Security events (`system_events` rows) being written at once; more are dropped
    /// and counted, so a flood of bad tokens cannot exhaust the database pool.
    pub security_events_inflight_max: usize,
    /// Proxies (addresses or networks) whose `X-Forwarded-For` is believed; the client
    /// address of any other peer is the peer itself (`auth::client`).
    pub trusted_proxies: Vec<ipnetwork::IpNetwork>,
    /// Account-control notices one holder (a WebSocket, the wallet listener) may fall
    /// behind by before it drops everything cached and reads again.
    pub control_notices_queue_max: usize,
}

/// Profiles, preferences and responsible gaming (issue 3).
#[derive(Debug, Clone, Deserialize)]
pub struct AccountsSettings {
    /// A raised betting limit takes effect only after this long (regulators: 24 h).
    pub limit_raise_cooling_off_s: u64,
    /// Longest self-exclusion one request may ask for.
    pub self_exclusion_days_max: u32,
    /// Currencies an account may be opened in (ISO 4217); the first is the default.
    pub currencies: Vec<String>,
}

/// Wallet shard actors and the money endpoints (issue 3).
#[derive(Debug, Clone, Deserialize)]
pub struct WalletSettings {
    /// Users are hashed over this many shard actors (fixed for the life of a node).
    pub shards: usize,
    /// Messages queued per shard before callers get 503 `busy`.
    pub shard_mailbox_capacity: usize,
    /// Accounts a shard keeps cached; beyond it the cache is cleared (reloaded on use).
    pub shard_accounts_cached_max: usize,
    /// Largest single deposit or withdrawal, a money string.
    pub amount_max: String,
    /// Largest page of `GET /wallet/transactions`.
    pub transactions_page_max: i64,
    /// Largest offset of `GET /wallet/transactions`.
    pub transactions_offset_max: i64,
    /// Payment methods one account may hold.
    pub payment_methods_per_user_max: i64,
}

/// The audit-trail reader (issue 3).
#[derive(Debug, Clone, Deserialize)]
pub struct AuditSettings {
    /// Largest page of `GET /trading/audit`.
    pub page_max: i64,
    /// Largest offset of `GET /trading/audit`.
    pub offset_max: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    pub workers: usize,
    /// Largest JSON body accepted; larger bodies are answered 413.
    pub json_body_max_bytes: usize,
    /// Largest raw body accepted (feed pushes and other non-JSON bodies).
    pub payload_max_bytes: usize,
    /// How long in-flight requests may take to finish after SIGINT/SIGTERM.
    pub shutdown_timeout_s: u64,
    pub keep_alive_s: u64,
    /// Concurrent connections per worker (HTTP and WebSocket).
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    /// Maintenance database used by tests to create per-test databases.
    #[serde(default)]
    pub admin_url: Option<String>,
    /// Template database that per-test databases are cloned from.
    #[serde(default)]
    pub template: Option<String>,
    pub pool_max_size: usize,
    /// A request waiting longer than this for a pooled connection fails with 503.
    pub pool_wait_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub startup_retry_interval_ms: u64,
    pub startup_retries_max: u32,
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: String,
    pub connection_timeout_ms: u64,
    pub response_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `human` or `json`.
    pub format: String,
    /// A tracing `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
}

/// Live markets: actor mailboxes, price rules, catalogue limits and the per-sport
/// defaults of every market's trading settings.
#[derive(Debug, Clone, Deserialize)]
pub struct MarketsSettings {
    /// Bound of every event and market actor mailbox; a full mailbox answers 503 `busy`.
    pub mailbox_capacity_messages: usize,
    /// Longest wait for an actor's answer (or a change to become durable) before 503.
    pub ask_timeout_ms: u64,
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
    pub defaults: MarketLimits,
    /// Per-sport overrides of `defaults`, by sport slug.
    #[serde(default)]
    pub sports: std::collections::HashMap<String, MarketLimitsOverride>,
}

/// A market's trading settings (API: `PATCH /trading/markets/{id}/settings`).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct MarketLimits {
    /// How long an in-play bet is held before it is re-checked and taken.
    pub bet_delay_ms: u32,
    #[schema(value_type = String)]
    pub min_stake: rust_decimal::Decimal,
    #[schema(value_type = String)]
    pub max_stake: rust_decimal::Decimal,
    /// Most potential payout on any one selection.
    #[schema(value_type = String)]
    pub max_liability_selection: rust_decimal::Decimal,
    /// Most net loss of the market whichever selection wins.
    #[schema(value_type = String)]
    pub max_liability_market: rust_decimal::Decimal,
}

/// The same settings, each optional: a sport's override, a market's own column values.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct MarketLimitsOverride {
    pub bet_delay_ms: Option<u32>,
    #[schema(value_type = Option<String>)]
    pub min_stake: Option<rust_decimal::Decimal>,
    #[schema(value_type = Option<String>)]
    pub max_stake: Option<rust_decimal::Decimal>,
    #[schema(value_type = Option<String>)]
    pub max_liability_selection: Option<rust_decimal::Decimal>,
    #[schema(value_type = Option<String>)]
    pub max_liability_market: Option<rust_decimal::Decimal>,
}

impl MarketLimits {
    /// `self` with every value `over` sets replacing the one here.
    pub fn overlaid(self, over: &MarketLimitsOverride) -> MarketLimits {
        MarketLimits {
            bet_delay_ms: over.bet_delay_ms.unwrap_or(self.bet_delay_ms),
            min_stake: over.min_stake.unwrap_or(self.min_stake),
            max_stake: over.max_stake.unwrap_or(self.max_stake),
            max_liability_selection: over
                .max_liability_selection
                .unwrap_or(self.max_liability_selection),
            max_liability_market: over
                .max_liability_market
                .unwrap_or(self.max_liability_market),
        }
    }
}

impl MarketsSettings {
    /// The defaults of a sport: `defaults` overlaid with `sports.<slug>`.
    pub fn sport_limits(&self, sport_slug: &str) -> MarketLimits {
        match self.sports.get(sport_slug) {
            Some(over) => self.defaults.overlaid(over),
            None => self.defaults,
        }
    }
}

/// The batching writer of live state (odds, statuses, scores, settings).
#[derive(Debug, Clone, Deserialize)]
pub struct LiveWriterSettings {
    /// Changes waiting for the writer; when full, a change is refused with 503 `busy`.
    pub queue_ops_max: usize,
    /// A batch closes at this many changes...
    pub batch_ops_max: usize,
    /// ...or this long after its first change arrived.
    pub batch_age_ms: u64,
    /// Pause before a failed batch (Postgres down) is tried again.
    pub retry_interval_ms: u64,
    /// Postgres connections of the writer's own pool (driven by the writer's thread, so
    /// commits never wait behind request or WebSocket work on the HTTP workers).
    pub db_connections_max: usize,
}

/// The in-process topic hub (`event:<id>`, `sport:<slug>`).
#[derive(Debug, Clone, Deserialize)]
pub struct BroadcastSettings {
    /// Messages queued per subscriber; a subscriber whose queue is full is dropped.
    pub subscriber_queue_messages_max: usize,
    /// Messages waiting for the fan-out thread; beyond, a message is lost for local
    /// subscribers (counted in `winzo_broadcast_fanout_dropped_total`; they resubscribe).
    pub fanout_queue_messages_max: usize,
    /// Messages the fan-out thread takes at once, grouped by topic so each subscriber gets
    /// a run of messages back to back (written to its socket together).
    pub fanout_batch_messages_max: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MaintenanceSettings {
    /// Whether this node schedules the daily maintenance at all.
    pub enabled: bool,
    /// `"HH:MM"` in UTC; checked when the engine starts.
    pub daily_at_utc: String,
    /// statement_timeout for the maintenance session (VACUUM can take long).
    pub statement_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MonitoringSettings {
    /// Period of the database gauges' refresh (a timer, not per scrape).
    pub db_health_refresh_interval_s: u64,
    /// Rows per section of the db-health answer.
    pub db_health_rows_max: i64,
    /// Tables reported in `winzo_db_dead_tuples{table}` (bounds the label set).
    pub dead_tuple_tables_max: i64,
    /// Mean execution time above which a statement counts as slow.
    pub slow_statement_mean_ms: f64,
    /// Dead tuples above which a table is listed in db-health.
    pub dead_tuples_min: i64,
}

/// Finds the `config/` folder: `WINZO_CONFIG_DIR`, else `config/` under the current
/// directory, else `config/` beside the crate (so tests and tools run from anywhere).
pub fn config_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("WINZO_CONFIG_DIR") {
        return PathBuf::from(dir);
    }
    let local = Path::new("config");
    if local.join("default.toml").exists() {
        return local.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Loads the settings for the environment named by `WINZO_ENV`.
pub fn load() -> Result<Settings, config::ConfigError> {
    let env = std::env::var("WINZO_ENV").unwrap_or_else(|_| "development".to_string());
    load_for(&env)
}

/// Loads the settings for a named environment (`development`, `test`, `production`).
pub fn load_for(environment: &str) -> Result<Settings, config::ConfigError> {
    let dir = config_dir();
    let mut builder = config::Config::builder()
        .add_source(config::File::from(dir.join("default.toml")))
        .add_source(config::File::from(dir.join(format!("{environment}.toml"))).required(false))
        .add_source(config::File::from(dir.join("local.toml")).required(false))
        .add_source(
            config::Environment::with_prefix("WINZO")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("accounts.currencies")
                .with_list_parse_key("auth.trusted_proxies")
                .with_list_parse_key("ws.allowed_origins"),
        );
    if let Ok(url) = std::env::var("DATABASE_URL") {
        builder = builder.set_override("database.url", url)?;
    }
    if let Ok(url) = std::env::var("REDIS_URL") {
        builder = builder.set_override("redis.url", url)?;
    }
    let mut settings: Settings = builder.build()?.try_deserialize()?;
    settings.feed.secrets_from_env();
    settings.profile = environment.to_string();
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_test_profiles_load() {
        let dev = load_for("development").expect("development settings");
        assert_eq!(dev.server.port, 8080);
        let test = load_for("test").expect("test settings");
        assert_eq!(test.server.port, 0);
        assert!(test.database.template.is_some());
        assert_eq!(test.profile, "test");
    }

    #[test]
    fn the_base_profile_ships_no_feed_secret() {
        // default.toml alone (an unknown profile adds nothing but local.toml and the
        // environment, neither of which CI has).
        let base = load_for("no-such-profile").expect("base settings");
        assert!(
            base.feed.providers.is_empty(),
            "a committed provider secret would be accepted wherever the file is used"
        );
        assert!(base.feed_sim.provider_secret.is_empty());
    }
}
