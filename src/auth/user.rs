//! Who a bearer token stands for: the session it names, checked in the in-process cache
//! (which revocations reach at once) or in Redis.
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;

use crate::domain::ids::UserId;

use super::cache::SessionCache;
use super::roles::{self, Role, RouteClass};
use super::session;

/// A request or socket with a valid session.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: UserId,
    pub role: Role,
    /// The presented token, kept for logout.
    pub token: String,
    /// When the session ends by itself (an open WebSocket loses its private channel then).
    pub expires_at: DateTime<Utc>,
}

impl AuthUser {
    /// May this user's role use routes of `class`?
    pub fn may(&self, class: RouteClass) -> bool {
        roles::allowed(self.role, class)
    }
}

/// Why a token does not authenticate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown, revoked or expired.
    #[error("invalid or expired session")]
    Invalid,
    /// The session store did not answer: nothing is let in (fail closed).
    #[error("session store unavailable; retry shortly")]
    Unreachable,
}

/// Resolves a token to its session. A session verified within
/// `auth.session_cache_ttl_ms` comes from the cache; anything else from Redis.
pub async fn authenticate(
    sessions: &SessionCache,
    redis: &ConnectionManager,
    token: &str,
) -> Result<AuthUser, AuthError> {
    let hash = session::token_hash(token);
    let user = |s: session::Session| AuthUser {
        user_id: s.user_id,
        role: s.role,
        token: token.to_string(),
        expires_at: s.expires_at,
    };
    if let Some(s) = sessions.get(&hash) {
        return Ok(user(s));
    }
    let generation = sessions.generation();
    match session::lookup_hash(redis, &hash).await {
        Ok(Some(s)) if s.expires_at > Utc::now() => {
            sessions.put(hash, s.clone(), generation);
            Ok(user(s))
        }
        Ok(_) => Err(AuthError::Invalid),
        Err(err) => {
            tracing::warn!(error = %err, "session store unreachable");
            Err(AuthError::Unreachable)
        }
    }
}
