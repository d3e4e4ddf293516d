//! Failed-login throttling in Redis: a counter per account and per client address, each
//! living for the configured window from its first failure. When either counter is at
//! its maximum, logins for it are refused with 429 and `Retry-After` = the counter's TTL.
//!
//! Keys: `<prefix>:acct:<sha256(lower(login))>` and `<prefix>:ip:<addr>`, the prefix from
//! `auth.login_rate_key_prefix` (`winzo:login_fail`; tests use their own).
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

/// The two counters of one login attempt, with their maxima.
pub struct LoginKeys {
    pub account: String,
    pub address: String,
}

impl LoginKeys {
    pub fn new(prefix: &str, login: &str, address: &str) -> LoginKeys {
        let hashed = hex::encode(Sha256::digest(login.to_lowercase().as_bytes()));
        LoginKeys {
            account: format!("{prefix}:acct:{hashed}"),
            address: format!("{prefix}:ip:{address}"),
        }
    }
}

/// `Some(retry_after_s)` when either counter is at its maximum.
pub async fn blocked(
    redis: &ConnectionManager,
    keys: &LoginKeys,
    account_max: u64,
    address_max: u64,
) -> redis::RedisResult<Option<u64>> {
    let mut conn = redis.clone();
    let (acct, acct_ttl, addr, addr_ttl): (Option<u64>, i64, Option<u64>, i64) = redis::pipe()
        .get(&keys.account)
        .ttl(&keys.account)
        .get(&keys.address)
        .ttl(&keys.address)
        .query_async(&mut conn)
        .await?;
    let mut retry = None;
    for (count, ttl, max) in [(acct, acct_ttl, account_max), (addr, addr_ttl, address_max)] {
        if count.unwrap_or(0) >= max {
            let wait = ttl.max(1) as u64;
            retry = Some(retry.map_or(wait, |r: u64| r.max(wait)));
        }
    }
    Ok(retry)
}

/// Counts one failure on both counters; the window starts at the first failure.
pub async fn record_failure(
    redis: &ConnectionManager,
    keys: &LoginKeys,
    window_s: u64,
) -> redis::RedisResult<()> {
    let mut conn = redis.clone();
    redis::pipe()
        .incr(&keys.account, 1)
        .expire(&keys.account, window_s as i64)
        .arg("NX")
        .incr(&keys.address, 1)
        .expire(&keys.address, window_s as i64)
        .arg("NX")
        .query_async::<()>(&mut conn)
        .await
}

/// A successful login clears the account's counter (not the address's).
pub async fn clear_account(redis: &ConnectionManager, keys: &LoginKeys) -> redis::RedisResult<()> {
    let mut conn = redis.clone();
    redis::cmd("DEL")
        .arg(&keys.account)
        .query_async::<()>(&mut conn)
        .await
}
