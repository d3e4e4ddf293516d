//! The state a subscriber gets first. An event's snapshot comes from its actors (the same
//! live state the deltas come from, so nothing between the subscription's seq and the
//! snapshot is lost); an event that is over comes from Postgres; a sport's snapshot lists
//! its events from Postgres with each running event's status and score from its actor.
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;

use serde_json::{json, Value};

use super::protocol::Topic;
use crate::actors::event::GetEvent;
use crate::actors::market::{GetMarket, MarketView};
use crate::actors::AskError;
use crate::db::snapshot::price_json;
use crate::domain::ids::EventId;
use crate::domain::MarketStatus;
use crate::state::AppState;

pub use crate::state::snapshot_loads::{Snapshot, SnapshotError};

fn unavailable(e: impl std::fmt::Display) -> SnapshotError {
    tracing::warn!(error = %e, "snapshot unavailable");
    SnapshotError::Unavailable
}

/// The topic's snapshot data, serialized: read after this call, and shared with the
/// subscribers who ask for it at the same time (`state::snapshot_loads`).
pub async fn shared(state: &web::Data<AppState>, topic: &Topic) -> Snapshot {
    let loads = state.ws.snapshots.clone();
    let (state, name) = (state.clone(), topic.name());
    let topic = topic.clone();
    let load = move || {
        let (state, topic) = (state.clone(), topic.clone());
        async move {
            let data = build(&state, &topic).await?;
            serde_json::value::to_raw_value(&data)
                .map(Arc::from)
                .map_err(unavailable)
        }
    };
    loads.get(&name, load).await
}

pub async fn build(state: &AppState, topic: &Topic) -> Result<Value, SnapshotError> {
    match topic {
        Topic::Event(id) => event(state, *id).await,
        Topic::Sport(slug) => sport(state, slug).await,
        // The ticker keeps no history: its snapshot is empty and bets follow as they come.
        Topic::Trading => Ok(json!({"bets": []})),
    }
}

async fn event(state: &AppState, id: EventId) -> Result<Value, SnapshotError> {
    let reg = &state.registry;
    let running = match reg.event(id).await {
        Ok(addr) => addr,
        // Owned by another node: Postgres holds every change it acknowledged, and its
        // later messages reach this node's topic through the Redis bridge.
        Err(_) if !reg.cluster().owns(id) => None,
        Err(e) => return Err(unavailable(e)),
    };
    let Some(addr) = running else {
        let client = state.db.get().await.map_err(unavailable)?;
        return crate::db::snapshot::event(&client, id)
            .await
            .map_err(unavailable)?
            .ok_or(SnapshotError::Unknown);
    };
    let deadline = Instant::now() + reg.ask_timeout();
    let (ev, market_addrs) = patiently(deadline, || reg.ask(&addr, |reply| GetEvent { reply }))
        .await
        .map_err(|e| unavailable(format!("{e:?}")))?;
    let mut markets = Vec::with_capacity(market_addrs.len());
    for m in market_addrs {
        match patiently(deadline, || reg.ask(&m, |reply| GetMarket { reply })).await {
            Ok(view) if !matches!(view.status, MarketStatus::Settled | MarketStatus::Voided) => {
                markets.push(market_json(&view))
            }
            Ok(_) | Err(AskError::Gone) => {}
            Err(e) => return Err(unavailable(format!("{e:?}"))),
        }
    }
    Ok(json!({
        "event_id": ev.id, "sport": ev.sport_slug, "home": ev.home_team_name, "away": ev.away_team_name,
        "start_time": ev.start_time, "status": ev.status, "period": ev.period, "clock": ev.clock,
        "home_score": ev.home_score, "away_score": ev.away_score, "markets": markets,
    }))
}

/// Pause between attempts when an actor's mailbox is full.
const BUSY_RETRY_PAUSE: Duration = Duration::from_millis(2);

/// Asks again while the actor's mailbox is full, until `deadline`: thousands of clients
/// subscribing at once (a big match starting) must get their snapshots a little later, not an
/// `unavailable` error, and the mailbox bound still holds.
async fn patiently<R, F, Fut>(deadline: Instant, mut ask_once: F) -> Result<R, AskError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<R, AskError>>,
{
    loop {
        match ask_once().await {
            Err(AskError::Busy) if Instant::now() + BUSY_RETRY_PAUSE < deadline => {
                tokio::time::sleep(BUSY_RETRY_PAUSE).await;
            }
            other => return other,
        }
    }
}

/// A market as snapshots show it: every price with its display forms.
fn market_json(m: &MarketView) -> Value {
    let selections: Vec<Value> = m
        .selections
        .iter()
        .map(|s| price_json(s.id, &s.name, s.odds))
        .collect();
    json!({"id": m.id, "type": m.market_type, "name": m.name, "handicap": m.handicap,
           "total_points": m.total_points, "status": m.status, "in_play": m.in_play,
           "feed_suspended": m.feed_suspended, "selections": selections})
}

async fn sport(state: &AppState, slug: &str) -> Result<Value, SnapshotError> {
    let client = state.db.get().await.map_err(unavailable)?;
    let mut snap = crate::db::snapshot::sport(&client, slug)
        .await
        .map_err(unavailable)?
        .ok_or(SnapshotError::Unknown)?;
    drop(client);
    let timeout = state.registry.ask_timeout();
    if let Some(Value::Array(events)) = snap.get_mut("events") {
        for e in events.iter_mut() {
            let Some(id) = e
                .get("event_id")
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<EventId>().ok())
            else {
                continue;
            };
            let Some(addr) = state.registry.running_event(id) else {
                continue;
            };
            if let Ok((ev, _)) = state
                .registry
                .ask_within(&addr, timeout, |reply| GetEvent { reply })
                .await
            {
                e["status"] = json!(ev.status);
                e["period"] = json!(ev.period);
                e["clock"] = json!(ev.clock);
                e["home_score"] = json!(ev.home_score);
                e["away_score"] = json!(ev.away_score);
            }
        }
    }
    Ok(snap)
}
