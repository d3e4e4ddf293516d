//! Authentication and authorization: Argon2id passwords, Redis sessions, roles, the
//! client address and `authenticate` (the HTTP extractors live in `routes::extract`).
pub mod cache;
pub mod client;
pub mod password;
pub mod roles;
pub mod session;
pub mod user;

pub use roles::{Role, RouteClass};
pub use user::{authenticate, AuthError, AuthUser};

/// Sessions, login throttling and the security-event log (issue 3).
#[derive(Debug, Clone, serde::Deserialize)]
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
