//! SQL of feed ingest: sequence numbers, fixtures, scores, statuses, market suspensions and
//! prices, all inside the caller's transaction so a message and its `seq` commit together.
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use rust_decimal::Decimal;
use uuid::Uuid;

pub type DbResult<T> = Result<T, tokio_postgres::Error>;

/// Locks the provider's sequence row for an event (creating it at 0) and returns last_seq.
pub async fn lock_seq(tx: &Transaction<'_>, provider: &str, event_ref: &str) -> DbResult<i64> {
    tx.execute(
        "INSERT INTO feed_sequences (provider, event_ref, last_seq) VALUES ($1, $2, 0)
         ON CONFLICT (provider, event_ref) DO NOTHING",
        &[&provider, &event_ref],
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT last_seq FROM feed_sequences WHERE provider = $1 AND event_ref = $2 FOR UPDATE",
            &[&provider, &event_ref],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn set_seq(
    tx: &Transaction<'_>,
    provider: &str,
    event_ref: &str,
    seq: i64,
) -> DbResult<()> {
    tx.execute(
        "UPDATE feed_sequences SET last_seq = $3 WHERE provider = $1 AND event_ref = $2",
        &[&provider, &event_ref, &seq],
    )
    .await?;
    Ok(())
}

/// The live fields of a feed's event.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub id: Uuid,
    pub sport_slug: String,
    pub status: String,
    pub home_score: i32,
    pub away_score: i32,
    pub period: Option<String>,
    pub clock: Option<String>,
}

pub async fn event_by_ref(
    tx: &Transaction<'_>,
    provider: &str,
    event_ref: &str,
) -> DbResult<Option<FeedEvent>> {
    let row = tx
        .query_opt(
            "SELECT e.id, s.slug, e.status::text, e.home_score, e.away_score, e.period, e.clock
               FROM events e JOIN sports s ON s.id = e.sport_id
              WHERE e.provider = $1 AND e.provider_event_ref = $2
              FOR UPDATE OF e",
            &[&provider, &event_ref],
        )
        .await?;
    Ok(row.map(|r| FeedEvent {
        id: r.get(0),
        sport_slug: r.get(1),
        status: r.get(2),
        home_score: r.get(3),
        away_score: r.get(4),
        period: r.get(5),
        clock: r.get(6),
    }))
}

pub async fn sport_id(tx: &Transaction<'_>, slug: &str) -> DbResult<Option<Uuid>> {
    let row = tx
        .query_opt("SELECT id FROM sports WHERE slug = $1", &[&slug])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The team of that name under the sport, created when missing.
pub async fn team(tx: &Transaction<'_>, sport_id: Uuid, name: &str, slug: &str) -> DbResult<Uuid> {
    let row = tx
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
    tx: &Transaction<'_>,
    provider: &str,
    event_ref: &str,
    sport_id: Uuid,
    home: Uuid,
    away: Uuid,
    start_time: DateTime<Utc>,
    venue: Option<&str>,
) -> DbResult<Uuid> {
    let row = tx
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

/// A market of an event as the feed addresses it.
#[derive(Debug, Clone)]
pub struct FeedMarket {
    pub id: Uuid,
    pub status: String,
    pub feed_suspended: bool,
}

/// Finds a market by type and line (`handicap` or `total_points`), and name for props.
pub async fn find_market(
    tx: &Transaction<'_>,
    event_id: Uuid,
    market_type: &str,
    handicap: Option<Decimal>,
    total: Option<Decimal>,
    name: Option<&str>,
) -> DbResult<Option<FeedMarket>> {
    let row = tx
        .query_opt(
            "SELECT id, status::text, feed_suspended FROM markets
              WHERE event_id = $1 AND type = $2::text::market_type
                AND handicap IS NOT DISTINCT FROM $3 AND total_points IS NOT DISTINCT FROM $4
                AND ($5::text IS NULL OR name = $5) AND status <> 'voided'
              ORDER BY created_at LIMIT 1",
            &[&event_id, &market_type, &handicap, &total, &name],
        )
        .await?;
    Ok(row.map(|r| FeedMarket {
        id: r.get(0),
        status: r.get(1),
        feed_suspended: r.get(2),
    }))
}

pub async fn insert_market(
    tx: &Transaction<'_>,
    event_id: Uuid,
    market_type: &str,
    name: &str,
    handicap: Option<Decimal>,
    total: Option<Decimal>,
    in_play: bool,
) -> DbResult<Uuid> {
    let row = tx
        .query_one(
            "INSERT INTO markets (event_id, type, name, handicap, total_points, in_play)
             VALUES ($1, $2::text::market_type, $3, $4, $5, $6) RETURNING id",
            &[&event_id, &market_type, &name, &handicap, &total, &in_play],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn insert_selection(
    tx: &Transaction<'_>,
    market_id: Uuid,
    name: &str,
    odds: Decimal,
) -> DbResult<Uuid> {
    let row = tx
        .query_one(
            "INSERT INTO selections (market_id, name, odds) VALUES ($1, $2, $3) RETURNING id",
            &[&market_id, &name, &odds],
        )
        .await?;
    Ok(row.get(0))
}

/// Sets a selection's price by name; `None` when the market has no such selection.
pub async fn set_price(
    tx: &Transaction<'_>,
    market_id: Uuid,
    name: &str,
    odds: Decimal,
) -> DbResult<Option<Uuid>> {
    let row = tx
        .query_opt(
            "UPDATE selections SET odds = $3 WHERE market_id = $1 AND name = $2 RETURNING id",
            &[&market_id, &name, &odds],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

pub async fn set_score(
    tx: &Transaction<'_>,
    event_id: Uuid,
    home: i32,
    away: i32,
    period: Option<&str>,
    clock: Option<&str>,
) -> DbResult<()> {
    tx.execute(
        "UPDATE events SET home_score = $2, away_score = $3,
                period = COALESCE($4, period), clock = COALESCE($5, clock)
          WHERE id = $1",
        &[&event_id, &home, &away, &period, &clock],
    )
    .await?;
    Ok(())
}

pub async fn set_status(
    tx: &Transaction<'_>,
    event_id: Uuid,
    status: &str,
    period: Option<&str>,
    clock: Option<&str>,
) -> DbResult<()> {
    tx.execute(
        "UPDATE events SET status = $2::text::event_status,
                period = COALESCE($3, period), clock = COALESCE($4, clock)
          WHERE id = $1",
        &[&event_id, &status, &period, &clock],
    )
    .await?;
    if status == "live" {
        tx.execute(
            "UPDATE markets SET in_play = true WHERE event_id = $1",
            &[&event_id],
        )
        .await?;
    }
    Ok(())
}

/// Suspends the event's open markets (all, or those of `types`), marking the suspension as
/// the feed's; a market a trader suspended is left as it is. Returns the suspended ids.
pub async fn suspend_markets(
    tx: &Transaction<'_>,
    event_id: Uuid,
    types: Option<&[String]>,
    ids: Option<&[Uuid]>,
    max: i64,
) -> DbResult<Vec<Uuid>> {
    let types: Option<Vec<String>> = types.map(|t| t.to_vec());
    let ids: Option<Vec<Uuid>> = ids.map(|t| t.to_vec());
    let rows = tx
        .query(
            "UPDATE markets SET status = 'suspended', feed_suspended = true
              WHERE id IN (SELECT id FROM markets
                            WHERE event_id = $1 AND status = 'open'
                              AND ($2::text[] IS NULL OR type::text = ANY($2))
                              AND ($3::uuid[] IS NULL OR id = ANY($3))
                            LIMIT $4)
             RETURNING id",
            &[&event_id, &types, &ids, &max],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Reopens a market only if the feed suspended it (never a trader's suspension).
pub async fn reopen_feed_suspended(tx: &Transaction<'_>, market_id: Uuid) -> DbResult<bool> {
    let n = tx
        .execute(
            "UPDATE markets SET status = 'open', feed_suspended = false
              WHERE id = $1 AND status = 'suspended' AND feed_suspended",
            &[&market_id],
        )
        .await?;
    Ok(n > 0)
}

/// Closes every open or suspended market of a finished or cancelled event.
pub async fn close_markets(tx: &Transaction<'_>, event_id: Uuid) -> DbResult<Vec<Uuid>> {
    let rows = tx
        .query(
            "UPDATE markets SET status = 'closed', feed_suspended = false
              WHERE event_id = $1 AND status IN ('open', 'suspended') RETURNING id",
            &[&event_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Watchdog: suspends every open market of the provider's scheduled or live events and
/// records a `system_events` entry, in one transaction. Returns (market, event, sport slug).
pub async fn suspend_provider_markets(
    client: &mut deadpool_postgres::Object,
    provider: &str,
    silent_ms: i64,
    max: i64,
) -> DbResult<Vec<(Uuid, Uuid, String)>> {
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "WITH hit AS (
                SELECT m.id FROM markets m JOIN events e ON e.id = m.event_id
                 WHERE e.provider = $1 AND e.status IN ('scheduled', 'live', 'halftime')
                   AND m.status = 'open'
                 LIMIT $2)
             UPDATE markets m SET status = 'suspended', feed_suspended = true
               FROM hit, events e, sports s
              WHERE m.id = hit.id AND e.id = m.event_id AND s.id = e.sport_id
             RETURNING m.id, e.id, s.slug",
            &[&provider, &max],
        )
        .await?;
    let out: Vec<(Uuid, Uuid, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let details = serde_json::json!({"provider": provider, "silent_ms": silent_ms, "markets_suspended": out.len()});
    tx.execute(
        "INSERT INTO system_events (event_type, severity, message, details)
         VALUES ('feed_provider_silent', 'warning', $1, $2)",
        &[
            &format!(
                "feed provider {provider} silent for {silent_ms} ms; its markets are suspended"
            ),
            &details,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}

/// Records that a silent provider spoke again.
pub async fn provider_back(client: &deadpool_postgres::Object, provider: &str) -> DbResult<()> {
    let details = serde_json::json!({"provider": provider});
    client
        .execute(
            "INSERT INTO system_events (event_type, severity, message, details)
             VALUES ('feed_provider_back', 'info', $1, $2)",
            &[
                &format!("feed provider {provider} is sending again"),
                &details,
            ],
        )
        .await?;
    Ok(())
}
