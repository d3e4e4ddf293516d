//! Messages for live state: statuses (a cancellation voids), odds and the waits for
//! their durability.
use super::*;

use crate::domain::ids::EventId;

/// Applies a live message; true when its seq was written with the change.
pub(super) async fn apply_live(
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
            let (_, durable, suspended) = state
                .registry
                .ask_within(&addr, timeout, |reply| FeedScore {
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
            let answers = state
                .registry
                .ask_within(&addr, timeout, |reply| FeedBetStop {
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
pub(super) async fn void_cancelled(
    state: &FeedContext,
    event_id: EventId,
) -> Result<(), ApplyError> {
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
pub(super) async fn apply_status(
    state: &FeedContext,
    event_id: EventId,
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
                let (ev, _) = state
                    .registry
                    .ask_within(addr, timeout, |reply| crate::actors::event::GetEvent {
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
        let (_, d) = state
            .registry
            .ask_within(addr, timeout, |reply| SetScore {
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
pub(super) async fn apply_odds(
    state: &FeedContext,
    e: &mut SeqEntry,
    event_id: EventId,
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
    let done = state
        .registry
        .ask_within(&addr, timeout, |reply| FeedPrices {
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

/// The live actor of a cached market id; a market that stopped (settled, voided) leaves
/// the cache and is looked up again.
pub(super) async fn cached_market(
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

pub(super) async fn wait(d: Durable, timeout: Duration) -> Result<(), ApplyError> {
    match tokio::time::timeout(timeout, d).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(infra(
            "the live-state writer stopped before the change was durable",
        )),
        Err(_) => Err(infra("the change was not durable in time")),
    }
}

pub(super) async fn wait_all(answers: SuspendAnswers, timeout: Duration) -> Result<(), ApplyError> {
    for a in answers {
        match tokio::time::timeout(timeout, a).await {
            Ok(Ok(Some(d))) => wait(d, timeout).await?,
            Ok(Ok(None)) | Ok(Err(_)) => {}
            Err(_) => return Err(infra("a market did not answer in time")),
        }
    }
    Ok(())
}

pub(super) fn market_error(e: MarketError) -> ApplyError {
    match e {
        MarketError::Busy => infra("live state is busy"),
        other => reject(other.to_string()),
    }
}

pub(super) fn parse_odds(state: &FeedContext, p: &Price) -> Result<Odds, ApplyError> {
    let max = state.feed.odds_max.min(state.odds_max);
    Odds::parse(&p.odds, max).map_err(|e| reject(format!("odds of {}: {e}", p.name)))
}
