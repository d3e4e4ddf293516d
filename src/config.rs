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
    pub feed: crate::feed::FeedSettings,
    pub ws: crate::ws::WsSettings,
    pub feed_sim: crate::feed_sim::FeedSimSettings,
    pub bridge: crate::bridge::BridgeSettings,
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
                .try_parsing(true),
        );
    if let Ok(url) = std::env::var("DATABASE_URL") {
        builder = builder.set_override("database.url", url)?;
    }
    if let Ok(url) = std::env::var("REDIS_URL") {
        builder = builder.set_override("redis.url", url)?;
    }
    builder.build()?.try_deserialize()
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
    }
}
