//! SQL of cash-out: a bet as the offer sees it, the one transaction that pays a cash-out
//! (bet parts, `bet_cash_outs` row, `bet_credit` row, balance), idempotency look-ups, the
//! automatic cash-out threshold, and the check that every cash-out was paid once.
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::domain::ids::{BetId, SelectionId, UserId};

use super::settlement::LegState;

/// A bet with what its offer needs.
#[derive(Debug, Clone)]
pub struct CashOutBet {
    pub id: BetId,
    pub user_id: UserId,
    pub bet_type: String,
    pub status: String,
    pub stake: Decimal,
    pub potential_win: Decimal,
    pub cashed_out_stake: Decimal,
    pub cashed_out_win: Decimal,
    pub cashed_out_amount: Decimal,
    pub auto_threshold: Option<Decimal>,
    pub currency_code: String,
    pub metadata: serde_json::Value,
    /// Legs in placement order (the settlement's view of a leg: odds, result, factors).
    pub legs: Vec<LegState>,
}

impl CashOutBet {
    /// The stake still at risk.
    pub fn remaining_stake(&self) -> Decimal {
        self.stake - self.cashed_out_stake
    }

    /// The potential win of the stake still at risk.
    pub fn remaining_win(&self) -> Decimal {
        self.potential_win - self.cashed_out_win
    }
}

const BET: &str = "
SELECT id, user_id, type::text, status::text, stake, potential_win, cashed_out_stake,
       cashed_out_win, cashed_out_amount, auto_cash_out_threshold, currency_code, metadata
FROM bets WHERE id = ANY($1)";

const LEGS: &str = "
SELECT bet_id, selection_id, odds, result::text, dead_heat_factor, void_factor
FROM bet_selections WHERE bet_id = ANY($1) ORDER BY bet_id, id";

/// The bets of these ids with their legs (any order).
pub async fn load_bets(
    c: &impl GenericClient,
    ids: &[BetId],
) -> Result<Vec<CashOutBet>, tokio_postgres::Error> {
    let stmt = c.prepare_cached(BET).await?;
    let mut bets: Vec<CashOutBet> = c
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| CashOutBet {
            id: r.get(0),
            user_id: r.get(1),
            bet_type: r.get(2),
            status: r.get(3),
            stake: r.get(4),
            potential_win: r.get(5),
            cashed_out_stake: r.get(6),
            cashed_out_win: r.get(7),
            cashed_out_amount: r.get(8),
            auto_threshold: r.get(9),
            currency_code: r.get::<_, String>(10).trim().to_string(),
            metadata: r.get(11),
            legs: Vec::new(),
        })
        .collect();
    let stmt = c.prepare_cached(LEGS).await?;
    for r in c.query(&stmt, &[&ids]).await? {
        let bet_id: BetId = r.get(0);
        if let Some(b) = bets.iter_mut().find(|b| b.id == bet_id) {
            b.legs.push(LegState {
                selection_id: r.get(1),
                odds: r.get(2),
                result: r.get(3),
                dead_heat_factor: r.get(4),
                void_factor: r.get(5),
            });
        }
    }
    Ok(bets)
}

/// One bet of this user (None: unknown or another user's).
pub async fn load_bet(
    c: &impl GenericClient,
    user_id: UserId,
    bet_id: BetId,
) -> Result<Option<CashOutBet>, tokio_postgres::Error> {
    Ok(load_bets(c, &[bet_id])
        .await?
        .into_iter()
        .find(|b| b.user_id == user_id))
}

/// A cash-out to make durable.
#[derive(Debug, Clone)]
pub struct CashOutWrite {
    pub bet_id: BetId,
    pub user_id: UserId,
    /// The bet's `cashed_out_stake` the offer was computed from (compare-and-set).
    pub expected_cashed_out_stake: Decimal,
    pub stake: Decimal,
    pub potential_win: Decimal,
    pub amount: Decimal,
    pub fraction: Decimal,
    pub full: bool,
    pub trigger: &'static str,
    pub idempotency_key: Option<String>,
    pub fingerprint: Option<String>,
    pub currency_code: String,
}

