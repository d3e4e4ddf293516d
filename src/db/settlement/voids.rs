//! Cancelled events and the markets their voids still have to reach.
use super::*;

use crate::domain::ids::{EventId, MarketId};

/// The markets of an event without a void settlement yet (a cancelled event voids them
/// all; its actor may have set their status already, but not refunded their bets).
pub async fn event_markets_to_void<C: GenericClient>(
    c: &C,
    event_id: EventId,
) -> Result<Vec<MarketId>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT m.id FROM markets m WHERE m.event_id = $1 AND NOT EXISTS
                 (SELECT 1 FROM market_settlements s WHERE s.market_id = m.id AND s.kind = 'void')
             ORDER BY m.id",
            &[&event_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether the event's status is `cancelled` (`None`: no such event).
pub async fn event_cancelled<C: GenericClient>(
    c: &C,
    event_id: EventId,
) -> Result<Option<bool>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT status = 'cancelled' FROM events WHERE id = $1",
            &[&event_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Cancelled events after `after` (by id) with a market whose void settlement was never
/// recorded (a crash between the cancellation and its voids), at most `limit`.
pub async fn cancelled_events_to_void<C: GenericClient>(
    c: &C,
    after: Option<EventId>,
    limit: i64,
) -> Result<Vec<EventId>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT e.id FROM events e
              WHERE e.status = 'cancelled' AND ($1::uuid IS NULL OR e.id > $1)
                AND EXISTS (SELECT 1 FROM markets m WHERE m.event_id = e.id AND NOT EXISTS
                     (SELECT 1 FROM market_settlements s
                      WHERE s.market_id = m.id AND s.kind = 'void'))
              ORDER BY e.id LIMIT $2",
            &[&after, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
