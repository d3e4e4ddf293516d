//! SQL of trader referral (V61): the desk's queue, a counter-offer, and the one
//! transaction that ends a referral (the bet's final status and terms, the referral row,
//! any refund and the balance). The referral row's status is the guard: only one ending
//! of a referral ever commits.
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;

use crate::domain::currency::Currencies;
use crate::domain::ids::{BetId, SelectionId, UserId};
use crate::domain::round_payout;

/// A referral as the desk and the bettor see it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReferralRow {
    #[schema(value_type = uuid::Uuid)]
    pub bet_id: BetId,
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    pub status: String,
    pub reason: String,
    #[schema(value_type = String)]
    pub stake: Decimal,
    /// What the bet would add to the book: its potential win less its stake.
    #[schema(value_type = String)]
    pub liability: Decimal,
    /// The desk decides before this (while `pending`).
    pub expires_at: DateTime<Utc>,
    #[schema(value_type = Option<String>)]
    pub counter_stake: Option<Decimal>,
    #[schema(value_type = Option<String>)]
    pub counter_odds: Option<Decimal>,
    /// The bettor answers a counter-offer before this (while `countered`).
    pub counter_expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = String)]
    pub refunded: Decimal,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "r.bet_id, r.user_id, r.status, r.reason, r.stake, r.liability,
    r.expires_at, r.counter_stake, r.counter_odds, r.counter_expires_at, r.refunded,
    r.created_at, r.ended_at";

fn row(r: &tokio_postgres::Row) -> ReferralRow {
    ReferralRow {
        bet_id: r.get(0),
        user_id: r.get(1),
        status: r.get(2),
        reason: r.get(3),
        stake: r.get(4),
        liability: r.get(5),
        expires_at: r.get(6),
        counter_stake: r.get(7),
        counter_odds: r.get(8),
        counter_expires_at: r.get(9),
        refunded: r.get(10),
        created_at: r.get(11),
        ended_at: r.get(12),
    }
}

/// One referral by its bet.
pub async fn find(
    c: &impl GenericClient,
    bet_id: BetId,
) -> Result<Option<ReferralRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM bet_referrals r WHERE r.bet_id = $1");
    Ok(c.query_opt(&sql, &[&bet_id]).await?.as_ref().map(row))
}

/// The referrals of these bets (a bet has at most one).
pub async fn find_many(
    c: &impl GenericClient,
    bet_ids: &[BetId],
) -> Result<Vec<ReferralRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM bet_referrals r WHERE r.bet_id = ANY($1)");
    Ok(c.query(&sql, &[&bet_ids]).await?.iter().map(row).collect())
}

/// Referrals still waiting (`pending` for the desk, `countered` for the bettor), oldest
/// first, at most `limit`.
pub async fn open(
    c: &impl GenericClient,
    limit: i64,
) -> Result<Vec<ReferralRow>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM bet_referrals r WHERE r.status IN ('pending', 'countered')
         ORDER BY r.created_at LIMIT $1"
    );
    Ok(c.query(&sql, &[&limit]).await?.iter().map(row).collect())
}

