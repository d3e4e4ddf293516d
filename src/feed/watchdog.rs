//! The silent-provider watchdog: every provider's last push time is kept in memory; one
//! silent for longer than its heartbeat window gets every open market of its scheduled and
//! live events feed-suspended (through their event actors) with a `system_events` entry.
//! The markets reopen one by one when the provider sends odds for them again.
//!
//! Only a push that proves the provider is alive now refreshes its liveness: one that
//! carried at least one new `seq`, or a heartbeat signed at a later second than anything
//! heard from it before. A replayed push (valid signature, inside the timestamp window)
//! carries neither, so it cannot keep a silent provider's markets open.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::actors::event::feed::FeedBetStop;
use crate::actors::market::feed::FeedFilter;
use crate::actors::AuditActor;

#[derive(Debug, Clone, Copy)]
struct Live {
    last_seen: Instant,
    /// Its markets were suspended for silence and it has not spoken since.
    silenced: bool,
    /// The newest `X-Feed-Timestamp` of a push that refreshed it (unix seconds).
    newest_signed_s: Option<i64>,
}

/// What a verified push proved about its provider.
#[derive(Debug, Clone, Copy)]
pub struct Heard {
    /// Its signed `X-Feed-Timestamp`.
    pub signed_s: i64,
    /// At least one message carried a `seq` not applied before.
    pub new_seq: bool,
    /// It held a heartbeat.
    pub heartbeat: bool,
}

/// Last push per provider. A provider never heard from since start counts from the start,
/// so a restart gives every provider one full window before suspending anything.
#[derive(Debug)]
pub struct Liveness {
    started: Instant,
    providers: Mutex<HashMap<String, Live>>,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            started: Instant::now(),
            providers: Mutex::new(HashMap::new()),
        }
    }
}

impl Liveness {
    /// Records an applied push; `Some(was_silenced)` when it refreshed the provider's
    /// liveness (see the module documentation), `None` when it proved nothing.
    pub fn heard(&self, provider: &str, push: Heard) -> Option<bool> {
        let mut map = self.lock();
        let started = self.started;
        let entry = map.entry(provider.to_string()).or_insert(Live {
            last_seen: started,
            silenced: false,
            newest_signed_s: None,
        });
        let later = entry.newest_signed_s.is_none_or(|t| push.signed_s > t);
        if !(push.new_seq || (push.heartbeat && later)) {
            return None;
        }
        let was = entry.silenced;
        entry.last_seen = Instant::now();
        entry.silenced = false;
        if later {
            entry.newest_signed_s = Some(push.signed_s);
        }
        Some(was)
    }

    /// Providers silent longer than `window`, now marked silenced (each reported once).
    fn newly_silent(&self, provider: &str, window: Duration) -> Option<Duration> {
        let mut map = self.lock();
        let started = self.started;
        let entry = map.entry(provider.to_string()).or_insert(Live {
            last_seen: started,
            silenced: false,
            newest_signed_s: None,
        });
        let silent = entry.last_seen.elapsed();
        if !entry.silenced && silent > window {
            entry.silenced = true;
            Some(silent)
        } else {
            None
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        match self.providers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// What the watchdog needs: the providers' liveness, their settings, live state and a pool.
#[derive(Clone)]
pub struct Watchdog {
    pub liveness: Arc<Liveness>,
    pub feed: Arc<super::FeedSettings>,
    pub registry: Arc<crate::actors::Registry>,
    pub db: deadpool_postgres::Pool,
}

/// Starts the periodic check on the current actix/tokio runtime.
pub fn spawn(state: Watchdog) {
    let interval = Duration::from_millis(state.feed.watchdog_interval_ms.max(10));
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            check(&state).await;
        }
    });
}

