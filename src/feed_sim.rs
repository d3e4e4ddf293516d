//! `winzo feed-sim`: a simulated data provider (see below).
use serde::Deserialize;

/// The `[feed_sim]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedSimSettings {
    pub engine_url: String,
    pub provider_id: String,
    pub provider_secret: String,
    /// Real time of one simulated match minute.
    pub minute_ms: u64,
    pub football_matches: usize,
    pub basketball_matches: usize,
    pub request_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
}
