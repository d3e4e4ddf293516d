//! Applying feed messages to live state. Messages of one `(provider, event_ref)` are applied
//! one at a time in `seq` order ([`super::sequencer`]). A fixture is written to Postgres in
//! one transaction with its `seq` and its actors are started; every other message goes to
//! the event's actor (scores, bet stops, statuses) or the market's actor (odds), which
//! change memory, publish the deltas and hand back their durability; the `seq` is stored
//! once every change is durable.
//!
//! A message that is well formed but cannot apply (unknown sport, market or selection, a
//! forbidden status change, a market a trader suspended) is `rejected`: its `seq` is
//! consumed, nothing changes, the reason is reported. Infrastructure failures (Postgres,
//! a busy actor) fail the push with 503 and the `seq` is not stored: the provider retries.
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::messages::{Body, FeedMessage, Fixture, MarketRef, OddsUpdate, Price, Status};
use super::sequencer::{classify, SeqEntry, Verdict};
use super::FeedContext;
use crate::actors::event::feed::{FeedBetStop, FeedScore, SuspendAnswers};
use crate::actors::event::{ScoreUpdate, SetScore};
use crate::actors::market::feed::{FeedFilter, FeedMarketKey, FeedPrices};
use crate::actors::writer::FeedSeqMark;
use crate::actors::{ask, AuditActor, Durable, MarketError};
use crate::app::events::EventError;
use crate::db::feed as sql;
use crate::domain::{EventStatus, MarketType, Odds};
use crate::settlement::error::SettlementError;

/// The answer for one message of a push.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_ref: Option<String>,
    /// `applied`, `gap` (applied, earlier messages missing), `duplicate`, `rejected`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a message did not apply.
pub enum ApplyError {
    /// The message's fault: reported, `seq` consumed.
    Reject(String),
    /// The engine's: the push fails with 503, `seq` not consumed.
    Infra(String),
}

fn reject(msg: impl Into<String>) -> ApplyError {
    ApplyError::Reject(msg.into())
}

fn infra(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Infra(e.to_string())
}

impl From<tokio_postgres::Error> for ApplyError {
    fn from(e: tokio_postgres::Error) -> Self {
        let data = e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("23") || c.starts_with("22") || c == "P0001"
        });
        match (data, e.as_db_error()) {
            (true, Some(db)) => ApplyError::Reject(db.message().to_string()),
            _ => ApplyError::Infra(crate::db::describe(&e)),
        }
    }
}

impl From<crate::actors::LoadError> for ApplyError {
    fn from(e: crate::actors::LoadError) -> Self {
        ApplyError::Infra(e.to_string())
    }
}

impl From<crate::actors::AskError> for ApplyError {
    fn from(e: crate::actors::AskError) -> Self {
        ApplyError::Infra(format!("live state did not answer: {e:?}"))
    }
}

/// The feed's identity in live-state changes (no user; audit rows show the system).
fn feed_actor() -> AuditActor {
    AuditActor {
        user_id: None,
        client_ip: None,
    }
}

