//! Login throttling in Redis: a counter of attempts per account and per client address,
//! each living for the configured window from its first attempt.
//!
//! An attempt is counted **before** the password is checked, in one atomic script:
//! increment both counters, and if either is then over its maximum, take the increment
//! back and refuse (429, `Retry-After` = the fullest counter's TTL). So however many
//! wrong passwords arrive at once, at most `max` of them reach the (costly) password
//! check. A successful login takes its own attempt back: it clears the account's counter
//! and un-counts itself from the address's.
//!
//! Keys: `<prefix>:acct:<sha256(lower(login))>` and `<prefix>:ip:<addr>`, the prefix from
//! `auth.login_rate_key_prefix` (`winzo:login_fail`; tests use their own). The address is
//! the client's as resolved through the trusted proxies (`auth::client`).
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

/// The two counters of one login attempt.
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

/// KEYS: account, address. ARGV: window_s, account max, address max.
/// Answers 0 (go ahead) or the seconds to wait.
const TAKE_ATTEMPT: &str = r"
local a = redis.call('INCR', KEYS[1])
if a == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local b = redis.call('INCR', KEYS[2])
if b == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
local wait = 0
if a > tonumber(ARGV[2]) then wait = math.max(wait, redis.call('TTL', KEYS[1]), 1) end
if b > tonumber(ARGV[3]) then wait = math.max(wait, redis.call('TTL', KEYS[2]), 1) end
if wait > 0 then
  redis.call('DECR', KEYS[1])
  redis.call('DECR', KEYS[2])
end
return wait";

/// Counts one attempt on both counters; `Some(retry_after_s)` when it is refused.
pub async fn take_attempt(
    redis: &ConnectionManager,
    keys: &LoginKeys,
    window_s: u64,
    account_max: u64,
    address_max: u64,
) -> redis::RedisResult<Option<u64>> {
    let mut conn = redis.clone();
    let wait: i64 = redis::Script::new(TAKE_ATTEMPT)
        .key(&keys.account)
        .key(&keys.address)
        .arg(window_s.max(1))
        .arg(account_max)
        .arg(address_max)
        .invoke_async(&mut conn)
        .await?;
    Ok((wait > 0).then_some(wait as u64))
}

/// KEYS: account, address. A successful attempt is no failure: the account's counter
/// goes, the address's loses this attempt.
const SUCCEEDED: &str = r"
redis.call('DEL', KEYS[1])
if redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
return 1";

/// Takes a successful login's attempt back.
pub async fn succeeded(redis: &ConnectionManager, keys: &LoginKeys) -> redis::RedisResult<()> {
    let mut conn = redis.clone();
    redis::Script::new(SUCCEEDED)
        .key(&keys.account)
        .key(&keys.address)
        .invoke_async::<i64>(&mut conn)
        .await
        .map(|_| ())
}
