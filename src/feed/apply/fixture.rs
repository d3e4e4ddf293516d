//! Fixtures: the event, its teams and markets written in one transaction, then started.
use super::*;

/// A fixture's market: its key, title and named prices.
type FixtureMarket = (FeedMarketKey, String, Vec<(String, Odds)>);

/// The fixture's markets checked before anything is written.
fn fixture_markets(state: &FeedContext, f: &Fixture) -> Result<Vec<FixtureMarket>, ApplyError> {
    if f.home.trim().is_empty()
        || f.away.trim().is_empty()
        || f.home.len() > 100
        || f.away.len() > 100
    {
        return Err(reject("team names must be 1 to 100 characters"));
    }
    let mut markets = Vec::with_capacity(f.markets.len());
    for m in &f.markets {
        let key = market_key(&m.market)?;
        let mut prices = Vec::with_capacity(m.selections.len());
        for p in &m.selections {
            prices.push((p.name.clone(), parse_odds(state, p)?));
        }
        if prices.is_empty() || prices.len() > state.selections_per_market_max {
            return Err(reject(
                "a market needs 1 to markets.selections_per_market_max selections",
            ));
        }
        let name = m
            .title
            .clone()
            .or_else(|| m.market.name.clone())
            .unwrap_or_else(|| key.market_type.as_str().to_string());
        markets.push((key, name, prices));
    }
    Ok(markets)
}

pub(super) async fn apply_fixture(
    state: &FeedContext,
    provider: &str,
    event_ref: &str,
    seq: i64,
    f: &Fixture,
    e: &mut SeqEntry,
) -> Result<(), ApplyError> {
    let markets = fixture_markets(state, f)?;
    let mut client = state.db.get().await.map_err(infra)?;
    let tx = client.transaction().await?;
    let sport_id = sql::sport_id(&tx, &f.sport)
        .await?
        .ok_or_else(|| reject(format!("unknown sport {}", f.sport)))?;
    let home = sql::team(&tx, sport_id, f.home.trim(), &slugify(&f.home)).await?;
    let away = sql::team(&tx, sport_id, f.away.trim(), &slugify(&f.away)).await?;
    let event_id = sql::upsert_event(
        &tx,
        provider,
        event_ref,
        sport_id,
        home,
        away,
        f.start_time,
        f.venue.as_deref(),
    )
    .await?;
    let mut created = Vec::new();
    for (key, name, prices) in &markets {
        let t = key.market_type.as_str();
        if sql::find_market(
            &tx,
            event_id,
            t,
            key.handicap,
            key.total_points,
            key.name.as_deref(),
        )
        .await?
        .is_some()
        {
            continue;
        }
        let id = sql::insert_market(&tx, event_id, t, name, key.handicap, key.total_points).await?;
        for (sel, odds) in prices {
            sql::insert_selection(&tx, id, sel, odds.value()).await?;
        }
        created.push(id);
    }
    sql::store_seq(&tx, provider, event_ref, seq).await?;
    tx.commit().await?;
    e.event = Some((event_id, f.sport.clone()));
    // Start the live actors: the event (with its markets) if it is not running yet, else
    // each new market, which the registry adds to its running event.
    if state.registry.running_event(event_id).is_none() {
        state.registry.event(event_id).await?;
    } else {
        for id in created {
            state.registry.market(id).await?;
        }
    }
    let data = json!({"event_id": event_id, "home": f.home, "away": f.away, "start_time": f.start_time, "venue": f.venue});
    state
        .registry
        .shared
        .hub
        .publish(&crate::broadcast::event_topic(event_id), "fixture", &data);
    state
        .registry
        .shared
        .hub
        .publish(&crate::broadcast::sport_topic(&f.sport), "fixture", &data);
    Ok(())
}

/// The markets a score change suspends in a sport (`[feed.suspend_on_score]`).
pub(super) fn score_filter(state: &FeedContext, sport: &str) -> FeedFilter {
    match state.feed.score_suspends(sport) {
        None => FeedFilter::All,
        Some(types) => FeedFilter::Types(
            types
                .iter()
                .filter_map(|t| t.parse::<MarketType>().ok())
                .collect(),
        ),
    }
}

/// `"Real Madrid"` → `"real-madrid"` (team slugs of feed-created teams).
pub fn slugify(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(100).collect()
}

pub(super) fn to_i32(v: u32) -> Result<i32, ApplyError> {
    i32::try_from(v).map_err(|_| reject("score out of range"))
}