/// Applies one sequenced message (not a heartbeat). `Err` is an infrastructure failure:
/// nothing is acknowledged and the provider retries. An `odds` message's durability (its
/// prices and its seq, queued together in the writer) is left in `pending`: the caller awaits
/// it with [`wait_pending`] before acknowledging the push, so the next message need not wait.
pub async fn apply_one(
    state: &FeedContext,
    provider: &str,
    msg: &FeedMessage,
    pending: &mut Vec<Durable>,
) -> Result<Outcome, String> {
    let (Some(seq), Some(event_ref)) = (msg.seq, msg.event_ref.as_deref()) else {
        return Err("apply_one needs seq and event_ref".into());
    };
    let mut outcome = Outcome {
        seq: Some(seq),
        event_ref: Some(event_ref.to_string()),
        outcome: "applied",
        expected_seq: None,
        reason: None,
    };
    let entry = state.sequencer.entry(provider, event_ref);
    let mut e = entry.lock().await;
    if !e.loaded {
        let client = state.db.get().await.map_err(|e| e.to_string())?;
        e.last_seq = sql::last_seq(&client, provider, event_ref)
            .await
            .map_err(|e| e.to_string())?;
        e.event = sql::event_of_ref(&client, provider, event_ref)
            .await
            .map_err(|e| e.to_string())?;
        e.loaded = true;
    }
    match classify(e.last_seq, seq) {
        Verdict::Duplicate { .. } => {
            outcome.outcome = "duplicate";
            return Ok(outcome);
        }
        Verdict::Gap { expected_seq, .. } => {
            outcome.outcome = "gap";
            outcome.expected_seq = Some(expected_seq);
        }
        Verdict::InOrder => {}
    }
    let mark = FeedSeqMark {
        provider: provider.to_string(),
        event_ref: event_ref.to_string(),
        seq,
    };
    let result = match &msg.body {
        Body::Fixture(f) => apply_fixture(state, provider, event_ref, seq, f, &mut e)
            .await
            .map(|()| true),
        // Results come when the event is over (no actor): they need only its markets.
        Body::MarketResults(r) => match e.event.clone() {
            Some((event_id, _)) => super::results::apply(state, event_id, r)
                .await
                .map(|()| false),
            None => Err(reject("no fixture yet for this event_ref")),
        },
        Body::ResultRollback(r) => match e.event.clone() {
            Some((event_id, _)) => super::results::rollback(state, event_id, r)
                .await
                .map(|()| false),
            None => Err(reject("no fixture yet for this event_ref")),
        },
        body => apply_live(state, &mut e, body, mark, pending).await,
    };
    // True when the seq was written with the change (the fixture's transaction, or the
    // live writer's commit of an odds update).
    let mut stored_in_tx = false;
    match result {
        Ok(stored) => stored_in_tx = stored,
        Err(ApplyError::Reject(reason)) => {
            outcome.outcome = "rejected";
            outcome.reason = Some(reason);
        }
        Err(ApplyError::Infra(cause)) => return Err(cause),
    }
    if !stored_in_tx {
        let client = state.db.get().await.map_err(|e| e.to_string())?;
        sql::store_seq(&client, provider, event_ref, seq)
            .await
            .map_err(|e| e.to_string())?;
    }
    e.last_seq = seq;
    if let Body::Status(st) = &msg.body {
        if outcome.reason.is_none() && st.status.parse::<EventStatus>().is_ok_and(|s| s.is_final())
        {
            // The event is over: its entry goes (a late message reloads it from Postgres).
            state.sequencer.forget(provider, event_ref);
        }
    }
    Ok(outcome)
}

/// Applies a live message; true when its seq was written with the change.
async fn apply_live(
    state: &FeedContext,
    e: &mut SeqEntry,
    body: &Body,
    mark: FeedSeqMark,
    pending: &mut Vec<Durable>,
) -> Result<bool, ApplyError> {
    let Some((event_id, sport)) = e.event.clone() else {
        return Err(reject("no fixture yet for this event_ref"));
    };
    let timeout = state.registry.ask_timeout();
    let Some(addr) = state.registry.event(event_id).await? else {
        // A retried cancellation whose voids failed the first time: open them now.
        if let Body::Status(s) = body {
            if s.status.parse::<EventStatus>() == Ok(EventStatus::Cancelled) {
                return void_cancelled(state, event_id).await.map(|()| false);
            }
        }
        return Err(reject("the event is over"));
    };
    match body {
        Body::Fixture(_)
        | Body::Heartbeat(_)
        | Body::MarketResults(_)
        | Body::ResultRollback(_) => Ok(false),
        Body::Score(s) => {
            let score = ScoreUpdate {
                home_score: to_i32(s.home)?,
                away_score: to_i32(s.away)?,
                period: s.period.clone(),
                clock: s.clock.clone(),
            };
            let on_change = Arc::new(score_filter(state, &sport));
            let (_, durable, suspended) = ask(&addr, timeout, |reply| FeedScore {
                score,
                on_change,
                actor: feed_actor(),
                reply,
            })
            .await?
            .map_err(market_error)?;
            wait(durable, timeout).await?;
            wait_all(suspended, timeout).await.map(|()| false)
        }
        Body::BetStop(b) => {
            let filter = match &b.markets {
                None => FeedFilter::All,
                Some(refs) => {
                    FeedFilter::Keys(refs.iter().map(market_key).collect::<Result<_, _>>()?)
                }
            };
            let answers = ask(&addr, timeout, |reply| FeedBetStop {
                filter: Arc::new(filter),
                actor: feed_actor(),
                reply,
            })
            .await?;
            wait_all(answers, timeout).await.map(|()| false)
        }
        Body::Status(s) => apply_status(state, event_id, &addr, s)
            .await
            .map(|()| false),
        Body::Odds(o) => apply_odds(state, e, event_id, o, mark, pending).await,
    }
}