/// Why the transaction wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CashOutWriteError {
    /// The bet moved meanwhile (settled, voided, cashed out by another request).
    #[error("the bet changed before the cash-out was written")]
    Moved,
    /// The same key was used before by this user.
    #[error("idempotency key used before")]
    DuplicateKey,
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(String),
}

/// The bet's parts move only if it is still `accepted` with the expected parts and none
/// of its open legs' markets is closed or settled. `settlement_seq` moves too, so a
/// settlement computed before this cash-out books nothing over it.
const MOVE_BET: &str = "
UPDATE bets b SET cashed_out_stake = b.cashed_out_stake + $3,
       cashed_out_win = b.cashed_out_win + $4,
       cashed_out_amount = b.cashed_out_amount + $5,
       status = CASE WHEN $6 THEN 'cashed_out'::bet_status ELSE b.status END,
       settled_at = CASE WHEN $6 THEN now() ELSE b.settled_at END,
       auto_cash_out_threshold = NULL,
       settlement_seq = b.settlement_seq + 1
WHERE b.id = $1 AND b.user_id = $2 AND b.status = 'accepted' AND b.cashed_out_stake = $7
  AND NOT EXISTS (
      SELECT 1 FROM bet_selections bs JOIN selections s ON s.id = bs.selection_id
      JOIN markets m ON m.id = s.market_id
      WHERE bs.bet_id = b.id AND bs.result IS NULL AND m.status NOT IN ('open', 'suspended'))
RETURNING (SELECT count(*) FROM bet_cash_outs c WHERE c.bet_id = b.id)::int + 1";

const INSERT_ROW: &str = "
INSERT INTO bet_cash_outs (bet_id, seq, user_id, stake, potential_win, amount, fraction,
                           trigger, idempotency_key, fingerprint)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

const INSERT_CREDIT: &str = "
INSERT INTO transactions (user_id, type, amount, currency_code, status, reference,
                          related_bet_id, description, processed_at)
VALUES ($1, 'bet_credit', $2, $3, 'completed', $4, $5, 'cash-out', now())";

const CREDIT_BALANCE: &str = "
UPDATE user_balances b SET balance = b.balance + $2
FROM (SELECT set_config('winzo.ledger_write', 'on', true)) AS ledger
WHERE b.user_id = $1 RETURNING b.balance";

/// Writes the cash-out in one transaction; answers its sequence number and the balance.
pub async fn write(
    client: &mut deadpool_postgres::Object,
    w: &CashOutWrite,
) -> Result<(i32, Decimal), CashOutWriteError> {
    let tx = client.transaction().await?;
    let seq = move_bet(&tx, w).await?;
    insert_cash_out(&tx, w, seq).await?;
    let balance = if w.amount > Decimal::ZERO {
        credit(&tx, w, seq).await?
    } else {
        let row = tx
            .query_one(
                "SELECT balance FROM user_balances WHERE user_id = $1",
                &[&w.user_id],
            )
            .await?;
        row.get(0)
    };
    tx.commit().await?;
    Ok((seq, balance))
}

/// Moves the bet's stake and potential win down by the part cashed out (or closes it);
/// answers the cash-out's sequence number. `Moved`: the bet is not as the offer saw it.
async fn move_bet(
    tx: &deadpool_postgres::Transaction<'_>,
    w: &CashOutWrite,
) -> Result<i32, CashOutWriteError> {
    let stmt = tx.prepare_cached(MOVE_BET).await?;
    let moved = tx
        .query_opt(
            &stmt,
            &[
                &w.bet_id,
                &w.user_id,
                &w.stake,
                &w.potential_win,
                &w.amount,
                &w.full,
                &w.expected_cashed_out_stake,
            ],
        )
        .await?;
    moved.map(|row| row.get(0)).ok_or(CashOutWriteError::Moved)
}

