//! The bounded writer of security events (`system_events`): failed logins and
//! authorization failures. Each event is inserted by a spawned task so the answer never
//! waits for it; at most `auth.security_events_inflight_max` inserts run at once and
//! events beyond are dropped and counted (a flood of bad tokens must not exhaust the
//! database pool or memory).
use std::net::IpAddr;
use std::sync::Arc;

use deadpool_postgres::Pool;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::db::audit::{insert_system_event, SecurityEvent};
use crate::domain::ids::UserId;

/// An event to record.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_type: &'static str,
    pub severity: &'static str,
    pub message: String,
    pub details: Value,
    pub user_id: Option<UserId>,
    pub ip: Option<IpAddr>,
}

#[derive(Clone)]
pub struct SecurityLog {
    pool: Pool,
    permits: Arc<Semaphore>,
    /// Events dropped because too many inserts were in flight (`winzo_security_events_dropped_total`).
    dropped: prometheus::IntCounter,
}

impl SecurityLog {
    pub fn new(pool: Pool, inflight_max: usize, dropped: prometheus::IntCounter) -> SecurityLog {
        SecurityLog {
            pool,
            permits: Arc::new(Semaphore::new(inflight_max.max(1))),
            dropped,
        }
    }

    /// Records an event in the background (never blocks, never fails the caller).
    pub fn record(&self, event: Event) {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.dropped.inc();
            tracing::warn!(
                event_type = event.event_type,
                "security event dropped: too many in flight"
            );
            return;
        };
        let pool = self.pool.clone();
        actix_web::rt::spawn(async move {
            let _permit = permit;
            let result = async {
                let client = pool.get().await?;
                insert_system_event(
                    &client,
                    &SecurityEvent {
                        event_type: event.event_type,
                        severity: event.severity,
                        message: &event.message,
                        details: event.details.clone(),
                        user_id: event.user_id,
                        ip: event.ip,
                    },
                )
                .await?;
                anyhow::Ok(())
            }
            .await;
            if let Err(err) = result {
                tracing::warn!(error = %format!("{err:#}"), "writing a security event");
            }
        });
    }
}