/// A cancelled event's markets are voided and their bets refunded: the very service a
/// trader's cancellation runs (`settlement::cancel`).
async fn void_cancelled(state: &FeedContext, event_id: Uuid) -> Result<(), ApplyError> {
    crate::settlement::cancel::void_event(
        &state.settlement,
        &state.registry,
        event_id,
        feed_actor(),
    )
    .await
    .map(|_| ())
    .map_err(|e| match e {
        SettlementError::NotFound(_) | SettlementError::Conflict { .. } => reject(e.to_string()),
        e => infra(e),
    })
}

/// A status message: the very use case a trader's status change runs (`app::events`),
/// cancellation and its refunds included; then period and clock.
async fn apply_status(
    state: &FeedContext,
    event_id: Uuid,
    addr: &actix::Addr<crate::actors::event::EventActor>,
    s: &Status,
) -> Result<(), ApplyError> {
    let timeout = state.registry.ask_timeout();
    let to = s
        .status
        .parse::<EventStatus>()
        .map_err(|_| reject(format!("unknown status {}", s.status)))?;
    let event = match state
        .events
        .set_status(event_id, to, None, None, feed_actor())
        .await
    {
        // Markets that refused their part (a trader closed one) keep their state.
        Ok(changed) => Some(changed.event),
        // The same status again (a repeat, or only period and clock moved).
        Err(EventError::Refused(MarketError::InvalidEventTransition(t))) if t.from == t.to => None,
        Err(EventError::Refused(e)) => return Err(market_error(e)),
        Err(e) => return Err(infra(e)),
    };
    if (s.period.is_some() || s.clock.is_some()) && !to.is_final() {
        let (home_score, away_score) = match event {
            Some(ev) => (ev.home_score, ev.away_score),
            None => {
                let (ev, _) = ask(addr, timeout, |reply| crate::actors::event::GetEvent {
                    reply,
                })
                .await?;
                (ev.home_score, ev.away_score)
            }
        };
        let score = ScoreUpdate {
            home_score,
            away_score,
            period: s.period.clone(),
            clock: s.clock.clone(),
        };
        let (_, d) = ask(addr, timeout, |reply| SetScore {
            score,
            actor: feed_actor(),
            reply,
        })
        .await?
        .map_err(market_error)?;
        wait(d, timeout).await?;
    }
    Ok(())
}

/// Applies prices; true when the message's seq went to the writer with them. The market's
/// id is cached in the event's sequencer entry (one SQL lookup per market, not per message).
async fn apply_odds(
    state: &FeedContext,
    e: &mut SeqEntry,
    event_id: Uuid,
    o: &OddsUpdate,
    mark: FeedSeqMark,
    pending: &mut Vec<Durable>,
) -> Result<bool, ApplyError> {
    let timeout = state.registry.ask_timeout();
    let key = market_key(&o.market)?;
    let cache_key = format!("{key:?}");
    let addr = match cached_market(state, e, &cache_key).await? {
        Some(addr) => addr,
        None => {
            let market_id = {
                let client = state.db.get().await.map_err(infra)?;
                sql::find_market(
                    &client,
                    event_id,
                    key.market_type.as_str(),
                    key.handicap,
                    key.total_points,
                    key.name.as_deref(),
                )
                .await?
                .ok_or_else(|| reject("unknown market"))?
            };
            let addr = state
                .registry
                .market(market_id)
                .await?
                .ok_or_else(|| reject("the market is settled or voided"))?;
            if e.markets.len() < state.feed.markets_cached_per_event_max {
                e.markets.insert(cache_key, market_id);
            }
            addr
        }
    };
    let mut prices = Vec::with_capacity(o.prices.len());
    for p in &o.prices {
        prices.push((p.name.clone(), parse_odds(state, p)?));
    }
    let done = ask(&addr, timeout, |reply| FeedPrices {
        prices,
        actor: feed_actor(),
        seq_mark: Some(mark),
        reply,
    })
    .await?
    .map_err(market_error)?;
    if done.seq_queued {
        // The writer commits in queue order: the seq never lands before these prices.
        pending.extend(done.durables);
    } else {
        for d in done.durables {
            wait(d, timeout).await?;
        }
    }
    Ok(done.seq_queued)
}

