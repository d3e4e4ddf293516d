//! SQL of feed ingest: sequence numbers, fixtures (event, teams, markets), market look-up
//! by the feed's key, and the watchdog's queries.
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::domain::ids::{EventId, MarketId, SelectionId};

pub type DbResult<T> = Result<T, tokio_postgres::Error>;

/// The last applied seq of `(provider, event_ref)`, 0 when none.
pub async fn last_seq(c: &impl GenericClient, provider: &str, event_ref: &str) -> DbResult<i64> {
    let row = c
        .query_opt(
            "SELECT last_seq FROM feed_sequences WHERE provider = $1 AND event_ref = $2",
            &[&provider, &event_ref],
        )
        .await?;
    Ok(row.map(|r| r.get(0)).unwrap_or(0))
}

/// Records `seq` as applied (never moving backwards).
pub async fn store_seq(
    c: &impl GenericClient,
    provider: &str,
    event_ref: &str,
    seq: i64,
) -> DbResult<()> {
    c.execute(
        "INSERT INTO feed_sequences (provider, event_ref, last_seq) VALUES ($1, $2, $3)
         ON CONFLICT (provider, event_ref)
         DO UPDATE SET last_seq = GREATEST(feed_sequences.last_seq, EXCLUDED.last_seq)",
        &[&provider, &event_ref, &seq],
    )
    .await?;
    Ok(())
}

