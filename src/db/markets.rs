//! SQL of live markets: loading events, markets, selections and open exposure for the
//! actors (recovery and on-demand start), creating markets, and the live-state writes of the
//! batching writer. Enum columns travel as text (`status::text`, `$n::text::market_status`).
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use crate::domain::ids::{EventId, MarketId, SelectionId, UserId};

use crate::domain::limits::MarketLimits;
use crate::domain::{EventStatus, MarketStatus, MarketType};

/// Who caused a change, for the audit trail (`None`: the engine itself, a feed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditActor {
    pub user_id: Option<UserId>,
    pub client_ip: Option<String>,
}

/// One change of live state, as an absolute value.
#[derive(Debug, Clone)]
pub enum Change {
    SelectionOdds {
        selection_id: SelectionId,
        odds: Decimal,
    },
    MarketStatus {
        market_id: MarketId,
        status: MarketStatus,
    },
    MarketInPlay {
        market_id: MarketId,
        in_play: bool,
    },
    MarketFeedSuspended {
        market_id: MarketId,
        feed_suspended: bool,
    },
    MarketSettings {
        market_id: MarketId,
        limits: MarketLimits,
    },
    EventStatus {
        event_id: EventId,
        status: EventStatus,
    },
    EventScore {
        event_id: EventId,
        home_score: i32,
        away_score: i32,
        period: Option<String>,
        clock: Option<String>,
    },
    /// A feed message's `seq` is applied (`feed_sequences`): written after, and in the
    /// same or a later transaction than, the change it carried.
    FeedSeq(FeedSeqMark),
}

/// Which provider's message for which event was applied.
#[derive(Debug, Clone)]
pub struct FeedSeqMark {
    pub provider: String,
    pub event_ref: String,
    pub seq: i64,
}

/// An event as the actors need it.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: EventId,
    pub sport_id: Uuid,
    pub sport_slug: String,
    pub league_id: Option<Uuid>,
    pub home_team_id: Uuid,
    pub away_team_id: Uuid,
    pub home_team_name: String,
    pub away_team_name: String,
    pub start_time: DateTime<Utc>,
    pub status: EventStatus,
    pub period: Option<String>,
    pub clock: Option<String>,
    pub home_score: i32,
    pub away_score: i32,
    pub venue: Option<String>,
}

/// A market row with its trading settings (NULL: the sport's default).
#[derive(Debug, Clone)]
pub struct MarketRow {
    pub id: MarketId,
    pub event_id: EventId,
    pub market_type: MarketType,
    pub name: String,
    pub handicap: Option<Decimal>,
    pub total_points: Option<Decimal>,
    pub status: MarketStatus,
    pub in_play: bool,
    pub feed_suspended: bool,
    pub settings: crate::domain::limits::MarketLimitsOverride,
}

#[derive(Debug, Clone)]
pub struct SelectionRow {
    pub id: SelectionId,
    pub market_id: MarketId,
    pub name: String,
    pub odds: Decimal,
}

/// Stake and potential payout of accepted bets on one selection.
#[derive(Debug, Clone)]
pub struct ExposureRow {
    pub selection_id: SelectionId,
    /// The bets' currency: one row per selection and currency (the markets count in the
    /// base currency; the caller converts).
    pub currency_code: String,
    pub stake: Decimal,
    pub payout: Decimal,
}

const EVENT_COLUMNS: &str = "e.id, e.sport_id, s.slug, e.league_id, e.home_team_id, e.away_team_id,
    ht.display_name, awt.display_name, e.start_time, e.status::text, e.period, e.clock,
    e.home_score, e.away_score, e.venue
    FROM events e JOIN sports s ON s.id = e.sport_id
    JOIN teams ht ON ht.id = e.home_team_id JOIN teams awt ON awt.id = e.away_team_id";

const MARKET_COLUMNS: &str = "id, event_id, type::text, name, handicap, total_points, status::text,
    in_play, feed_suspended, bet_delay_ms, min_stake, max_stake, max_liability_selection,
    max_liability_market, referral_window_ms, referable FROM markets";

fn event_row(r: &Row) -> anyhow::Result<EventRow> {
    let status: String = r.get(9);
    Ok(EventRow {
        id: r.get(0),
        sport_id: r.get(1),
        sport_slug: r.get(2),
        league_id: r.get(3),
        home_team_id: r.get(4),
        away_team_id: r.get(5),
        home_team_name: r.get(6),
        away_team_name: r.get(7),
        start_time: r.get(8),
        status: status.parse()?,
        period: r.get(10),
        clock: r.get(11),
        home_score: r.get(12),
        away_score: r.get(13),
        venue: r.get(14),
    })
}