/// The bet of a referral as the desk sees it: type, stake, odds, legs.
pub async fn bet_summary(
    c: &impl GenericClient,
    bet_id: BetId,
) -> Result<Option<serde_json::Value>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT jsonb_build_object(
                 'id', b.id, 'type', b.type::text, 'status', b.status::text,
                 'stake', b.stake::text, 'total_odds', b.total_odds::text,
                 'potential_win', b.potential_win::text, 'currency_code', b.currency_code,
                 'placed_at', b.placed_at,
                 'legs', (SELECT jsonb_agg(jsonb_build_object(
                              'selection_id', bs.selection_id, 'odds', bs.odds::text,
                              'selection', s.name, 'market_id', s.market_id,
                              'market', m.name, 'event_id', m.event_id) ORDER BY bs.id)
                          FROM bet_selections bs JOIN selections s ON s.id = bs.selection_id
                          JOIN markets m ON m.id = s.market_id WHERE bs.bet_id = b.id))
             FROM bets b WHERE b.id = $1",
            &[&bet_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The desk's counter-offer: only a `pending` referral (false otherwise).
pub async fn counter(
    client: &mut deadpool_postgres::Object,
    bet_id: BetId,
    stake: Decimal,
    odds: Option<Decimal>,
    expires_at: DateTime<Utc>,
    staff: UserId,
) -> Result<bool, tokio_postgres::Error> {
    let actor = crate::db::audit::Actor {
        user_id: Some(staff),
        ip: None,
    };
    let tx = client.transaction().await?;
    crate::db::audit::set_actor(&tx, actor).await?;
    let n = tx
        .execute(
            "UPDATE bet_referrals SET status = 'countered', counter_stake = $2,
                    counter_odds = $3, counter_expires_at = $4, decided_by = $5,
                    decided_at = now()
             WHERE bet_id = $1 AND status = 'pending'",
            &[&bet_id, &stake, &odds, &expires_at, &staff],
        )
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

/// How a referral ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The desk accepts the bet as placed (from `pending`).
    DeskAccept,
    /// The desk rejects it (from `pending`).
    DeskReject,
    /// The desk's window passed (from `pending`, only once `expires_at` is past).
    DeskExpired,
    /// The bettor takes the counter-offer (from `countered`, before it expires).
    BettorAccept,
    /// The bettor declines it (from `countered`).
    BettorDecline,
    /// The counter-offer's window passed (from `countered`, once past).
    CounterExpired,
}

impl Ending {
    /// The referral status it ends from, and the one it ends in.
    const fn statuses(self) -> (&'static str, &'static str) {
        match self {
            Ending::DeskAccept => ("pending", "accepted"),
            Ending::DeskReject => ("pending", "rejected"),
            Ending::DeskExpired => ("pending", "expired"),
            Ending::BettorAccept => ("countered", "accepted"),
            Ending::BettorDecline => ("countered", "declined"),
            Ending::CounterExpired => ("countered", "counter_expired"),
        }
    }

    pub const fn accepts(self) -> bool {
        matches!(self, Ending::DeskAccept | Ending::BettorAccept)
    }
}

/// What an ending changed, for the live state and the messages after the commit.
#[derive(Debug, Clone)]
pub struct Ended {
    pub bet_id: BetId,
    pub user_id: UserId,
    /// `accepted` or `rejected` (the bet's status now).
    pub bet_status: &'static str,
    /// The referral's final status.
    pub referral_status: &'static str,
    /// The bet's stake and potential win as the referral counted them in the book.
    pub old_stake: Decimal,
    pub old_potential_win: Decimal,
    /// Its terms now (equal to the old ones unless a counter-offer was taken).
    pub stake: Decimal,
    pub total_odds: Decimal,
    pub potential_win: Decimal,
    /// Given back to the bettor (the whole stake on a rejection).
    pub refund: Decimal,
    /// The bet's currency (every amount above is in it).
    pub currency_code: String,
    pub selections: Vec<SelectionId>,
    /// The bettor's balance after it.
    pub balance: Decimal,
}

/// Why an ending was not written.
#[derive(Debug, thiserror::Error)]
pub enum EndError {
    #[error("no such referral")]
    NotFound,
    /// The referral is not in the status this ending starts from (decided already, or the
    /// window is past or not yet past).
    #[error("the referral is {0}")]
    Moved(String),
    /// An expiry came before its window passed by the database's clock.
    #[error("the referral's window has not passed yet")]
    NotYet,
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(String),
}

const LOCK: &str = "
SELECT r.status, r.user_id, r.stake, r.counter_stake, r.counter_odds,
       r.expires_at <= now(), COALESCE(r.counter_expires_at <= now(), false),
       b.placed_at, b.type::text, b.total_odds, b.potential_win, b.currency_code,
       (SELECT array_agg(bs.selection_id ORDER BY bs.id) FROM bet_selections bs
        WHERE bs.bet_id = r.bet_id)
FROM bet_referrals r JOIN bets b ON b.id = r.bet_id
WHERE r.bet_id = $1
FOR UPDATE OF r";

/// The referral and its bet as `LOCK` reads them.
struct Locked {
    status: String,
    user_id: UserId,
    stake: Decimal,
    counter_stake: Option<Decimal>,
    counter_odds: Option<Decimal>,
    /// The desk's window, and the counter-offer's, are past.
    desk_past: bool,
    counter_past: bool,
    placed_at: DateTime<Utc>,
    total_odds: Decimal,
    potential_win: Decimal,
    currency: String,
    selections: Vec<SelectionId>,
}

impl Locked {
    fn of(r: &tokio_postgres::Row) -> Locked {
        Locked {
            status: r.get(0),
            user_id: r.get(1),
            stake: r.get(2),
            counter_stake: r.get(3),
            counter_odds: r.get(4),
            desk_past: r.get(5),
            counter_past: r.get(6),
            placed_at: r.get(7),
            total_odds: r.get(9),
            potential_win: r.get(10),
            currency: r.get(11),
            selections: r.get::<_, Option<Vec<SelectionId>>>(12).unwrap_or_default(),
        }
    }
}

/// The bet's terms after an ending: its status, stake, odds, potential win and refund.
struct Terms {
    bet_status: &'static str,
    stake: Decimal,
    odds: Decimal,
    potential_win: Decimal,
    refund: Decimal,
}

impl Terms {
    /// A counter-offer's potential win is rounded down at the bet's currency's scale.
    fn after(ending: Ending, l: &Locked, currencies: &Currencies) -> Terms {
        let (bet_status, stake, odds, potential_win, refund) = match ending {
            Ending::DeskAccept => (
                "accepted",
                l.stake,
                l.total_odds,
                l.potential_win,
                Decimal::ZERO,
            ),
            Ending::BettorAccept => {
                let stake = l.counter_stake.unwrap_or(l.stake);
                let odds = l.counter_odds.unwrap_or(l.total_odds);
                let pw = round_payout(stake * odds, currencies.scale_of(&l.currency)).as_decimal();
                ("accepted", stake, odds, pw, l.stake - stake)
            }
            _ => ("rejected", l.stake, l.total_odds, l.potential_win, l.stake),
        };
        Terms {
            bet_status,
            stake,
            odds,
            potential_win,
            refund,
        }
    }
}

/// Ends the referral of `bet_id` as `ending` says, in one transaction: the referral row,
/// the bet's status (and its new terms for a counter-offer taken), the refund and the
/// balance. `by`: the staff member deciding, if any.
pub async fn end(
    client: &mut deadpool_postgres::Object,
    bet_id: BetId,
    ending: Ending,
    by: Option<UserId>,
    currencies: &Currencies,
) -> Result<Ended, EndError> {
    let tx = client.transaction().await?;
    let actor = crate::db::audit::Actor {
        user_id: by,
        ip: None,
    };
    crate::db::audit::set_actor(&tx, actor).await?;
    let locked = tx
        .query_opt(LOCK, &[&bet_id])
        .await?
        .ok_or(EndError::NotFound)?;
    let l = Locked::of(&locked);
    check_ending(&tx, bet_id, ending, &l).await?;
    let t = Terms::after(ending, &l, currencies);
    let (_, to) = ending.statuses();
    write_terms(&tx, bet_id, &l, &t, to, by).await?;
    if t.refund > Decimal::ZERO {
        write_refund(&tx, bet_id, &l, t.refund).await?;
    }
    let balance: Decimal = tx
        .query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&l.user_id],
        )
        .await?
        .get(0);
    tx.commit().await?;
    Ok(Ended {
        balance,
        bet_id,
        user_id: l.user_id,
        bet_status: t.bet_status,
        referral_status: to,
        old_stake: l.stake,
        old_potential_win: l.potential_win,
        stake: t.stake,
        total_odds: t.odds,
        potential_win: t.potential_win,
        refund: t.refund,
        currency_code: l.currency.trim().to_string(),
        selections: l.selections,
    })
}

