//! Reads behind WebSocket snapshots that the actors cannot answer: events that are over
//! (no actor) and the list of a sport's events (their live status is then asked of the actors).
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::domain::ids::{EventId, MarketId, SelectionId};
use crate::domain::odds::{display, Odds, OddsFormat};

/// A selection's price with every display form, serialized once for all subscribers.
pub fn price_json(id: SelectionId, name: &str, odds: Odds) -> Value {
    json!({"id": id, "name": name, "odds": odds,
           "american": display(odds, OddsFormat::American),
           "fractional": display(odds, OddsFormat::Fractional)})
}

/// Most events in a sport snapshot.
pub const SPORT_EVENTS_MAX: i64 = 500;

/// An event with score, status and every market with its selections' prices; `None` when
/// the event does not exist.
pub async fn event(
    client: &deadpool_postgres::Object,
    event_id: EventId,
) -> anyhow::Result<Option<Value>> {
    let Some(e) = client
        .query_opt(
            "SELECT e.id, s.slug, ht.name, at.name, e.start_time, e.status::text, e.period, e.clock,
                    e.home_score, e.away_score
               FROM events e JOIN sports s ON s.id = e.sport_id
               JOIN teams ht ON ht.id = e.home_team_id JOIN teams at ON at.id = e.away_team_id
              WHERE e.id = $1",
            &[&event_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let rows = client
        .query(
            "SELECT m.id, m.type::text, m.name, m.handicap, m.total_points, m.status::text, m.in_play,
                    sel.id, sel.name, sel.odds
               FROM markets m LEFT JOIN selections sel ON sel.market_id = m.id AND sel.is_active
              WHERE m.event_id = $1 AND m.status IN ('open', 'suspended', 'closed')
              ORDER BY m.created_at, m.id, sel.created_at, sel.id",
            &[&event_id],
        )
        .await?;
    let mut markets: Vec<Value> = Vec::new();
    let mut last: Option<MarketId> = None;
    for r in rows {
        let id: MarketId = r.get(0);
        if last != Some(id) {
            last = Some(id);
            markets.push(json!({"id": id, "type": r.get::<_, String>(1), "name": r.get::<_, String>(2),
                "handicap": r.get::<_, Option<Decimal>>(3), "total_points": r.get::<_, Option<Decimal>>(4),
                "status": r.get::<_, String>(5), "in_play": r.get::<_, bool>(6), "selections": []}));
        }
        if let (Some(sid), Some(name), Some(odds)) = (
            r.get::<_, Option<SelectionId>>(7),
            r.get::<_, Option<String>>(8),
            r.get::<_, Option<Decimal>>(9),
        ) {
            if let (Ok(odds), Some(Value::Array(sels))) = (
                Odds::from_decimal(odds, crate::domain::odds::ODDS_COLUMN_MAX),
                markets.last_mut().and_then(|m| m.get_mut("selections")),
            ) {
                sels.push(price_json(sid, &name, odds));
            }
        }
    }
    Ok(Some(json!({
        "event_id": e.get::<_, Uuid>(0), "sport": e.get::<_, String>(1),
        "home": e.get::<_, String>(2), "away": e.get::<_, String>(3),
        "start_time": e.get::<_, chrono::DateTime<chrono::Utc>>(4), "status": e.get::<_, String>(5),
        "period": e.get::<_, Option<String>>(6), "clock": e.get::<_, Option<String>>(7),
        "home_score": e.get::<_, i32>(8), "away_score": e.get::<_, i32>(9),
        "markets": markets,
    })))
}

/// A sport's upcoming and live events with score, status and open market counts; `None`
/// when no active sport has that slug.
pub async fn sport(
    client: &deadpool_postgres::Object,
    slug: &str,
) -> anyhow::Result<Option<Value>> {
    if client
        .query_opt(
            "SELECT 1 FROM sports WHERE slug = $1 AND is_active",
            &[&slug],
        )
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT e.id, ht.name, at.name, e.start_time, e.status::text, e.period, e.clock,
                    e.home_score, e.away_score,
                    (SELECT count(*) FROM markets m WHERE m.event_id = e.id AND m.status = 'open')
               FROM events e JOIN sports s ON s.id = e.sport_id
               JOIN teams ht ON ht.id = e.home_team_id JOIN teams at ON at.id = e.away_team_id
              WHERE s.slug = $1 AND e.status IN ('scheduled', 'live', 'halftime', 'suspended')
              ORDER BY (e.status IN ('live', 'halftime')) DESC, e.start_time, e.id LIMIT $2",
            &[&slug, &SPORT_EVENTS_MAX],
        )
        .await?;
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"event_id": r.get::<_, Uuid>(0), "home": r.get::<_, String>(1), "away": r.get::<_, String>(2),
                   "start_time": r.get::<_, chrono::DateTime<chrono::Utc>>(3), "status": r.get::<_, String>(4),
                   "period": r.get::<_, Option<String>>(5), "clock": r.get::<_, Option<String>>(6),
                   "home_score": r.get::<_, i32>(7), "away_score": r.get::<_, i32>(8),
                   "open_markets": r.get::<_, i64>(9)})
        })
        .collect();
    Ok(Some(json!({"sport": slug, "events": events})))
}
