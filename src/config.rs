//! Configuration: typed settings layered from `config/` files and environment variables.
//!
//! Order (later wins): `config/default.toml`, `config/{WINZO_ENV}.toml` (`development`
//! when unset), `config/local.toml` (optional, git-ignored), then `WINZO__SECTION__KEY`
//! environment variables. `DATABASE_URL` and `REDIS_URL` override the two URLs.
use std::path::{Path, PathBuf};

use serde::Deserialize;

// Each feature defines its own settings next to itself; this module only assembles them
// (and re-exports them under their old names). No feature imports `config`.
pub mod ws;

pub use crate::accounts::AccountsSettings;
pub use crate::actors::{LiveWriterSettings, MarketsSettings};
pub use crate::auth::AuthSettings;
pub use crate::broadcast::BroadcastSettings;
pub use crate::db::audit::AuditSettings;
pub use crate::db::DatabaseSettings;
pub use crate::domain::limits::{MarketLimits, MarketLimitsOverride};
pub use crate::maintenance::{MaintenanceSettings, MonitoringSettings};
pub use crate::metrics::MetricsSettings;
pub use crate::redis_client::RedisSettings;
pub use crate::telemetry::LogSettings;
pub use crate::wallet::WalletSettings;

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
    pub cash_out: crate::app::cashout::CashOutSettings,
    pub referral: crate::app::referrals::ReferralSettings,
    pub markets: MarketsSettings,
    pub live_writer: LiveWriterSettings,
    pub broadcast: BroadcastSettings,
    pub feed: crate::feed::FeedSettings,
    pub ws: ws::WsSettings,
    pub feed_sim: crate::feed_sim::FeedSimSettings,
    pub bridge: crate::bridge::BridgeSettings,
    pub auth: AuthSettings,
    pub accounts: AccountsSettings,
    /// The base currency and each supported currency's scale and rate to it.
    pub currencies: crate::accounts::currencies::CurrencySettings,
    pub wallet: WalletSettings,
    pub audit: AuditSettings,
    pub maintenance: MaintenanceSettings,
    pub monitoring: MonitoringSettings,
    pub settlement: crate::settlement::SettlementSettings,
    pub payments: crate::wallet::processor::PaymentSettings,
    pub kyc: crate::kyc::KycSettings,
    pub bonus: crate::app::bonus::BonusSettings,
    /// Deposit and withdrawal fees per payment method type (none listed: no fees).
    #[serde(default)]
    pub fees: crate::wallet::fees::FeeSettings,
    pub metrics: MetricsSettings,
    pub cluster: crate::cluster::ClusterSettings,
    /// The profile these settings were loaded for (`WINZO_ENV`: development, test,
    /// production...); the production profile refuses unsafe values at start-up.
    #[serde(default)]
    pub profile: String,
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
    /// `TCP_NODELAY` on accepted connections: a WebSocket session writes its frames as
    /// they come, and with Nagle's algorithm a frame written while the previous one is
    /// unacknowledged waits for the client's delayed ACK (about 40 ms on Linux).
    pub tcp_nodelay: bool,
    /// Concurrent connections per worker (HTTP and WebSocket).
    pub max_connections: usize,
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
                .with_list_parse_key("kyc.required_before")
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
    fn kyc_required_before_has_a_comma_separated_environment_form() {
        std::env::set_var("WINZO__KYC__REQUIRED_BEFORE", "deposit,bet,withdrawal");
        let loaded = load_for("no-such-profile");
        std::env::remove_var("WINZO__KYC__REQUIRED_BEFORE");
        use crate::kyc::Gate;
        assert_eq!(
            loaded.expect("settings").kyc.required_before,
            vec![Gate::Deposit, Gate::Bet, Gate::Withdrawal]
        );
        let base = load_for("no-such-profile").expect("base settings");
        assert_eq!(base.kyc.required_before, vec![Gate::Withdrawal]);
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
        assert_eq!(
            base.markets.margin_floor,
            rust_decimal::Decimal::ZERO,
            "no book in the bettors' favour by default"
        );
    }
}
