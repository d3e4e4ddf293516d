//! Verified sessions kept in process for a short time, so that a bettor's every request
//! does not cost a Redis round trip.
//!
//! Safe only while revocations reach this node at once: every revocation (logout, a status
//! change, self-exclusion) is published on a Redis channel in the same atomic step that
//! deletes the session, and each node's subscriber evicts what it names. The cache is used
//! only while that subscription is up: before it is established, and from the moment it is
//! lost until it is back, every lookup goes to Redis (and fails closed if Redis is down).
//! A lookup that raced a revocation (read Redis before it, finished after it) does not
//! store its result: a revocation counter taken before the read must be unchanged.
//!
//! The same channel carries account-control changes (`c:<user id>`: caps, stake factor,
//! max stake) and bonus changes (`b:<user id>`: the wallet shards' cached bonus state). Every message, and every loss or return of the subscription, is also
//! handed to this node's other holders of account state as a [`Notice`] (wallet shards,
//! open WebSockets: `accounts::controls`), so a change reaches all of them at once.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::ids::UserId;

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::broadcast;

use super::session::Session;

/// The Redis channel revocations are published on.
pub const REVOCATION_CHANNEL: &str = "winzo:session_revocations";

/// A revocation message: `t:<token hash>` (one session) or `u:<user id>` (all of a user's).
pub fn token_message(token_hash: &str) -> String {
    format!("t:{token_hash}")
}

pub fn user_message(user_id: UserId) -> String {
    format!("u:{user_id}")
}

/// An account's controls changed (sessions stay valid): `c:<user id>`.
pub fn controls_message(user_id: UserId) -> String {
    format!("c:{user_id}")
}

/// An account's bonus money or free bets changed (a grant, an expiry, a conversion, a
/// bonus share booked by a settlement): `b:<user id>`.
pub fn bonus_message(user_id: UserId) -> String {
    format!("b:{user_id}")
}

/// What a revocation-channel message means to this node's holders of account state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// One session ended (its token hash).
    Token(String),
    /// Every session of the user ended (logout everywhere, ban, self-exclusion, role).
    User(UserId),
    /// The user's controls changed; sessions stay.
    Controls(UserId),
    /// The user's bonus state changed (bonus balance, active bonus, free bets).
    Bonus(UserId),
    /// Anything may have changed (the subscription was lost or came back, or a message
    /// could not be read): drop everything cached and read again.
    All,
}

impl Notice {
    pub fn parse(message: &str) -> Notice {
        let user = |u: &str| u.parse::<UserId>().ok();
        if let Some(hash) = message.strip_prefix("t:") {
            Notice::Token(hash.to_string())
        } else if let Some(u) = message.strip_prefix("u:").and_then(user) {
            Notice::User(u)
        } else if let Some(u) = message.strip_prefix("c:").and_then(user) {
            Notice::Controls(u)
        } else if let Some(u) = message.strip_prefix("b:").and_then(user) {
            Notice::Bonus(u)
        } else {
            Notice::All
        }
    }

    /// The user whose account state this notice touches (`None`: a token, or all).
    pub fn user(&self) -> Option<UserId> {
        match self {
            Notice::User(u) | Notice::Controls(u) | Notice::Bonus(u) => Some(*u),
            Notice::Token(_) | Notice::All => None,
        }
    }
}

pub struct SessionCache {
    entries: Mutex<HashMap<String, (Session, Instant)>>,
    ttl: Duration,
    entries_max: usize,
    /// True only while the revocation subscription is established (shared with the
    /// wallet shards, which trust cached controls only while it holds).
    live: Arc<AtomicBool>,
    /// Bumped by every revocation applied (and by every loss of the subscription).
    revocations: AtomicU64,
    /// Every notice, for this node's other holders of account state (bounded: a holder
    /// that lags behind reads everything again).
    notices: broadcast::Sender<Notice>,
}

impl SessionCache {
    /// `ttl` 0 or `entries_max` 0 turns the cache off (every lookup goes to Redis); the
    /// notices still flow. `notices_max`: notices a slow holder may fall behind by.
    pub fn new(ttl: Duration, entries_max: usize, notices_max: usize) -> Arc<SessionCache> {
        let (notices, _) = broadcast::channel(notices_max.max(16));
        Arc::new(SessionCache {
            entries: Mutex::new(HashMap::new()),
            ttl,
            entries_max,
            live: Arc::new(AtomicBool::new(false)),
            revocations: AtomicU64::new(0),
            notices,
        })
    }

    /// True while revocations and control changes of other nodes reach this one.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// The live flag itself, for holders that must fail closed without it.
    pub fn live_flag(&self) -> Arc<AtomicBool> {
        self.live.clone()
    }

    /// A receiver of every notice from now on.
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.entries_max > 0 && self.live.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Session, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A cached, unexpired session for this token hash.
    pub fn get(&self, token_hash: &str) -> Option<Session> {
        if !self.enabled() {
            return None;
        }
        let entries = self.lock();
        let (session, at) = entries.get(token_hash)?;
        (at.elapsed() < self.ttl && session.expires_at > Utc::now()).then(|| session.clone())
    }

    /// The revocation counter, read before a Redis lookup and handed to [`put`].
    pub fn generation(&self) -> u64 {
        self.revocations.load(Ordering::Acquire)
    }

    /// Stores a session read from Redis, unless a revocation happened since `generation`.
    pub fn put(&self, token_hash: String, session: Session, generation: u64) {
        if !self.enabled() {
            return;
        }
        let mut entries = self.lock();
        if self.revocations.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= self.entries_max {
            let now = Instant::now();
            entries.retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
            if entries.len() >= self.entries_max {
                entries.clear();
            }
        }
        entries.insert(token_hash, (session, Instant::now()));
    }