/// Whether `ending` may end the referral now: its status, its windows by the database's
/// clock, and (to accept) every market of the bet still trading.
async fn check_ending(
    tx: &deadpool_postgres::Transaction<'_>,
    bet_id: BetId,
    ending: Ending,
    l: &Locked,
) -> Result<(), EndError> {
    let status = &l.status;
    let (from, _) = ending.statuses();
    if status != from {
        return Err(EndError::Moved(status.clone()));
    }
    let timing_ok = match ending {
        Ending::DeskExpired => l.desk_past,
        Ending::CounterExpired => l.counter_past,
        Ending::BettorAccept => !l.counter_past,
        Ending::DeskAccept | Ending::DeskReject => !l.desk_past,
        Ending::BettorDecline => true,
    };
    if !timing_ok {
        return Err(match ending {
            Ending::DeskExpired | Ending::CounterExpired => EndError::NotYet,
            _ => EndError::Moved(format!("{status} (its window has passed)")),
        });
    }
    if ending.accepts() {
        // A bet is accepted only onto markets still trading: one settled or closed
        // meanwhile leaves the desk (or the window) to reject it.
        let closed: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM bet_selections bs
                                JOIN selections s ON s.id = bs.selection_id
                                JOIN markets m ON m.id = s.market_id
                                WHERE bs.bet_id = $1 AND m.status NOT IN ('open', 'suspended'))",
                &[&bet_id],
            )
            .await?
            .get(0);
        if closed {
            return Err(EndError::Moved(format!(
                "{status}, and a market of the bet is no longer trading (reject it)"
            )));
        }
    }
    Ok(())
}

