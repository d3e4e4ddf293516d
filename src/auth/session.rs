//! Sessions: opaque random tokens kept in Redis with a TTL, revocable one by one or all
//! of a user's at once (logout, suspension, ban, self-exclusion).
//!
//! Keys: `winzo:session:<sha256(token)>` → JSON [`Session`] with the TTL; and
//! `winzo:user_sessions:<user_id>` → set of that user's token hashes, for revoke-all.
//! Only the token's hash is stored, so a Redis dump does not hand out live tokens.
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::ids::UserId;

use super::cache::{controls_message, token_message, user_message, REVOCATION_CHANNEL};
use super::roles::Role;

/// Random bytes in a token: 256 bits from the OS CSPRNG.
pub const TOKEN_BYTES: usize = 32;

/// What a token stands for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub user_id: UserId,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

fn session_key(token_hash: &str) -> String {
    format!("winzo:session:{token_hash}")
}

fn user_key(user_id: UserId) -> String {
    format!("winzo:user_sessions:{user_id}")
}

/// SHA-256 of the token, hex: the only form of the token that is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Creates a session and returns the token the client will present.
pub async fn create(
    redis: &ConnectionManager,
    user_id: UserId,
    role: Role,
    ttl_s: u64,
) -> redis::RedisResult<(String, Session)> {
    let token = new_token();
    let hash = token_hash(&token);
    let session = Session {
        user_id,
        role,
        expires_at: Utc::now() + chrono::Duration::seconds(ttl_s as i64),
    };
    let body = serde_json::to_string(&session).expect("session serializes");
    let mut conn = redis.clone();
    redis::pipe()
        .atomic()
        .set_ex(session_key(&hash), body, ttl_s)
        .sadd(user_key(user_id), &hash)
        .expire(user_key(user_id), ttl_s as i64)
        .query_async::<()>(&mut conn)
        .await?;
    Ok((token, session))
}

/// Looks a token up by its hash: `Ok(None)` when unknown or expired, `Err` when Redis is
/// unreachable (callers then refuse the request: fail closed).
pub async fn lookup_hash(
    redis: &ConnectionManager,
    hash: &str,
) -> redis::RedisResult<Option<Session>> {
    let mut conn = redis.clone();
    let raw: Option<String> = conn.get(session_key(hash)).await?;
    Ok(raw.and_then(|s| serde_json::from_str(&s).ok()))
}

/// Revokes one token at once, and tells every node's session cache
/// ([`super::cache`]) in the same atomic step.
pub async fn revoke(
    redis: &ConnectionManager,
    token: &str,
    user_id: UserId,
) -> redis::RedisResult<()> {
    let hash = token_hash(token);
    let mut conn = redis.clone();
    redis::pipe()
        .atomic()
        .del(session_key(&hash))
        .srem(user_key(user_id), &hash)
        .publish(REVOCATION_CHANNEL, token_message(&hash))
        .query_async::<()>(&mut conn)
        .await
}

/// Revokes every session of a user at once, and tells every node's session cache.
///
/// One Lua script (atomic in Redis): read the user's set, delete each session and the set,
/// publish. A login that races it either lands before (and is revoked) or after (a new,
/// valid session listed in a new set); never a live session missing from the set, which a
/// later revoke-all (a ban) could not find.
pub async fn revoke_all(redis: &ConnectionManager, user_id: UserId) -> redis::RedisResult<usize> {
    const SCRIPT: &str = r"
local hashes = redis.call('SMEMBERS', KEYS[1])
for _, h in ipairs(hashes) do
  redis.call('DEL', ARGV[1] .. h)
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return #hashes";
    let mut conn = redis.clone();
    let n: usize = redis::Script::new(SCRIPT)
        .key(user_key(user_id))
        .arg(session_key(""))
        .arg(REVOCATION_CHANNEL)
        .arg(user_message(user_id))
        .invoke_async(&mut conn)
        .await?;
    Ok(n)
}

/// Tells every node that a user's controls changed (caps, stake factor, max stake):
/// their wallet shards read them again before the next bet.
pub async fn publish_controls(
    redis: &ConnectionManager,
    user_id: UserId,
) -> redis::RedisResult<()> {
    publish(redis, controls_message(user_id)).await
}

/// Tells every node that a user's bonus state changed: their wallet shards read it again
/// before the next bet.
pub async fn publish_bonus(redis: &ConnectionManager, user_id: UserId) -> redis::RedisResult<()> {
    publish(redis, crate::auth::cache::bonus_message(user_id)).await
}

async fn publish(redis: &ConnectionManager, message: String) -> redis::RedisResult<()> {
    let mut conn = redis.clone();
    redis::cmd("PUBLISH")
        .arg(REVOCATION_CHANNEL)
        .arg(message)
        .query_async::<()>(&mut conn)
        .await
}