fn market_row(r: &Row) -> anyhow::Result<MarketRow> {
    let market_type: String = r.get(2);
    let status: String = r.get(6);
    let delay: Option<i32> = r.get(9);
    Ok(MarketRow {
        id: r.get(0),
        event_id: r.get(1),
        market_type: market_type.parse()?,
        name: r.get(3),
        handicap: r.get(4),
        total_points: r.get(5),
        status: status.parse()?,
        in_play: r.get(7),
        feed_suspended: r.get(8),
        settings: crate::domain::limits::MarketLimitsOverride {
            bet_delay_ms: delay.and_then(|d| u32::try_from(d).ok()),
            min_stake: r.get(10),
            max_stake: r.get(11),
            max_liability_selection: r.get(12),
            max_liability_market: r.get(13),
            referral_window_ms: r
                .get::<_, Option<i32>>(14)
                .and_then(|w| u32::try_from(w).ok()),
            referable: r
                .get::<_, Option<Vec<String>>>(15)
                .map(|codes| {
                    crate::domain::limits::Referable::from_codes(codes.iter().map(String::as_str))
                })
                .transpose()
                .map_err(anyhow::Error::msg)?,
        },
    })
}

/// Every event whose live state belongs in an actor: not finished, not cancelled.
pub async fn load_live_events(c: &impl GenericClient) -> anyhow::Result<Vec<EventRow>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} WHERE e.status NOT IN ('finished', 'cancelled') ORDER BY e.start_time"
    );
    c.query(&sql, &[]).await?.iter().map(event_row).collect()
}

pub async fn load_event(c: &impl GenericClient, id: EventId) -> anyhow::Result<Option<EventRow>> {
    let sql = format!("SELECT {EVENT_COLUMNS} WHERE e.id = $1");
    c.query_opt(&sql, &[&id])
        .await?
        .as_ref()
        .map(event_row)
        .transpose()
}

/// The markets of these events that are still traded or awaiting settlement.
pub async fn load_markets_of_events(
    c: &impl GenericClient,
    event_ids: &[EventId],
) -> anyhow::Result<Vec<MarketRow>> {
    let sql = format!(
        "SELECT {MARKET_COLUMNS} WHERE event_id = ANY($1)
         AND status IN ('open', 'suspended', 'closed') ORDER BY created_at, id"
    );
    c.query(&sql, &[&event_ids])
        .await?
        .iter()
        .map(market_row)
        .collect()
}

pub async fn load_market(
    c: &impl GenericClient,
    id: MarketId,
) -> anyhow::Result<Option<MarketRow>> {
    let sql = format!("SELECT {MARKET_COLUMNS} WHERE id = $1");
    c.query_opt(&sql, &[&id])
        .await?
        .as_ref()
        .map(market_row)
        .transpose()
}

