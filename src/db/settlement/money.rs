//! The money of settlement: transaction rows, balance locks and moves, debts, checks.
use super::*;

use crate::domain::ids::{BetId, UserId};

/// A settlement ledger row.
pub struct BookedTx {
    pub user_id: UserId,
    pub bet_id: BetId,
    pub kind: &'static str,
    pub amount: Decimal,
    pub currency_code: String,
    pub reference: String,
    pub description: &'static str,
}

pub async fn insert_txs<C: GenericClient>(
    c: &C,
    txs: &[BookedTx],
) -> Result<(), tokio_postgres::Error> {
    if txs.is_empty() {
        return Ok(());
    }
    let users: Vec<UserId> = txs.iter().map(|t| t.user_id).collect();
    let bets: Vec<BetId> = txs.iter().map(|t| t.bet_id).collect();
    let kinds: Vec<&str> = txs.iter().map(|t| t.kind).collect();
    let amounts: Vec<Decimal> = txs.iter().map(|t| t.amount).collect();
    let curs: Vec<&str> = txs.iter().map(|t| t.currency_code.as_str()).collect();
    let refs: Vec<&str> = txs.iter().map(|t| t.reference.as_str()).collect();
    let descs: Vec<&str> = txs.iter().map(|t| t.description).collect();
    c.execute(
        "INSERT INTO transactions (user_id, related_bet_id, type, amount, currency_code, status,
                                   reference, description, processed_at)
         SELECT u.uid, u.bid, u.k::transaction_type, u.amt, u.cur, 'completed', u.ref, u.d, now()
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::numeric[], $5::text[], $6::text[],
                     $7::text[]) AS u(uid, bid, k, amt, cur, ref, d)",
        &[&users, &bets, &kinds, &amounts, &curs, &refs, &descs],
    )
    .await?;
    Ok(())
}

/// Locks these users' balance rows (in id order) and answers their balances.
pub async fn lock_balances<C: GenericClient>(
    c: &C,
    users: &[UserId],
) -> Result<Vec<(UserId, Decimal)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT user_id, balance FROM user_balances WHERE user_id = ANY($1)
             ORDER BY user_id FOR UPDATE",
            &[&users],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Adds signed deltas to balances (sorted by user id by the caller); answers new balances.
pub async fn add_balances<C: GenericClient>(
    c: &C,
    users: &[UserId],
    deltas: &[Decimal],
    bonus_deltas: &[Decimal],
) -> Result<Vec<(UserId, Decimal)>, tokio_postgres::Error> {
    let rows = c
        .query(
            // A ledger write (V44): the bookings' transaction rows explain it (the bonus
            // balance by its `bonus` rows).
            "UPDATE user_balances b SET balance = b.balance + d.delta,
                 bonus_balance = b.bonus_balance + d.bonus
             FROM UNNEST($1::uuid[], $2::numeric[], $3::numeric[]) AS d(user_id, delta, bonus),
                  (SELECT set_config('winzo.ledger_write', 'on', true)) AS ledger
             WHERE b.user_id = d.user_id RETURNING b.user_id, b.balance",
            &[&users, &deltas, &bonus_deltas],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Records what a resettlement could not take back, and flags the accounts for staff.
pub async fn insert_debts<C: GenericClient>(
    c: &C,
    debts: &[(UserId, BetId, Decimal, String)],
) -> Result<(), tokio_postgres::Error> {
    if debts.is_empty() {
        return Ok(());
    }
    let users: Vec<UserId> = debts.iter().map(|d| d.0).collect();
    let bets: Vec<BetId> = debts.iter().map(|d| d.1).collect();
    let amounts: Vec<Decimal> = debts.iter().map(|d| d.2).collect();
    let refs: Vec<&str> = debts.iter().map(|d| d.3.as_str()).collect();
    c.execute(
        "INSERT INTO user_debts (user_id, bet_id, amount, reference)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::numeric[], $4::text[])",
        &[&users, &bets, &amounts, &refs],
    )
    .await?;
    c.execute(
        "UPDATE users SET debt_flag = true WHERE id = ANY($1) AND NOT debt_flag",
        &[&users],
    )
    .await?;
    Ok(())
}

/// Bets whose payout differs from their settlement credits net of reversals and debts
/// (`winzo check-ledger`): (bet, actual_win, credits net, debts). The reversal of a
/// partly unrecoverable win is short by the debt, hence `net - owed`.
pub async fn payout_mismatches<C: GenericClient>(
    c: &C,
) -> Result<Vec<(BetId, Decimal, Decimal, Decimal)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "WITH credits AS (
                 SELECT related_bet_id AS bet_id, sum(amount) AS net
                 FROM transactions
                 WHERE related_bet_id IS NOT NULL AND status = 'completed'
                   AND (type IN ('bet_credit', 'adjustment', 'refund')
                        OR (type = 'bonus' AND reference NOT LIKE 'bonus:stake:%'))
                   AND COALESCE(reference, '') NOT LIKE 'cashout:%'
                   AND COALESCE(reference, '') NOT LIKE 'referral:%'
                 GROUP BY related_bet_id),
             debts AS (SELECT bet_id, sum(amount) AS owed FROM user_debts GROUP BY bet_id)
             SELECT b.id, b.actual_win, COALESCE(c.net, 0), COALESCE(d.owed, 0)
             FROM bets b
             LEFT JOIN credits c ON c.bet_id = b.id
             LEFT JOIN debts d ON d.bet_id = b.id
             WHERE b.actual_win <> COALESCE(c.net, 0) - COALESCE(d.owed, 0)
             LIMIT 1000",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}
