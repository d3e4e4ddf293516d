//! A cancelled event voids every one of its markets: each open bet on it is refunded
//! (parlays reduced to their other legs), exactly once, by the same void settlement a
//! trader's `POST .../void` runs. Both doors use it: a trader's status change and a feed's
//! `status: cancelled`. It is idempotent (a market already voided is skipped) and
//! resumable: the voids of an event cancelled just before a crash are opened on the next
//! start ([`resume`]), and each void's bookings resume like any settlement.
use std::sync::Arc;

use uuid::Uuid;

use super::error::SettlementError;
use super::open::{self, Kind, OpenRequest};
use super::Settlement;
use crate::actors::{AuditActor, Registry};
use crate::db::settlement::{self as sdb, SettlementRow};

/// The reason recorded on every void of a cancelled event.
pub const REASON: &str = "event cancelled";

/// Cancelled events resumed per start-up pass (more are found by the next pass).
const RESUME_EVENTS_MAX: i64 = 1000;

/// Voids every market of `event_id` not voided yet; the event must be cancelled.
pub async fn void_event(
    svc: &Arc<Settlement>,
    reg: &Registry,
    event_id: Uuid,
    actor: AuditActor,
) -> Result<Vec<SettlementRow>, SettlementError> {
    let markets = {
        let client = svc.pool.get().await?;
        match sdb::event_cancelled(&client, event_id).await? {
            None => return Err(SettlementError::NotFound("event")),
            Some(false) => {
                return Err(SettlementError::conflict(
                    "invalid_transition",
                    "only a cancelled event has its markets voided",
                ))
            }
            Some(true) => sdb::event_markets_to_void(&client, event_id).await?,
        }
    };
    let mut out = Vec::with_capacity(markets.len());
    for market_id in markets {
        let r = OpenRequest {
            kind: Kind::Void,
            results: Vec::new(),
            void_after: None,
            reason: Some(REASON.into()),
        };
        let opened = open::open(svc, reg, market_id, r, actor.clone()).await?;
        out.push(opened.row);
    }
    Ok(out)
}

/// Opens the voids that a crash left unopened (start-up); answers how many events.
pub async fn resume(svc: &Arc<Settlement>, reg: &Registry) -> anyhow::Result<usize> {
    let events = {
        let client = svc.pool.get().await?;
        sdb::cancelled_events_to_void(&client, RESUME_EVENTS_MAX).await?
    };
    let system = AuditActor {
        user_id: None,
        client_ip: None,
    };
    for &event_id in &events {
        tracing::info!(event = %event_id, "voiding the markets of a cancelled event");
        void_event(svc, reg, event_id, system.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(events.len())
}