/// Which market a selection belongs to.
pub async fn market_of_selection(
    c: &impl GenericClient,
    selection_id: SelectionId,
) -> anyhow::Result<Option<MarketId>> {
    let row = c
        .query_opt(
            "SELECT market_id FROM selections WHERE id = $1",
            &[&selection_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

pub async fn load_selections(
    c: &impl GenericClient,
    market_ids: &[MarketId],
) -> anyhow::Result<Vec<SelectionRow>> {
    let rows = c
        .query(
            "SELECT id, market_id, name, odds FROM selections
             WHERE market_id = ANY($1) AND is_active ORDER BY created_at, id",
            &[&market_ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| SelectionRow {
            id: r.get(0),
            market_id: r.get(1),
            name: r.get(2),
            odds: r.get(3),
        })
        .collect())
}

/// Stake and potential payout of accepted (open) and referred bets per selection of these markets.
/// A parlay counts its whole stake and potential win on each of its legs: conservative.
pub async fn load_open_exposure(
    c: &impl GenericClient,
    market_ids: &[MarketId],
) -> anyhow::Result<Vec<ExposureRow>> {
    let rows = c
        .query(
            "SELECT bs.selection_id, b.currency_code,
                    COALESCE(sum(b.stake - b.cashed_out_stake), 0),
                    COALESCE(sum(b.potential_win - b.cashed_out_win), 0)
             FROM bet_selections bs
             JOIN bets b ON b.id = bs.bet_id
             JOIN selections s ON s.id = bs.selection_id
             WHERE s.market_id = ANY($1) AND b.status IN ('accepted', 'referred')
             GROUP BY bs.selection_id, b.currency_code",
            &[&market_ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ExposureRow {
            selection_id: r.get(0),
            currency_code: r.get::<_, String>(1).trim().to_string(),
            stake: r.get(2),
            payout: r.get(3),
        })
        .collect())
}

/// A new market's fields (API: `{type, name, handicap?, total_points?, selections}`).
pub struct NewMarket<'a> {
    pub event_id: EventId,
    pub market_type: MarketType,
    pub name: &'a str,
    pub handicap: Option<Decimal>,
    pub total_points: Option<Decimal>,
    pub in_play: bool,
    pub selections: Vec<(&'a str, Decimal)>,
}

/// Inserts a market and its selections (inside the caller's transaction).
pub async fn insert_market(
    c: &impl GenericClient,
    m: &NewMarket<'_>,
) -> anyhow::Result<(MarketRow, Vec<SelectionRow>)> {
    let sql = format!(
        "INSERT INTO markets (event_id, type, name, handicap, total_points, in_play)
         VALUES ($1, $2::text::market_type, $3, $4, $5, $6)
         RETURNING {}",
        MARKET_COLUMNS.trim_end_matches(" FROM markets")
    );
    let row = c
        .query_one(
            &sql,
            &[
                &m.event_id,
                &m.market_type.as_str(),
                &m.name,
                &m.handicap,
                &m.total_points,
                &m.in_play,
            ],
        )
        .await?;
    let market = market_row(&row)?;
    let mut selections = Vec::with_capacity(m.selections.len());
    for (name, odds) in &m.selections {
        let r = c
            .query_one(
                // clock_timestamp(): selections keep their creation order (ORDER BY created_at)
                // although the transaction's CURRENT_TIMESTAMP is the same for all.
                "INSERT INTO selections (market_id, name, odds, created_at)
                 VALUES ($1, $2, $3, clock_timestamp()) RETURNING id",
                &[&market.id, name, odds],
            )
            .await?;
        selections.push(SelectionRow {
            id: r.get(0),
            market_id: market.id,
            name: name.to_string(),
            odds: *odds,
        });
    }
    Ok((market, selections))
}

/// Tells the audit triggers who acts in this transaction (`is_local`: until commit).
pub async fn set_audit_context(c: &impl GenericClient, actor: &AuditActor) -> anyhow::Result<()> {
    let user = actor.user_id.map(|u| u.to_string()).unwrap_or_default();
    let ip = actor.client_ip.clone().unwrap_or_default();
    c.execute(crate::db::audit::SET_ACTOR_SQL, &[&user, &ip])
        .await?;
    Ok(())
}

/// New prices, one statement for all (ids unique).
pub async fn write_odds(
    c: &impl GenericClient,
    ids: &[SelectionId],
    odds: &[Decimal],
) -> anyhow::Result<()> {
    c.execute(
        "UPDATE selections s SET odds = u.odds
         FROM UNNEST($1::uuid[], $2::numeric[]) AS u(id, odds) WHERE s.id = u.id",
        &[&ids, &odds],
    )
    .await?;
    Ok(())
}

/// A provider's sequence mark: the same statement as `db::feed::store_seq` (never moving
/// backwards).
async fn write_feed_seq(c: &impl GenericClient, mark: &FeedSeqMark) -> anyhow::Result<()> {
    c.execute(
        "INSERT INTO feed_sequences (provider, event_ref, last_seq) VALUES ($1, $2, $3)
         ON CONFLICT (provider, event_ref)
         DO UPDATE SET last_seq = GREATEST(feed_sequences.last_seq, EXCLUDED.last_seq)",
        &[&mark.provider, &mark.event_ref, &mark.seq],
    )
    .await?;
    Ok(())
}

/// A market's trading settings (delay, stake and liability limits, referral).
async fn write_market_settings(
    c: &impl GenericClient,
    market_id: MarketId,
    limits: &MarketLimits,
) -> anyhow::Result<()> {
    let delay = i32::try_from(limits.bet_delay_ms).unwrap_or(i32::MAX);
    let window = i32::try_from(limits.referral_window_ms).unwrap_or(i32::MAX);
    let referable = limits.referable.codes();
    c.execute(
        "UPDATE markets SET bet_delay_ms = $2, min_stake = $3, max_stake = $4,
         max_liability_selection = $5, max_liability_market = $6,
         referral_window_ms = $7, referable = $8 WHERE id = $1",
        &[
            &market_id,
            &delay,
            &limits.min_stake,
            &limits.max_stake,
            &limits.max_liability_selection,
            &limits.max_liability_market,
            &window,
            &referable,
        ],
    )
    .await?;
    Ok(())
}

/// Any other live-state change, one statement.
pub async fn write_change(c: &impl GenericClient, change: &Change) -> anyhow::Result<()> {
    match change {
        Change::FeedSeq(mark) => write_feed_seq(c, mark).await?,
        Change::SelectionOdds { selection_id, odds } => {
            write_odds(c, &[*selection_id], &[*odds]).await?;
        }
        Change::MarketStatus { market_id, status } => {
            c.execute(
                "UPDATE markets SET status = $2::text::market_status WHERE id = $1",
                &[market_id, &status.as_str()],
            )
            .await?;
        }
        Change::MarketInPlay { market_id, in_play } => {
            c.execute(
                "UPDATE markets SET in_play = $2 WHERE id = $1",
                &[market_id, in_play],
            )
            .await?;
        }
        Change::MarketFeedSuspended {
            market_id,
            feed_suspended,
        } => {
            c.execute(
                "UPDATE markets SET feed_suspended = $2 WHERE id = $1",
                &[market_id, feed_suspended],
            )
            .await?;
        }
        Change::MarketSettings { market_id, limits } => {
            write_market_settings(c, *market_id, limits).await?;
        }
        Change::EventStatus { event_id, status } => {
            c.execute(
                "UPDATE events SET status = $2::text::event_status WHERE id = $1",
                &[event_id, &status.as_str()],
            )
            .await?;
        }
        Change::EventScore {
            event_id,
            home_score,
            away_score,
            period,
            clock,
        } => {
            c.execute(
                "UPDATE events SET home_score = $2, away_score = $3, period = $4, clock = $5
                 WHERE id = $1",
                &[event_id, home_score, away_score, period, clock],
            )
            .await?;
        }
    }
    Ok(())
}
