//! Accounts: input validation of the account endpoints, betting limits with their
//! cooling-off, the one path of account-control changes ([`controls`]), login throttling
//! in Redis and the bounded security-event log.
pub mod cards;
pub mod controls;
pub mod currencies;
pub mod ratelimit;
pub mod register;
pub mod security_log;
pub mod validate;

/// Profiles, preferences and responsible gaming (issue 3).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AccountsSettings {
    /// A raised betting limit takes effect only after this long (regulators: 24 h).
    pub limit_raise_cooling_off_s: u64,
    /// Longest self-exclusion one request may ask for.
    pub self_exclusion_days_max: u32,
    /// Currencies an account may be opened in (ISO 4217); the first is the default.
    pub currencies: Vec<String>,
}
