//! SQL of the catalogue: creating sports, leagues, teams and events (answered as the
//! stored row, `to_jsonb`), the public listings and full-text search, the caller's odds
//! format, and reading an event's markets straight from Postgres when no actor holds it.
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::domain::ids::{EventId, MarketId, SelectionId, UserId};
use crate::domain::OddsFormat;

/// A new sport (API body: the seed's column names).
pub struct NewSport<'a> {
    pub name: &'a str,
    pub display_name: &'a str,
    pub slug: &'a str,
    pub icon_url: Option<&'a str>,
    pub sort_order: i32,
}

pub async fn insert_sport(c: &impl GenericClient, s: &NewSport<'_>) -> anyhow::Result<Value> {
    let row = c
        .query_one(
            "INSERT INTO sports (name, display_name, slug, icon_url, sort_order)
             VALUES ($1, $2, $3, $4, $5) RETURNING to_jsonb(sports.*)",
            &[
                &s.name,
                &s.display_name,
                &s.slug,
                &s.icon_url,
                &s.sort_order,
            ],
        )
        .await?;
    Ok(row.get(0))
}

pub struct NewLeague<'a> {
    pub sport_id: Uuid,
    pub name: &'a str,
    pub display_name: &'a str,
    pub slug: &'a str,
    pub country_code: Option<&'a str>,
    pub season: Option<&'a str>,
}

pub async fn insert_league(c: &impl GenericClient, l: &NewLeague<'_>) -> anyhow::Result<Value> {
    let row = c
        .query_one(
            "INSERT INTO leagues (sport_id, name, display_name, slug, country_code, season)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING to_jsonb(leagues.*)",
            &[
                &l.sport_id,
                &l.name,
                &l.display_name,
                &l.slug,
                &l.country_code,
                &l.season,
            ],
        )
        .await?;
    Ok(row.get(0))
}

pub struct NewTeam<'a> {
    pub sport_id: Uuid,
    pub league_id: Option<Uuid>,
    pub name: &'a str,
    pub display_name: &'a str,
    pub slug: &'a str,
    pub abbreviation: Option<&'a str>,
    pub city: Option<&'a str>,
}

pub async fn insert_team(c: &impl GenericClient, t: &NewTeam<'_>) -> anyhow::Result<Value> {
    let row = c
        .query_one(
            "INSERT INTO teams (sport_id, league_id, name, display_name, slug, abbreviation, city)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING to_jsonb(teams.*)",
            &[
                &t.sport_id,
                &t.league_id,
                &t.name,
                &t.display_name,
                &t.slug,
                &t.abbreviation,
                &t.city,
            ],
        )
        .await?;
    Ok(row.get(0))
}

pub struct NewEvent<'a> {
    pub sport_id: Uuid,
    pub league_id: Option<Uuid>,
    pub home_team_id: Uuid,
    pub away_team_id: Uuid,
    pub start_time: DateTime<Utc>,
    pub venue: Option<&'a str>,
}