/// The referral's final status and the bet's status and terms (its one leg's odds too
/// when a counter-offer changed them).
async fn write_terms(
    tx: &deadpool_postgres::Transaction<'_>,
    bet_id: BetId,
    l: &Locked,
    t: &Terms,
    to: &str,
    by: Option<UserId>,
) -> Result<(), EndError> {
    tx.execute(
        "UPDATE bet_referrals SET status = $2, refunded = $3, ended_at = now(),
                decided_by = COALESCE($4, decided_by),
                decided_at = COALESCE(decided_at, CASE WHEN $4::uuid IS NULL THEN NULL ELSE now() END)
         WHERE bet_id = $1",
        &[&bet_id, &to, &t.refund, &by],
    )
    .await?;
    let moved = tx
        .execute(
            "UPDATE bets SET status = $3::text::bet_status, stake = $4, total_odds = $5,
                    potential_win = $6, settled_at = CASE WHEN $3 = 'rejected' THEN now() END
             WHERE id = $1 AND placed_at = $2 AND status = 'referred'",
            &[
                &bet_id,
                &l.placed_at,
                &t.bet_status,
                &t.stake,
                &t.odds,
                &t.potential_win,
            ],
        )
        .await?;
    if moved != 1 {
        return Err(EndError::Moved("a bet no longer referred".into()));
    }
    if t.odds != l.total_odds {
        // Only a single is countered with other odds: its one leg takes them.
        tx.execute(
            "UPDATE bet_selections SET odds = $2 WHERE bet_id = $1",
            &[&bet_id, &t.odds],
        )
        .await?;
    }
    Ok(())
}

/// The refund's transaction row and the balance it raises.
async fn write_refund(
    tx: &deadpool_postgres::Transaction<'_>,
    bet_id: BetId,
    l: &Locked,
    refund: Decimal,
) -> Result<(), EndError> {
    tx.execute(
        "INSERT INTO transactions (user_id, type, amount, currency_code, status, reference,
                                   related_bet_id, description, processed_at)
         VALUES ($1, 'refund', $2, $3, 'completed', $4, $5, 'referral', now())",
        &[
            &l.user_id,
            &refund,
            &l.currency,
            &format!("referral:{bet_id}"),
            &bet_id,
        ],
    )
    .await?;
    tx.execute(
        "UPDATE user_balances b SET balance = b.balance + $2
         FROM (SELECT set_config('winzo.ledger_write', 'on', true)) AS ledger
         WHERE b.user_id = $1",
        &[&l.user_id, &refund],
    )
    .await?;
    Ok(())
}

/// `check-ledger`: every referral's money adds up. The stake debit less the referral's
/// refund is the bet's stake (while referred or accepted) or nothing (rejected), and the
/// refund recorded on the row is the `referral:` refund booked.
pub async fn violations(
    c: &impl GenericClient,
) -> Result<Vec<(BetId, String)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "WITH money AS (
                 SELECT t.related_bet_id AS bet_id,
                        -sum(t.amount) FILTER (WHERE t.type = 'bet_debit') AS held,
                        COALESCE(sum(t.amount) FILTER (WHERE t.type = 'refund'
                                   AND t.reference LIKE 'referral:%'), 0) AS refunded
                 FROM transactions t
                 WHERE t.status = 'completed'
                   AND t.related_bet_id IN (SELECT bet_id FROM bet_referrals)
                 GROUP BY t.related_bet_id)
             SELECT r.bet_id, format('referral %s, bet %s: stake %s, held %s, refunded %s (row says %s)',
                                     r.status, b.status, b.stake, m.held, m.refunded, r.refunded)
             FROM bet_referrals r JOIN bets b ON b.id = r.bet_id
             LEFT JOIN money m ON m.bet_id = r.bet_id
             WHERE m.held IS NULL OR m.held <> r.stake OR m.refunded <> r.refunded
                OR m.held - m.refunded <> CASE WHEN b.status = 'rejected' THEN 0 ELSE b.stake END
                OR (r.status IN ('pending', 'countered')) <> (b.status = 'referred')
             ORDER BY r.bet_id LIMIT 1000",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
