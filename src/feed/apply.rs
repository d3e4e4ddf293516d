//! Applying one feed message: in one Postgres transaction, lock the `(provider, event_ref)`
//! sequence row, classify the `seq`, apply the change and move `last_seq`; after the commit,
//! publish the deltas to the event's and the sport's topics.
//!
//! A message whose content cannot apply (unknown sport, unknown market, a forbidden status
//! change) is `rejected`: its `seq` is consumed, nothing else changes, the reason is
//! reported. Infrastructure failures abort the push (503) with nothing half-applied.
use deadpool_postgres::Transaction;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::messages::{Body, FeedMessage, Fixture, MarketRef, OddsUpdate, Price};
use super::sequencer::{classify, Verdict};
use super::FeedSettings;
use crate::db::feed as sql;
use crate::domain::event::{transition, EventStatus};
use crate::domain::odds::{display, Odds, OddsFormat};

/// A change to publish once its transaction committed.
#[derive(Debug, Clone)]
pub struct Delta {
    pub event_id: Uuid,
    pub sport: String,
    pub kind: &'static str,
    pub data: Value,
}

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

/// A message that is well formed but cannot apply.
struct Reject(String);

impl From<tokio_postgres::Error> for ApplyError {
    fn from(e: tokio_postgres::Error) -> Self {
        ApplyError::Db(e)
    }
}

enum ApplyError {
    Reject(Reject),
    Db(tokio_postgres::Error),
}

fn reject(msg: impl Into<String>) -> ApplyError {
    ApplyError::Reject(Reject(msg.into()))
}

/// Applies one sequenced message (not a heartbeat). Returns its outcome and the deltas to
/// publish; an `Err` is an infrastructure failure and nothing of the message committed.
pub async fn apply_one(
    client: &mut deadpool_postgres::Object,
    settings: &FeedSettings,
    provider: &str,
    msg: &FeedMessage,
) -> anyhow::Result<(Outcome, Vec<Delta>)> {
    let (Some(seq), Some(event_ref)) = (msg.seq, msg.event_ref.as_deref()) else {
        anyhow::bail!("apply_one needs seq and event_ref");
    };
    let mut outcome = Outcome {
        seq: Some(seq),
        event_ref: Some(event_ref.to_string()),
        outcome: "applied",
        expected_seq: None,
        reason: None,
    };
    let mut tx = client.transaction().await?;
    let last = sql::lock_seq(&tx, provider, event_ref).await?;
    match classify(last, seq) {
        Verdict::Duplicate { .. } => {
            tx.rollback().await?;
            outcome.outcome = "duplicate";
            return Ok((outcome, Vec::new()));
        }
        Verdict::Gap { expected_seq, .. } => {
            outcome.outcome = "gap";
            outcome.expected_seq = Some(expected_seq);
        }
        Verdict::InOrder => {}
    }
    let mut deltas = Vec::new();
    let savepoint_result = {
        let mut sp = tx.savepoint("feed_message").await?;
        match apply_body(
            &mut sp,
            settings,
            provider,
            event_ref,
            &msg.body,
            &mut deltas,
        )
        .await
        {
            Ok(()) => {
                sp.commit().await?;
                Ok(())
            }
            Err(e) => {
                sp.rollback().await?;
                Err(e)
            }
        }
    };
    match savepoint_result {
        Ok(()) => {}
        Err(ApplyError::Reject(Reject(reason))) => {
            deltas.clear();
            outcome.outcome = "rejected";
            outcome.reason = Some(reason);
        }
        Err(ApplyError::Db(e)) if is_data_error(&e) => {
            deltas.clear();
            outcome.outcome = "rejected";
            outcome.reason = Some(db_reason(&e));
        }
        Err(ApplyError::Db(e)) => return Err(e.into()),
    }
    sql::set_seq(&tx, provider, event_ref, seq).await?;
    tx.commit().await?;
    Ok((outcome, deltas))
}

/// Constraint violations and raised exceptions (triggers) are the message's fault.
fn is_data_error(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        let c = c.code();
        c.starts_with("23") || c.starts_with("22") || c == "P0001"
    })
}

fn db_reason(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| "refused by the database".into())
}