/// Inserts an event; answers its id and row (without the search document). The teams must
/// belong to the event's sport.
pub async fn insert_event(
    c: &impl GenericClient,
    e: &NewEvent<'_>,
) -> anyhow::Result<Option<(EventId, Value)>> {
    let row = c
        .query_opt(
            "INSERT INTO events (sport_id, league_id, home_team_id, away_team_id, start_time, venue)
             SELECT $1, $2, $3, $4, $5, $6
             WHERE (SELECT count(*) FROM teams WHERE id IN ($3, $4) AND sport_id = $1) = 2
             RETURNING id, to_jsonb(events.*) - 'search_document'",
            &[&e.sport_id, &e.league_id, &e.home_team_id, &e.away_team_id, &e.start_time, &e.venue],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Active sports, in display order.
pub async fn list_sports(c: &impl GenericClient) -> anyhow::Result<Vec<Value>> {
    let rows = c
        .query(
            "SELECT jsonb_build_object('id', id, 'name', name, 'display_name', display_name,
                    'slug', slug, 'icon_url', icon_url, 'sort_order', sort_order)
             FROM sports WHERE is_active ORDER BY sort_order, name",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub async fn sport_id_by_slug(c: &impl GenericClient, slug: &str) -> anyhow::Result<Option<Uuid>> {
    let row = c
        .query_opt(
            "SELECT id FROM sports WHERE slug = $1 AND is_active",
            &[&slug],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// One row of a sport's event listing (`get_events_with_markets`).
pub struct EventListRow {
    pub event_id: EventId,
    pub home_team_name: String,
    pub away_team_name: String,
    pub start_time: DateTime<Utc>,
    pub status: String,
    pub market_count: i64,
    /// The event's league (events without one have none): the trading console's tree.
    pub league_id: Option<Uuid>,
    pub league_name: Option<String>,
}

/// A sport's events whose status is one of `statuses`, live ones (in play) first, then by
/// start time (the id breaks ties, so pages neither repeat nor skip).
pub async fn events_page(
    c: &impl GenericClient,
    sport_id: Uuid,
    statuses: &[&str],
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<EventListRow>> {
    let rows = c
        .query(
            "SELECT e.id, ht.display_name, awt.display_name, e.start_time, e.status::text,
                    (SELECT count(*) FROM markets m WHERE m.event_id = e.id AND m.is_active),
                    e.league_id, l.display_name
               FROM events e
               JOIN teams ht ON e.home_team_id = ht.id
               JOIN teams awt ON e.away_team_id = awt.id
               LEFT JOIN leagues l ON l.id = e.league_id
              WHERE e.sport_id = $1 AND e.status::text = ANY($2)
              ORDER BY (e.status IN ('live', 'halftime')) DESC, e.start_time, e.id
              LIMIT $3 OFFSET $4",
            &[&sport_id, &statuses, &limit, &offset],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| EventListRow {
            event_id: r.get(0),
            home_team_name: r.get(1),
            away_team_name: r.get(2),
            start_time: r.get(3),
            status: r.get(4),
            market_count: r.get(5),
            league_id: r.get(6),
            league_name: r.get(7),
        })
        .collect())
}

/// Teams matching `q` (the `idx_teams_search` expression, repeated exactly).
pub async fn search_teams(
    c: &impl GenericClient,
    q: &str,
    limit: i64,
) -> anyhow::Result<Vec<Value>> {
    let rows = c
        .query(
            "SELECT jsonb_build_object('id', t.id, 'name', t.name, 'display_name', t.display_name,
                    'slug', t.slug, 'sport_id', t.sport_id, 'league_id', t.league_id)
             FROM teams t
             WHERE to_tsvector('english', name || ' ' || display_name) @@ plainto_tsquery('english', $1)
               AND t.is_active
             ORDER BY ts_rank(to_tsvector('english', name || ' ' || display_name),
                              plainto_tsquery('english', $1)) DESC, t.display_name
             LIMIT $2",
            &[&q, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Upcoming and live events matching `q` (`events.search_document`, `idx_events_search`).
pub async fn search_events(
    c: &impl GenericClient,
    q: &str,
    limit: i64,
) -> anyhow::Result<Vec<Value>> {
    let rows = c
        .query(
            "SELECT jsonb_build_object('id', e.id, 'sport_id', e.sport_id, 'start_time', e.start_time,
                    'status', e.status, 'home_team_name', ht.display_name,
                    'away_team_name', awt.display_name)
             FROM events e
             JOIN teams ht ON ht.id = e.home_team_id JOIN teams awt ON awt.id = e.away_team_id
             WHERE e.search_document @@ plainto_tsquery('english', $1)
               AND e.status NOT IN ('finished', 'cancelled')
             ORDER BY e.start_time, e.id
             LIMIT $2",
            &[&q, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The user's chosen odds format (none: no preferences row).
pub async fn user_odds_format(
    c: &impl GenericClient,
    user_id: UserId,
) -> anyhow::Result<Option<OddsFormat>> {
    let row = c
        .query_opt(
            "SELECT odds_format::text FROM user_preferences WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
    Ok(row.and_then(|r| r.get::<_, String>(0).parse().ok()))
}

/// A market of a finished event, read from Postgres.
pub struct StoredMarket {
    pub id: MarketId,
    pub market_type: String,
    pub name: String,
    pub handicap: Option<Decimal>,
    pub total_points: Option<Decimal>,
    pub status: String,
    pub in_play: bool,
    pub selections: Vec<(SelectionId, String, Decimal, Option<String>)>,
}

pub async fn stored_markets(
    c: &impl GenericClient,
    event_id: EventId,
) -> anyhow::Result<Vec<StoredMarket>> {
    let rows = c
        .query(
            "SELECT id, type::text, name, handicap, total_points, status::text, in_play
             FROM markets WHERE event_id = $1 ORDER BY created_at, id",
            &[&event_id],
        )
        .await?;
    let mut out: Vec<StoredMarket> = rows
        .iter()
        .map(|r| StoredMarket {
            id: r.get(0),
            market_type: r.get(1),
            name: r.get(2),
            handicap: r.get(3),
            total_points: r.get(4),
            status: r.get(5),
            in_play: r.get(6),
            selections: Vec::new(),
        })
        .collect();
    let ids: Vec<MarketId> = out.iter().map(|m| m.id).collect();
    let sels = c
        .query(
            "SELECT market_id, id, name, odds, result::text FROM selections
             WHERE market_id = ANY($1) ORDER BY created_at, id",
            &[&ids],
        )
        .await?;
    for r in sels {
        let market_id: MarketId = r.get(0);
        if let Some(m) = out.iter_mut().find(|m| m.id == market_id) {
            m.selections.push((r.get(1), r.get(2), r.get(3), r.get(4)));
        }
    }
    Ok(out)
}