/// The cash-out's own row; `DuplicateKey` when its idempotency key was used already.
async fn insert_cash_out(
    tx: &deadpool_postgres::Transaction<'_>,
    w: &CashOutWrite,
    seq: i32,
) -> Result<(), CashOutWriteError> {
    let stmt = tx.prepare_cached(INSERT_ROW).await?;
    let inserted = tx
        .execute(
            &stmt,
            &[
                &w.bet_id,
                &seq,
                &w.user_id,
                &w.stake,
                &w.potential_win,
                &w.amount,
                &w.fraction,
                &w.trigger,
                &w.idempotency_key,
                &w.fingerprint,
            ],
        )
        .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_db_error().and_then(|d| d.constraint()) == Some("bet_cash_outs_user_key") =>
        {
            Err(CashOutWriteError::DuplicateKey)
        }
        Err(e) => Err(e.into()),
    }
}

/// The credit of the amount: its transaction row and the balance it raises (answered).
async fn credit(
    tx: &deadpool_postgres::Transaction<'_>,
    w: &CashOutWrite,
    seq: i32,
) -> Result<Decimal, CashOutWriteError> {
    let reference = format!("cashout:{}:{seq}", w.bet_id);
    let stmt = tx.prepare_cached(INSERT_CREDIT).await?;
    tx.execute(
        &stmt,
        &[
            &w.user_id,
            &w.amount,
            &w.currency_code,
            &reference,
            &w.bet_id,
        ],
    )
    .await?;
    let stmt = tx.prepare_cached(CREDIT_BALANCE).await?;
    Ok(tx.query_one(&stmt, &[&w.user_id, &w.amount]).await?.get(0))
}

/// A cash-out found by its idempotency key.
pub struct KeyedCashOut {
    pub bet_id: BetId,
    pub seq: i32,
    pub amount: Decimal,
    pub fingerprint: Option<String>,
}

pub async fn find_by_key(
    c: &impl GenericClient,
    user_id: UserId,
    key: &str,
) -> Result<Option<KeyedCashOut>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT bet_id, seq, amount, fingerprint FROM bet_cash_outs
             WHERE user_id = $1 AND idempotency_key = $2",
            &[&user_id, &key],
        )
        .await?;
    Ok(row.map(|r| KeyedCashOut {
        bet_id: r.get(0),
        seq: r.get(1),
        amount: r.get(2),
        fingerprint: r.get(3),
    }))
}

/// Arms (`Some`) or disarms (`None`) the automatic cash-out of an open bet of this user.
/// Answers false when the bet is not this user's open bet.
pub async fn set_auto_threshold(
    c: &impl GenericClient,
    user_id: UserId,
    bet_id: BetId,
    threshold: Option<Decimal>,
) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE bets SET auto_cash_out_threshold = $3
             WHERE id = $1 AND user_id = $2 AND status = 'accepted'",
            &[&bet_id, &user_id, &threshold],
        )
        .await?;
    Ok(n == 1)
}

/// Every armed bet (recovery of automatic cash-out after a restart): `(bet, threshold)`.
pub async fn armed_bets(
    c: &impl GenericClient,
    limit: i64,
) -> Result<Vec<(BetId, Decimal)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT id, auto_cash_out_threshold FROM bets
             WHERE auto_cash_out_threshold IS NOT NULL AND status = 'accepted'
             ORDER BY id LIMIT $1",
            &[&limit],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// What `POST /bets/{id}/cash-out` answers: the bet after the cash-out.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CashedOutBet {
    #[schema(value_type = uuid::Uuid)]
    pub id: BetId,
    pub status: String,
    #[serde(rename = "type")]
    pub bet_type: String,
    /// The stake paid when the bet was placed.
    #[schema(value_type = String)]
    pub stake: Decimal,
    /// The stake still at risk (0 once cashed out in full).
    #[schema(value_type = String)]
    pub remaining_stake: Decimal,
    /// The potential win of the remaining stake.
    #[schema(value_type = String)]
    pub potential_win: Decimal,
    /// Paid by every cash-out of this bet so far.
    #[schema(value_type = String)]
    pub cashed_out_amount: Decimal,
    /// Paid by this cash-out.
    #[schema(value_type = String)]
    pub cash_out_amount: Decimal,
    pub currency_code: String,
    #[schema(value_type = Option<String>)]
    pub auto_cash_out_threshold: Option<Decimal>,
    pub at: DateTime<Utc>,
}