async fn apply_body(
    tx: &mut Transaction<'_>,
    settings: &FeedSettings,
    provider: &str,
    event_ref: &str,
    body: &Body,
    deltas: &mut Vec<Delta>,
) -> Result<(), ApplyError> {
    if let Body::Fixture(f) = body {
        return apply_fixture(tx, settings, provider, event_ref, f, deltas).await;
    }
    let Some(event) = sql::event_by_ref(tx, provider, event_ref).await? else {
        return Err(reject(format!("no fixture yet for event_ref {event_ref}")));
    };
    let delta = |kind: &'static str, data: Value| Delta {
        event_id: event.id,
        sport: event.sport_slug.clone(),
        kind,
        data,
    };
    match body {
        Body::Fixture(_) | Body::Heartbeat(_) => {}
        Body::Score(s) => {
            let (home, away) = (to_i32(s.home)?, to_i32(s.away)?);
            let changed = home != event.home_score || away != event.away_score;
            // Suspend first, in the same transaction: no later bet sees the old prices open.
            if changed {
                let types = settings.score_suspends(&event.sport_slug);
                let ids = sql::suspend_markets(
                    tx,
                    event.id,
                    types.as_deref(),
                    None,
                    settings.suspend_batch_markets_max,
                )
                .await?;
                push_statuses(
                    deltas,
                    &event.id,
                    &event.sport_slug,
                    &ids,
                    "suspended",
                    "score",
                );
            }
            sql::set_score(
                tx,
                event.id,
                home,
                away,
                s.period.as_deref(),
                s.clock.as_deref(),
            )
            .await?;
            deltas.push(delta(
                "score",
                json!({"event_id": event.id, "home_score": home, "away_score": away,
                       "period": s.period.as_ref().or(event.period.as_ref()),
                       "clock": s.clock.as_ref().or(event.clock.as_ref())}),
            ));
        }
        Body::Status(s) => {
            let to = s
                .status
                .parse::<EventStatus>()
                .map_err(|_| reject(format!("unknown status {}", s.status)))?;
            let from = event
                .status
                .parse::<EventStatus>()
                .map_err(|_| reject("event has an unknown status"))?;
            if from != to {
                transition(from, to).map_err(|e| reject(e.to_string()))?;
            }
            sql::set_status(
                tx,
                event.id,
                to.as_str(),
                s.period.as_deref(),
                s.clock.as_deref(),
            )
            .await?;
            if matches!(to, EventStatus::Finished | EventStatus::Cancelled) {
                let ids = sql::close_markets(tx, event.id).await?;
                push_statuses(
                    deltas,
                    &event.id,
                    &event.sport_slug,
                    &ids,
                    "closed",
                    "event_over",
                );
            } else if matches!(to, EventStatus::Suspended) {
                let ids = sql::suspend_markets(
                    tx,
                    event.id,
                    None,
                    None,
                    settings.suspend_batch_markets_max,
                )
                .await?;
                push_statuses(
                    deltas,
                    &event.id,
                    &event.sport_slug,
                    &ids,
                    "suspended",
                    "event_suspended",
                );
            }
            deltas.push(delta(
                "event_status",
                json!({"event_id": event.id, "status": to.as_str(),
                       "period": s.period.as_ref().or(event.period.as_ref()),
                       "clock": s.clock.as_ref().or(event.clock.as_ref())}),
            ));
        }
        Body::BetStop(b) => {
            let ids = match &b.markets {
                None => {
                    sql::suspend_markets(
                        tx,
                        event.id,
                        None,
                        None,
                        settings.suspend_batch_markets_max,
                    )
                    .await?
                }
                Some(refs) => {
                    let mut wanted = Vec::new();
                    for r in refs {
                        if let Some(m) = find(tx, event.id, r).await? {
                            wanted.push(m.id);
                        }
                    }
                    sql::suspend_markets(
                        tx,
                        event.id,
                        None,
                        Some(&wanted),
                        settings.suspend_batch_markets_max,
                    )
                    .await?
                }
            };
            push_statuses(
                deltas,
                &event.id,
                &event.sport_slug,
                &ids,
                "suspended",
                "bet_stop",
            );
        }
        Body::Odds(o) => apply_odds(tx, settings, event.id, &event.sport_slug, o, deltas).await?,
    }
    Ok(())
}