/// The engine's event for a provider's ref: id and sport slug.
pub async fn event_of_ref(
    c: &impl GenericClient,
    provider: &str,
    event_ref: &str,
) -> DbResult<Option<(EventId, String)>> {
    let row = c
        .query_opt(
            "SELECT e.id, s.slug FROM events e JOIN sports s ON s.id = e.sport_id
              WHERE e.provider = $1 AND e.provider_event_ref = $2",
            &[&provider, &event_ref],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// The engine's events of a provider's refs (those that have one), by ref.
pub async fn events_of_refs(
    c: &impl GenericClient,
    provider: &str,
    refs: &[&str],
) -> DbResult<std::collections::HashMap<String, EventId>> {
    Ok(c.query(
        "SELECT provider_event_ref, id FROM events
              WHERE provider = $1 AND provider_event_ref = ANY($2)",
        &[&provider, &refs],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

pub async fn sport_id(c: &impl GenericClient, slug: &str) -> DbResult<Option<Uuid>> {
    let row = c
        .query_opt("SELECT id FROM sports WHERE slug = $1", &[&slug])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The team of that name under the sport, created when missing.
pub async fn team(
    c: &impl GenericClient,
    sport_id: Uuid,
    name: &str,
    slug: &str,
) -> DbResult<Uuid> {
    let row = c
        .query_one(
            "INSERT INTO teams (sport_id, name, display_name, slug) VALUES ($1, $2, $2, $3)
             ON CONFLICT (sport_id, slug) DO UPDATE SET is_active = teams.is_active
             RETURNING id",
            &[&sport_id, &name, &slug],
        )
        .await?;
    Ok(row.get(0))
}

/// Creates or updates the event `(provider, event_ref)`; returns its id.
#[allow(clippy::too_many_arguments)]
pub async fn upsert_event(
    c: &impl GenericClient,
    provider: &str,
    event_ref: &str,
    sport_id: Uuid,
    home: Uuid,
    away: Uuid,
    start_time: DateTime<Utc>,
    venue: Option<&str>,
) -> DbResult<EventId> {
    let row = c
        .query_one(
            "INSERT INTO events (sport_id, home_team_id, away_team_id, start_time, venue, provider, provider_event_ref)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (provider, provider_event_ref)
                WHERE provider IS NOT NULL AND provider_event_ref IS NOT NULL
             DO UPDATE SET home_team_id = EXCLUDED.home_team_id, away_team_id = EXCLUDED.away_team_id,
                           start_time = EXCLUDED.start_time, venue = COALESCE(EXCLUDED.venue, events.venue)
             RETURNING id",
            &[&sport_id, &home, &away, &start_time, &venue, &provider, &event_ref],
        )
        .await?;
    Ok(row.get(0))
}

/// Finds a live market by type and line (`handicap` or `total_points`), and name for props.
pub async fn find_market(
    c: &impl GenericClient,
    event_id: EventId,
    market_type: &str,
    handicap: Option<Decimal>,
    total: Option<Decimal>,
    name: Option<&str>,
) -> DbResult<Option<MarketId>> {
    find(c, event_id, market_type, handicap, total, name, false).await
}

/// A market of the event by type, line and name: one still traded, or (`settled_too`) any
/// but a voided one.
async fn find(
    c: &impl GenericClient,
    event_id: EventId,
    market_type: &str,
    handicap: Option<Decimal>,
    total: Option<Decimal>,
    name: Option<&str>,
    settled_too: bool,
) -> DbResult<Option<MarketId>> {
    let row = c
        .query_opt(
            "SELECT id FROM markets
              WHERE event_id = $1 AND type = $2::text::market_type
                AND handicap IS NOT DISTINCT FROM $3 AND total_points IS NOT DISTINCT FROM $4
                AND ($5::text IS NULL OR name = $5)
                AND (status NOT IN ('voided', 'settled') OR ($6 AND status = 'settled'))
              ORDER BY created_at LIMIT 1",
            &[
                &event_id,
                &market_type,
                &handicap,
                &total,
                &name,
                &settled_too,
            ],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// A market of the event that a result may settle: any but a voided one (a settled market
/// is resettled by a corrected result).
pub async fn find_market_to_settle(
    c: &impl GenericClient,
    event_id: EventId,
    market_type: &str,
    handicap: Option<Decimal>,
    total: Option<Decimal>,
    name: Option<&str>,
) -> DbResult<Option<MarketId>> {
    find(c, event_id, market_type, handicap, total, name, true).await
}

/// Whether a trader holds the market from settlement by the feed.
pub async fn settlement_held(c: &impl GenericClient, market_id: MarketId) -> DbResult<bool> {
    let row = c
        .query_opt(
            "SELECT feed_settlement_held FROM markets WHERE id = $1",
            &[&market_id],
        )
        .await?;
    Ok(row.is_some_and(|r| r.get(0)))
}

/// Holds (or releases) the market from settlement by the feed; false when no such market.
pub async fn set_settlement_held(
    c: &impl GenericClient,
    market_id: MarketId,
    held: bool,
) -> DbResult<bool> {
    let n = c
        .execute(
            "UPDATE markets SET feed_settlement_held = $2 WHERE id = $1",
            &[&market_id, &held],
        )
        .await?;
    Ok(n == 1)
}

/// The selections of a market by name.
pub async fn selections_by_name(
    c: &impl GenericClient,
    market_id: MarketId,
) -> DbResult<Vec<(String, SelectionId)>> {
    let rows = c
        .query(
            "SELECT name, id FROM selections WHERE market_id = $1",
            &[&market_id],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub async fn insert_market(
    c: &impl GenericClient,
    event_id: EventId,
    market_type: &str,
    name: &str,
    handicap: Option<Decimal>,
    total: Option<Decimal>,
) -> DbResult<MarketId> {
    let row = c
        .query_one(
            "INSERT INTO markets (event_id, type, name, handicap, total_points)
             VALUES ($1, $2::text::market_type, $3, $4, $5) RETURNING id",
            &[&event_id, &market_type, &name, &handicap, &total],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn insert_selection(
    c: &impl GenericClient,
    market_id: MarketId,
    name: &str,
    odds: Decimal,
) -> DbResult<SelectionId> {
    // clock_timestamp(): selections keep their creation order (docs/live-markets.md).
    let row = c
        .query_one(
            "INSERT INTO selections (market_id, name, odds, created_at) VALUES ($1, $2, $3, clock_timestamp()) RETURNING id",
            &[&market_id, &name, &odds],
        )
        .await?;
    Ok(row.get(0))
}

/// The provider's scheduled and live events (the watchdog's scope), at most `max`.
pub async fn provider_open_events(
    c: &impl GenericClient,
    provider: &str,
    max: i64,
) -> DbResult<Vec<EventId>> {
    let rows = c
        .query(
            "SELECT id FROM events WHERE provider = $1 AND status IN ('scheduled', 'live', 'halftime')
              ORDER BY start_time LIMIT $2",
            &[&provider, &max],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A `system_events` row about a provider.
pub async fn record(
    c: &impl GenericClient,
    event_type: &str,
    severity: &str,
    message: &str,
    details: &serde_json::Value,
) -> DbResult<()> {
    c.execute(
        "INSERT INTO system_events (event_type, severity, message, details) VALUES ($1, $2::text::event_severity, $3, $4)",
        &[&event_type, &severity, &message, details],
    )
    .await?;
    Ok(())
}