impl CashedOutBet {
    pub fn of(bet: &CashOutBet, paid_now: Decimal) -> CashedOutBet {
        CashedOutBet {
            id: bet.id,
            status: bet.status.clone(),
            bet_type: bet.bet_type.clone(),
            stake: bet.stake,
            remaining_stake: bet.remaining_stake(),
            potential_win: bet.remaining_win(),
            cashed_out_amount: bet.cashed_out_amount,
            cash_out_amount: paid_now,
            currency_code: bet.currency_code.clone(),
            auto_cash_out_threshold: bet.auto_threshold,
            at: Utc::now(),
        }
    }
}

/// `winzo check-ledger`: bets whose cash-outs were not paid exactly once: a `bet_cash_outs`
/// row without its one `cashout:` credit of the same amount, a credit without its row, or a
/// bet whose `cashed_out_*` parts differ from the sum of its rows. `(bet, reason)`.
pub async fn cash_out_violations(
    c: &impl GenericClient,
) -> Result<Vec<(BetId, String)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "WITH rows AS (
                 SELECT bet_id, count(*) AS n, sum(stake) AS stake, sum(potential_win) AS win,
                        sum(amount) AS amount, count(*) FILTER (WHERE amount > 0) AS paid
                 FROM bet_cash_outs GROUP BY bet_id),
             credits AS (
                 SELECT related_bet_id AS bet_id, count(*) AS n, sum(amount) AS amount
                 FROM transactions
                 WHERE reference LIKE 'cashout:%' AND status = 'completed'
                 GROUP BY related_bet_id)
             SELECT b.id,
                    format('cash-outs %s (paid %s, sum %s), credits %s (sum %s), bet parts %s/%s/%s',
                           COALESCE(r.n, 0), COALESCE(r.paid, 0), COALESCE(r.amount, 0),
                           COALESCE(c.n, 0), COALESCE(c.amount, 0),
                           b.cashed_out_stake, b.cashed_out_win, b.cashed_out_amount)
             FROM bets b
             LEFT JOIN rows r ON r.bet_id = b.id
             LEFT JOIN credits c ON c.bet_id = b.id
             WHERE (r.bet_id IS NOT NULL OR c.bet_id IS NOT NULL OR b.cashed_out_stake <> 0
                    OR b.status = 'cashed_out')
               AND (COALESCE(r.paid, 0) <> COALESCE(c.n, 0)
                    OR COALESCE(r.amount, 0) <> COALESCE(c.amount, 0)
                    OR COALESCE(r.stake, 0) <> b.cashed_out_stake
                    OR COALESCE(r.win, 0) <> b.cashed_out_win
                    OR COALESCE(r.amount, 0) <> b.cashed_out_amount
                    OR (b.status = 'cashed_out') <> (r.n IS NOT NULL
                                                     AND r.stake = b.stake))
             ORDER BY b.id LIMIT 1000",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Open singles and parlays with a leg on any of these selections (the watcher), at most
/// `limit`, armed ones first.
pub async fn open_bets_on(
    c: &impl GenericClient,
    selections: &[SelectionId],
    limit: i64,
) -> Result<Vec<BetId>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT b.id FROM bets b
             WHERE b.id IN (SELECT bs.bet_id FROM bet_selections bs
                            WHERE bs.selection_id = ANY($1))
               AND b.status = 'accepted' AND b.type <> 'system'
             ORDER BY (b.auto_cash_out_threshold IS NULL), b.id LIMIT $2",
            &[&selections, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