async fn apply_fixture(
    tx: &mut Transaction<'_>,
    settings: &FeedSettings,
    provider: &str,
    event_ref: &str,
    f: &Fixture,
    deltas: &mut Vec<Delta>,
) -> Result<(), ApplyError> {
    let sport_id = sql::sport_id(tx, &f.sport)
        .await?
        .ok_or_else(|| reject(format!("unknown sport {}", f.sport)))?;
    if f.home.trim().is_empty()
        || f.away.trim().is_empty()
        || f.home.len() > 100
        || f.away.len() > 100
    {
        return Err(reject("team names must be 1 to 100 characters"));
    }
    let home = sql::team(tx, sport_id, f.home.trim(), &slugify(&f.home)).await?;
    let away = sql::team(tx, sport_id, f.away.trim(), &slugify(&f.away)).await?;
    let event_id = sql::upsert_event(
        tx,
        provider,
        event_ref,
        sport_id,
        home,
        away,
        f.start_time,
        f.venue.as_deref(),
    )
    .await?;
    for m in &f.markets {
        if find(tx, event_id, &m.market).await?.is_some() {
            continue;
        }
        let (handicap, total) = line_of(&m.market)?;
        let name = m
            .title
            .clone()
            .or_else(|| m.market.name.clone())
            .unwrap_or_else(|| m.market.market_type.clone());
        let market_id = sql::insert_market(
            tx,
            event_id,
            &m.market.market_type,
            &name,
            handicap,
            total,
            false,
        )
        .await?;
        for p in &m.selections {
            let odds = parse_odds(settings, p)?;
            sql::insert_selection(tx, market_id, &p.name, odds.value()).await?;
        }
    }
    deltas.push(Delta {
        event_id,
        sport: f.sport.clone(),
        kind: "fixture",
        data: json!({"event_id": event_id, "home": f.home, "away": f.away,
                     "start_time": f.start_time, "venue": f.venue}),
    });
    Ok(())
}

async fn apply_odds(
    tx: &mut Transaction<'_>,
    settings: &FeedSettings,
    event_id: Uuid,
    sport: &str,
    o: &OddsUpdate,
    deltas: &mut Vec<Delta>,
) -> Result<(), ApplyError> {
    let market = find(tx, event_id, &o.market)
        .await?
        .ok_or_else(|| reject("unknown market"))?;
    if matches!(market.status.as_str(), "closed" | "settled" | "voided") {
        return Err(reject(format!("market is {}", market.status)));
    }
    let mut selections = Vec::with_capacity(o.prices.len());
    for p in &o.prices {
        let odds = parse_odds(settings, p)?;
        let id = sql::set_price(tx, market.id, &p.name, odds.value())
            .await?
            .ok_or_else(|| reject(format!("unknown selection {}", p.name)))?;
        selections.push(price_json(id, &p.name, odds));
    }
    deltas.push(Delta {
        event_id,
        sport: sport.to_string(),
        kind: "odds",
        data: json!({"event_id": event_id, "market_id": market.id, "selections": selections}),
    });
    if sql::reopen_feed_suspended(tx, market.id).await? {
        push_statuses(deltas, &event_id, sport, &[market.id], "open", "feed_odds");
    }
    Ok(())
}

/// A selection's price with every display form, serialized once for all subscribers.
pub fn price_json(id: Uuid, name: &str, odds: Odds) -> Value {
    json!({"id": id, "name": name, "odds": odds,
           "american": display(odds, OddsFormat::American),
           "fractional": display(odds, OddsFormat::Fractional)})
}

fn push_statuses(
    deltas: &mut Vec<Delta>,
    event_id: &Uuid,
    sport: &str,
    ids: &[Uuid],
    status: &str,
    reason: &str,
) {
    for id in ids {
        deltas.push(Delta {
            event_id: *event_id,
            sport: sport.to_string(),
            kind: "market_status",
            data: json!({"event_id": event_id, "market_id": id, "status": status, "reason": reason}),
        });
    }
}

async fn find(
    tx: &Transaction<'_>,
    event_id: Uuid,
    r: &MarketRef,
) -> Result<Option<sql::FeedMarket>, ApplyError> {
    let (handicap, total) = line_of(r)?;
    let name = matches!(r.market_type.as_str(), "prop_bet" | "futures")
        .then_some(r.name.as_deref())
        .flatten();
    Ok(sql::find_market(tx, event_id, &r.market_type, handicap, total, name).await?)
}

/// The line of a market reference: the handicap of a spread, the total of a totals market.
fn line_of(r: &MarketRef) -> Result<(Option<Decimal>, Option<Decimal>), ApplyError> {
    if r.market_type
        .parse::<crate::domain::market::MarketType>()
        .is_err()
    {
        return Err(reject(format!("unknown market type {}", r.market_type)));
    }
    let line = match &r.line {
        None => None,
        Some(l) => Some(
            l.parse::<Decimal>()
                .ok()
                .filter(|d| d.scale() <= 2 && d.abs() < Decimal::from(100_000_000))
                .ok_or_else(|| reject(format!("bad line {l}")))?,
        ),
    };
    Ok(match r.market_type.as_str() {
        "point_spread" => (line, None),
        "total_points" => (None, line),
        _ => (None, None),
    })
}

fn parse_odds(settings: &FeedSettings, p: &Price) -> Result<Odds, ApplyError> {
    Odds::parse(&p.odds, settings.odds_max).map_err(|e| reject(format!("odds of {}: {e}", p.name)))
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