    /// Applies a channel message (see [`token_message`], [`user_message`],
    /// [`controls_message`]) and hands it on as a [`Notice`].
    pub fn apply(&self, message: &str) {
        self.apply_notice(Notice::parse(message));
    }

    /// Applies a notice to the cache, then hands it to every holder on this node.
    pub fn apply_notice(&self, notice: Notice) {
        {
            let mut entries = self.lock();
            match &notice {
                Notice::Token(hash) => {
                    self.revocations.fetch_add(1, Ordering::AcqRel);
                    entries.remove(hash);
                }
                Notice::User(user) => {
                    self.revocations.fetch_add(1, Ordering::AcqRel);
                    entries.retain(|_, (s, _)| s.user_id != *user);
                }
                // Sessions stay valid; only the holders of controls care.
                Notice::Controls(_) | Notice::Bonus(_) => {}
                Notice::All => {
                    self.revocations.fetch_add(1, Ordering::AcqRel);
                    entries.clear();
                }
            }
        }
        // No receiver (nothing holds account state yet) is not an error.
        let _ = self.notices.send(notice);
    }

    /// Forgets one token on this node at once (its revocation also reaches the others).
    pub fn forget_token(&self, token: &str) {
        self.apply(&token_message(&super::session::token_hash(token)));
    }

    /// Forgets every session of a user on this node at once.
    pub fn forget_user(&self, user_id: UserId) {
        self.apply(&user_message(user_id));
    }

    fn set_live(&self, live: bool) {
        {
            let mut entries = self.lock();
            self.revocations.fetch_add(1, Ordering::AcqRel);
            entries.clear();
            self.live.store(live, Ordering::Release);
        }
        // Messages may have been missed while the subscription was down (or is now).
        let _ = self.notices.send(Notice::All);
    }

    /// Cached sessions (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Subscribes to the revocation channel for as long as the process runs, reconnecting
/// after `retry`; the cache is live only while subscribed. It runs even with the session
/// cache off: the wallet shards and WebSockets need its notices.
pub fn spawn_subscriber(cache: Arc<SessionCache>, redis_url: &str, retry: Duration) {
    let client = match redis::Client::open(redis_url) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "session cache off: bad Redis URL");
            return;
        }
    };
    actix_web::rt::spawn(async move {
        loop {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(REVOCATION_CHANNEL).await {
                    Ok(()) => {
                        cache.set_live(true);
                        let mut stream = pubsub.into_on_message();
                        while let Some(msg) = stream.next().await {
                            let text = String::from_utf8_lossy(msg.get_payload_bytes());
                            cache.apply(&text);
                        }
                        cache.set_live(false);
                        tracing::warn!("session cache off: revocation subscription lost");
                    }
                    Err(e) => tracing::warn!(error = %e, "session cache: SUBSCRIBE failed"),
                },
                Err(e) => tracing::debug!(error = %e, "session cache: Redis unreachable"),
            }
            tokio::time::sleep(retry).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn session(user: UserId) -> Session {
        Session {
            user_id: user,
            role: Role::User,
            expires_at: Utc::now() + chrono::Duration::hours(1),
        }
    }

    fn live_cache() -> Arc<SessionCache> {
        let c = SessionCache::new(Duration::from_secs(60), 10, 16);
        c.set_live(true);
        c
    }

    #[test]
    fn nothing_is_cached_until_the_subscription_is_live() {
        let c = SessionCache::new(Duration::from_secs(60), 10, 16);
        c.put("h".into(), session(UserId::new_random()), c.generation());
        assert!(c.get("h").is_none());
    }

    #[test]
    fn revoking_a_user_forgets_only_that_users_sessions() {
        let c = live_cache();
        let (a, b) = (UserId::new_random(), UserId::new_random());
        c.put("a1".into(), session(a), c.generation());
        c.put("b1".into(), session(b), c.generation());
        c.apply(&user_message(a));
        assert!(c.get("a1").is_none());
        assert!(c.get("b1").is_some());
        c.apply(&token_message("b1"));
        assert!(c.get("b1").is_none());
    }

    #[test]
    fn a_lookup_that_raced_a_revocation_is_not_stored() {
        let c = live_cache();
        let before = c.generation();
        c.apply(&user_message(UserId::new_random()));
        c.put("x".into(), session(UserId::new_random()), before);
        assert!(c.get("x").is_none());
    }

    #[test]
    fn losing_the_subscription_empties_and_disables_the_cache() {
        let c = live_cache();
        c.put("x".into(), session(UserId::new_random()), c.generation());
        c.set_live(false);
        assert!(c.is_empty());
        c.put("y".into(), session(UserId::new_random()), c.generation());
        assert!(c.get("y").is_none());
    }

    #[test]
    fn every_message_reaches_the_holders_as_a_notice() {
        let c = live_cache();
        let mut rx = c.notices();
        let u = UserId::new_random();
        c.apply(&controls_message(u));
        c.apply(&user_message(u));
        c.apply(&token_message("h"));
        c.apply("garbage");
        c.set_live(false);
        let got: Vec<Notice> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            got,
            vec![
                Notice::Controls(u),
                Notice::User(u),
                Notice::Token("h".into()),
                Notice::All,
                Notice::All
            ]
        );
    }

    #[test]
    fn a_controls_notice_keeps_the_users_sessions() {
        let c = live_cache();
        let u = UserId::new_random();
        c.put("a".into(), session(u), c.generation());
        c.apply(&controls_message(u));
        assert!(c.get("a").is_some());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let c = live_cache();
        for i in 0..25 {
            c.put(
                format!("h{i}"),
                session(UserId::new_random()),
                c.generation(),
            );
            assert!(c.len() <= 10);
        }
    }
}