/// Waits until every change left in `pending` by [`apply_one`] is durable.
pub async fn wait_pending(pending: Vec<Durable>, timeout: Duration) -> Result<(), String> {
    for d in pending {
        wait(d, timeout).await.map_err(|e| match e {
            ApplyError::Infra(cause) => cause,
            ApplyError::Reject(reason) => reason,
        })?;
    }
    Ok(())
}

/// The live actor of a cached market id; a market that stopped (settled, voided) leaves
/// the cache and is looked up again.
async fn cached_market(
    state: &FeedContext,
    e: &mut SeqEntry,
    cache_key: &str,
) -> Result<Option<actix::Addr<crate::actors::market::MarketActor>>, ApplyError> {
    let Some(id) = e.markets.get(cache_key).copied() else {
        return Ok(None);
    };
    match state.registry.market(id).await? {
        Some(addr) => Ok(Some(addr)),
        None => {
            e.markets.remove(cache_key);
            Ok(None)
        }
    }
}

async fn apply_fixture(
    state: &FeedContext,
    provider: &str,
    event_ref: &str,
    seq: i64,
    f: &Fixture,
    e: &mut SeqEntry,
) -> Result<(), ApplyError> {
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
fn score_filter(state: &FeedContext, sport: &str) -> FeedFilter {
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

async fn wait(d: Durable, timeout: Duration) -> Result<(), ApplyError> {
    match tokio::time::timeout(timeout, d).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(infra(
            "the live-state writer stopped before the change was durable",
        )),
        Err(_) => Err(infra("the change was not durable in time")),
    }
}

async fn wait_all(answers: SuspendAnswers, timeout: Duration) -> Result<(), ApplyError> {
    for a in answers {
        match tokio::time::timeout(timeout, a).await {
            Ok(Ok(Some(d))) => wait(d, timeout).await?,
            Ok(Ok(None)) | Ok(Err(_)) => {}
            Err(_) => return Err(infra("a market did not answer in time")),
        }
    }
    Ok(())
}

fn market_error(e: MarketError) -> ApplyError {
    match e {
        MarketError::Busy => infra("live state is busy"),
        other => reject(other.to_string()),
    }
}

/// The actors' key of a feed market reference (type, line, name for props).
pub fn market_key(r: &MarketRef) -> Result<FeedMarketKey, ApplyError> {
    let market_type = r
        .market_type
        .parse::<MarketType>()
        .map_err(|_| reject(format!("unknown market type {}", r.market_type)))?;
    let line = match &r.line {
        None => None,
        Some(l) => Some(
            l.parse::<Decimal>()
                .ok()
                .filter(|d| d.scale() <= 2 && d.abs() < Decimal::from(100_000_000))
                .ok_or_else(|| reject(format!("bad line {l}")))?,
        ),
    };
    let (handicap, total_points) = match market_type {
        MarketType::PointSpread => (line, None),
        MarketType::TotalPoints => (None, line),
        _ => (None, None),
    };
    let name = matches!(market_type, MarketType::PropBet | MarketType::Futures)
        .then(|| r.name.clone())
        .flatten();
    Ok(FeedMarketKey {
        market_type,
        handicap,
        total_points,
        name,
    })
}

fn parse_odds(state: &FeedContext, p: &Price) -> Result<Odds, ApplyError> {
    let max = state.feed.odds_max.min(state.odds_max);
    Odds::parse(&p.odds, max).map_err(|e| reject(format!("odds of {}: {e}", p.name)))
}

fn to_i32(v: u32) -> Result<i32, ApplyError> {
    i32::try_from(v).map_err(|_| reject("score out of range"))
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
