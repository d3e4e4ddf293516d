//! Redis connection: one multiplexed, self-reconnecting connection manager per node.
//!
//! The manager connects lazily and reconnects on its own, so a Redis that is down at
//! start-up or goes away later never stops the engine; callers that need Redis
//! (sessions, rate limits) get an error and answer 503 (fail closed).
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Builds the lazily connecting manager with bounded connect and response times.
pub fn connect(settings: &RedisSettings) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(settings.url.as_str()).context("redis.url")?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(settings.connection_timeout_ms)))
        .set_response_timeout(Some(Duration::from_millis(settings.response_timeout_ms)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(settings.connection_timeout_ms));
    ConnectionManager::new_lazy_with_config(client, config).context("creating the Redis manager")
}

/// One round trip; used by the readiness and health reporting.
pub async fn ping(conn: &ConnectionManager) -> anyhow::Result<()> {
    let mut conn = conn.clone();
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .context("Redis PING")?;
    Ok(())
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct RedisSettings {
    pub url: String,
    pub connection_timeout_ms: u64,
    pub response_timeout_ms: u64,
}