async fn check(state: &Watchdog) {
    for p in &state.feed.providers {
        let window = Duration::from_millis(p.heartbeat_window_ms);
        let Some(silent) = state.liveness.newly_silent(&p.id, window) else {
            continue;
        };
        let silent_ms = i64::try_from(silent.as_millis()).unwrap_or(i64::MAX);
        match suspend_provider(state, &p.id, silent_ms).await {
            Ok(markets) => {
                tracing::warn!(provider = %p.id, silent_ms, markets, "feed provider silent; its markets are suspended");
            }
            Err(e) => {
                // Tried again on the next tick.
                state.liveness.seen_failed(&p.id);
                tracing::error!(provider = %p.id, error = %e, "suspending a silent provider's markets");
            }
        }
    }
}

/// Feed-suspends every market of the provider's scheduled and live events through their
/// event actors, then records a `system_events` row. Returns how many markets it hit.
async fn suspend_provider(
    state: &Watchdog,
    provider: &str,
    silent_ms: i64,
) -> anyhow::Result<usize> {
    let client = state.db.get().await?;
    let events = crate::db::feed::provider_open_events(
        &client,
        provider,
        state.feed.suspend_batch_markets_max,
    )
    .await?;
    let timeout = state.registry.ask_timeout();
    let filter = Arc::new(FeedFilter::All);
    let mut hit = 0;
    for id in events {
        let Some(addr) = state
            .registry
            .event(id)
            .await
            .map_err(anyhow::Error::from)?
        else {
            continue;
        };
        let actor = AuditActor {
            user_id: None,
            client_ip: None,
        };
        let answers = state
            .registry
            .ask_within(&addr, timeout, |reply| FeedBetStop {
                filter: filter.clone(),
                actor,
                reply,
            })
            .await
            .map_err(|e| anyhow::anyhow!("event actor did not answer: {e:?}"))?;
        for a in answers {
            if let Ok(Ok(Some(durable))) = tokio::time::timeout(timeout, a).await {
                hit += 1;
                let _ = tokio::time::timeout(timeout, durable).await;
            }
        }
    }
    let details =
        serde_json::json!({"provider": provider, "silent_ms": silent_ms, "markets_suspended": hit});
    let message =
        format!("feed provider {provider} silent for {silent_ms} ms; its markets are suspended");
    crate::db::feed::record(
        &client,
        "feed_provider_silent",
        "warning",
        &message,
        &details,
    )
    .await?;
    Ok(hit)
}

impl Liveness {
    /// Undoes `newly_silent` after a failed suspension so the next tick retries.
    fn seen_failed(&self, provider: &str) {
        if let Some(e) = self.lock().get_mut(provider) {
            e.silenced = false;
        }
    }
}

/// Shared handle type kept in `AppState`.
pub type SharedLiveness = Arc<Liveness>;

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(signed_s: i64, new_seq: bool, heartbeat: bool) -> Heard {
        Heard {
            signed_s,
            new_seq,
            heartbeat,
        }
    }

    #[test]
    fn only_new_seqs_or_a_later_heartbeat_refresh_a_provider() {
        let l = Liveness::default();
        assert_eq!(l.heard("p", heard(100, false, true)), Some(false));
        assert_eq!(
            l.heard("p", heard(100, false, true)),
            None,
            "a replayed heartbeat"
        );
        assert_eq!(
            l.heard("p", heard(90, false, false)),
            None,
            "a replay of duplicates"
        );
        assert_eq!(
            l.heard("p", heard(90, true, false)),
            Some(false),
            "new seqs count"
        );
        assert_eq!(
            l.heard("p", heard(95, false, true)),
            None,
            "older than one heard"
        );
        assert_eq!(l.heard("p", heard(101, false, true)), Some(false));
    }

    #[test]
    fn a_replay_does_not_keep_a_silent_provider_alive() {
        let l = Liveness::default();
        l.heard("p", heard(100, true, true));
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.newly_silent("p", Duration::from_millis(1)).is_some());
        assert_eq!(l.heard("p", heard(100, false, true)), None);
        assert_eq!(
            l.heard("p", heard(102, false, true)),
            Some(true),
            "back, and said so"
        );
    }
}
