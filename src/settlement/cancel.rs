//! A cancelled event voids every one of its markets: each open bet on it is refunded
//! (parlays reduced to their other legs), exactly once, by the same void settlement a
//! trader's `POST .../void` runs. Both doors use it: a trader's status change and a feed's
//! `status: cancelled`. It is idempotent (a market already voided is skipped) and
//! resumable: the voids of an event cancelled just before a crash are opened on the next
//! start ([`resume`]), and each void's bookings resume like any settlement.
use std::sync::Arc;

use super::error::SettlementError;
use super::open::{self, Kind, OpenRequest};
use super::Settlement;
use crate::actors::{AuditActor, Registry};
use crate::db::settlement::{self as sdb, SettlementRow};
use crate::domain::ids::EventId;

/// The reason recorded on every void of a cancelled event.
pub const REASON: &str = "event cancelled";

/// Voids every market of `event_id` not voided yet; the event must be cancelled.
pub async fn void_event(
    svc: &Arc<Settlement>,
    reg: &Registry,
    event_id: EventId,
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

/// Opens the voids that a crash left unopened (start-up), every cancelled event in pages of
/// `settlement.batch_bets_max`; answers how many events were voided. An event whose voids
/// cannot be opened now (a settlement of one of its markets still running) is logged and
/// left for the next start: it never stops the engine from starting.
pub async fn resume(svc: &Arc<Settlement>, reg: &Registry) -> anyhow::Result<usize> {
    let page = i64::try_from(svc.settings.batch_bets_max.max(1)).unwrap_or(1000);
    let system = AuditActor {
        user_id: None,
        client_ip: None,
    };
    let (mut after, mut voided) = (None, 0);
    loop {
        let events = {
            let client = svc.pool.get().await?;
            sdb::cancelled_events_to_void(&client, after, page).await?
        };
        let Some(&last) = events.last() else {
            return Ok(voided);
        };
        for &event_id in &events {
            tracing::info!(event = %event_id, "voiding the markets of a cancelled event");
            match void_event(svc, reg, event_id, system.clone()).await {
                Ok(_) => voided += 1,
                Err(e) => {
                    tracing::warn!(event = %event_id, error = %e, "voids of a cancelled event not opened; tried again at the next start")
                }
            }
        }
        after = Some(last);
    }
}
