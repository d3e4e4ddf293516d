//! SQL of bonus money and free bets (V51, docs/accounts.md "Bonuses and free bets"). The
//! writers run inside the owning wallet shard's transaction (grants, expiries) or a
//! settlement booking's (`db::settlement::bonus`).
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::domain::ids::{BetId, UserId};

/// A `bonuses` row as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BonusRow {
    pub id: Uuid,
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    #[schema(value_type = String, example = "10.00")]
    pub amount: Decimal,
    pub wagering_multiplier: i32,
    #[schema(value_type = String, example = "50.00")]
    pub wagering_required: Decimal,
    #[schema(value_type = String, example = "12.00")]
    pub wagering_progress: Decimal,
    #[schema(value_type = String, example = "1.5000")]
    pub min_odds: Decimal,
    pub expires_at: DateTime<Utc>,
    /// At completion at most this much moves to cash; the rest is retracted.
    #[schema(value_type = String, example = "1000.00")]
    pub conversion_cap: Decimal,
    /// `active`, `completed` (requirement met, converted) or `expired` (retracted).
    pub status: String,
    #[schema(value_type = String, example = "0.00")]
    pub converted_amount: Decimal,
    #[schema(value_type = String, example = "0.00")]
    pub retracted_amount: Decimal,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub idempotency_key: String,
}

const BONUS_COLUMNS: &str = "id, user_id, amount, wagering_multiplier, wagering_required,
    wagering_progress, min_odds, expires_at, status, converted_amount, retracted_amount,
    created_at, closed_at, idempotency_key, conversion_cap";

fn bonus_row(r: &Row) -> BonusRow {
    BonusRow {
        id: r.get(0),
        user_id: r.get(1),
        amount: r.get(2),
        wagering_multiplier: r.get(3),
        wagering_required: r.get(4),
        wagering_progress: r.get(5),
        min_odds: r.get(6),
        expires_at: r.get(7),
        status: r.get(8),
        converted_amount: r.get(9),
        retracted_amount: r.get(10),
        created_at: r.get(11),
        closed_at: r.get(12),
        idempotency_key: r.get(13),
        conversion_cap: r.get(14),
    }
}

/// A `free_bets` row as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FreeBetRow {
    pub id: Uuid,
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    #[schema(value_type = String, example = "5.00")]
    pub stake: Decimal,
    #[schema(value_type = String, example = "1.5000")]
    pub min_odds: Decimal,
    pub expires_at: DateTime<Utc>,
    /// `available`, `spent` (by `bet_id`) or `expired`.
    pub status: String,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub bet_id: Option<BetId>,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub idempotency_key: String,
}

const FREE_BET_COLUMNS: &str =
    "id, user_id, stake, min_odds, expires_at, status, bet_id, created_at, idempotency_key";

fn free_bet_row(r: &Row) -> FreeBetRow {
    FreeBetRow {
        id: r.get(0),
        user_id: r.get(1),
        stake: r.get(2),
        min_odds: r.get(3),
        expires_at: r.get(4),
        status: r.get(5),
        bet_id: r.get(6),
        created_at: r.get(7),
        idempotency_key: r.get(8),
    }
}

/// A grant as asked.
pub struct NewBonus<'a> {
    pub user_id: UserId,
    pub amount: Decimal,
    pub wagering_multiplier: i32,
    pub min_odds: Decimal,
    pub expires_at: DateTime<Utc>,
    pub idempotency_key: &'a str,
    pub granted_by: Option<UserId>,
    pub conversion_cap: Decimal,
}

pub async fn bonus_by_key<C: GenericClient>(
    c: &C,
    user_id: UserId,
    key: &str,
) -> Result<Option<BonusRow>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            &format!(
                "SELECT {BONUS_COLUMNS} FROM bonuses WHERE user_id = $1 AND idempotency_key = $2"
            ),
            &[&user_id, &key],
        )
        .await?;
    Ok(row.as_ref().map(bonus_row))
}

/// Whether the user has an active bonus now (locked, so a grant and an expiry serialize).
pub async fn lock_active<C: GenericClient>(
    c: &C,
    user_id: UserId,
) -> Result<Option<BonusRow>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            &format!(
                "SELECT {BONUS_COLUMNS} FROM bonuses WHERE user_id = $1 AND status = 'active'
                 FOR UPDATE"
            ),
            &[&user_id],
        )
        .await?;
    Ok(row.as_ref().map(bonus_row))
}

/// Inserts the bonus, its `bonus` transaction (`bonus:grant:<id>`) and the bonus balance.
pub async fn insert_bonus<C: GenericClient>(
    c: &C,
    b: &NewBonus<'_>,
) -> Result<BonusRow, tokio_postgres::Error> {
    let required = crate::domain::bonus::wagering_required(b.amount, b.wagering_multiplier);
    let row = c
        .query_one(
            &format!(
                "INSERT INTO bonuses (user_id, amount, wagering_multiplier, wagering_required,
                     min_odds, expires_at, idempotency_key, granted_by, conversion_cap)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {BONUS_COLUMNS}"
            ),
            &[
                &b.user_id,
                &b.amount,
                &b.wagering_multiplier,
                &required,
                &b.min_odds,
                &b.expires_at,
                &b.idempotency_key,
                &b.granted_by,
                &b.conversion_cap,
            ],
        )
        .await?;
    let bonus = bonus_row(&row);
    move_bonus(
        c,
        b.user_id,
        None,
        b.amount,
        &format!("bonus:grant:{}", bonus.id),
        "bonus granted",
    )
    .await?;
    Ok(bonus)
}

/// One `bonus` transaction and the bonus balance moving by it (a ledger write, V44).
pub async fn move_bonus<C: GenericClient>(
    c: &C,
    user_id: UserId,
    bet_id: Option<BetId>,
    amount: Decimal,
    reference: &str,
    description: &str,
) -> Result<(), tokio_postgres::Error> {
    if amount.is_zero() {
        return Ok(());
    }
    c.execute(
        "INSERT INTO transactions (user_id, type, amount, currency_code, status, reference,
             related_bet_id, description, processed_at)
         SELECT $1, 'bonus', $2, b.currency_code, 'completed', $3, $4, $5, now()
         FROM user_balances b WHERE b.user_id = $1",
        &[&user_id, &amount, &reference, &bet_id, &description],
    )
    .await?;
    c.execute(
        "UPDATE user_balances SET bonus_balance = bonus_balance + $2
         FROM (SELECT set_config('winzo.ledger_write', 'on', true)) AS ledger
         WHERE user_id = $1",
        &[&user_id, &amount],
    )
    .await?;
    Ok(())
}

/// One cash transaction (type `adjustment`) and the balance moving by it.
pub async fn move_cash<C: GenericClient>(
    c: &C,
    user_id: UserId,
    amount: Decimal,
    reference: &str,
    description: &str,
) -> Result<(), tokio_postgres::Error> {
    if amount.is_zero() {
        return Ok(());
    }
    c.execute(
        "INSERT INTO transactions (user_id, type, amount, currency_code, status, reference,
             description, processed_at)
         SELECT $1, 'adjustment', $2, b.currency_code, 'completed', $3, $4, now()
         FROM user_balances b WHERE b.user_id = $1",
        &[&user_id, &amount, &reference, &description],
    )
    .await?;
    c.execute(
        "UPDATE user_balances SET balance = balance + $2
         FROM (SELECT set_config('winzo.ledger_write', 'on', true)) AS ledger
         WHERE user_id = $1",
        &[&user_id, &amount],
    )
    .await?;
    Ok(())
}

/// The bonus balance of a user (locked with its row).
pub async fn lock_bonus_balance<C: GenericClient>(
    c: &C,
    user_id: UserId,
) -> Result<Option<(Decimal, Decimal)>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT balance, bonus_balance FROM user_balances WHERE user_id = $1 FOR UPDATE",
            &[&user_id],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Closes an active bonus: `completed` or `expired`, with what was converted and retracted.
pub async fn close_bonus<C: GenericClient>(
    c: &C,
    bonus_id: Uuid,
    status: &str,
    converted: Decimal,
    retracted: Decimal,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE bonuses SET status = $2, converted_amount = $3, retracted_amount = $4,
             closed_at = now()
         WHERE id = $1 AND status = 'active'",
        &[&bonus_id, &status, &converted, &retracted],
    )
    .await?;
    Ok(())
}

/// Active bonuses past their expiry, oldest first: `(bonus_id, user_id)`.
pub async fn due_bonuses<C: GenericClient>(
    c: &C,
    limit: i64,
) -> Result<Vec<(Uuid, UserId)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT id, user_id FROM bonuses WHERE status = 'active' AND expires_at <= now()
             ORDER BY expires_at LIMIT $1",
            &[&limit],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Available free bets past their expiry become `expired` (no money moves).
pub async fn expire_free_bets<C: GenericClient>(
    c: &C,
    limit: i64,
) -> Result<u64, tokio_postgres::Error> {
    c.execute(
        "UPDATE free_bets SET status = 'expired' WHERE id IN (
             SELECT id FROM free_bets WHERE status = 'available' AND expires_at <= now()
             ORDER BY expires_at LIMIT $1)",
        &[&limit],
    )
    .await
}

/// A grant of a free bet as asked.
pub struct NewFreeBet<'a> {
    pub user_id: UserId,
    pub stake: Decimal,
    pub min_odds: Decimal,
    pub expires_at: DateTime<Utc>,
    pub idempotency_key: &'a str,
    pub granted_by: Option<UserId>,
}

/// Inserts a free bet, or answers the one granted before with this key (`false`: not new).
pub async fn insert_free_bet<C: GenericClient>(
    c: &C,
    f: &NewFreeBet<'_>,
) -> Result<(FreeBetRow, bool), tokio_postgres::Error> {
    let row = c
        .query_opt(
            &format!(
                "INSERT INTO free_bets (user_id, stake, min_odds, expires_at, idempotency_key,
                     granted_by)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id, idempotency_key) DO NOTHING
                 RETURNING {FREE_BET_COLUMNS}"
            ),
            &[
                &f.user_id,
                &f.stake,
                &f.min_odds,
                &f.expires_at,
                &f.idempotency_key,
                &f.granted_by,
            ],
        )
        .await?;
    if let Some(r) = row {
        return Ok((free_bet_row(&r), true));
    }
    let r = c
        .query_one(
            &format!(
                "SELECT {FREE_BET_COLUMNS} FROM free_bets
                 WHERE user_id = $1 AND idempotency_key = $2"
            ),
            &[&f.user_id, &f.idempotency_key],
        )
        .await?;
    Ok((free_bet_row(&r), false))
}

pub async fn free_bet<C: GenericClient>(
    c: &C,
    id: Uuid,
) -> Result<Option<FreeBetRow>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            &format!("SELECT {FREE_BET_COLUMNS} FROM free_bets WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(free_bet_row))
}

/// A user's bonuses (active first, then newest) and free bets (available first).
pub async fn list_for_user<C: GenericClient>(
    c: &C,
    user_id: UserId,
    limit: i64,
) -> Result<(Vec<BonusRow>, Vec<FreeBetRow>), tokio_postgres::Error> {
    let bonuses = c
        .query(
            &format!(
                "SELECT {BONUS_COLUMNS} FROM bonuses WHERE user_id = $1
                 ORDER BY status <> 'active', created_at DESC LIMIT $2"
            ),
            &[&user_id, &limit],
        )
        .await?;
    let free = c
        .query(
            &format!(
                "SELECT {FREE_BET_COLUMNS} FROM free_bets WHERE user_id = $1
                 ORDER BY status <> 'available', expires_at LIMIT $2"
            ),
            &[&user_id, &limit],
        )
        .await?;
    Ok((
        bonuses.iter().map(bonus_row).collect(),
        free.iter().map(free_bet_row).collect(),
    ))
}

/// `winzo check-ledger`: users whose bonus balance differs from their `bonus` transactions.
pub async fn bonus_balance_mismatches<C: GenericClient>(
    c: &C,
) -> Result<Vec<(UserId, Decimal, Decimal)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "WITH sums AS (
                 SELECT user_id, sum(amount) AS total FROM transactions
                 WHERE status = 'completed' AND type = 'bonus' GROUP BY user_id)
             SELECT b.user_id, b.bonus_balance, COALESCE(s.total, 0)
             FROM user_balances b LEFT JOIN sums s ON s.user_id = b.user_id
             WHERE b.bonus_balance <> COALESCE(s.total, 0)
             ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// `winzo check-ledger`: free bets held by more than one live bet (`(token, bets)`): a
/// token is held by the open or paid bets naming it, at most one.
pub async fn free_bets_spent_twice<C: GenericClient>(
    c: &C,
) -> Result<Vec<(Uuid, i64)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT free_bet_id, count(*) FROM bets
             WHERE free_bet_id IS NOT NULL AND status NOT IN ('voided', 'rejected', 'cancelled')
             GROUP BY free_bet_id HAVING count(*) > 1 ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// `winzo check-ledger`: bonuses whose wagering progress is not the sum of the stakes
/// counted for them, or (while active) count a bet that does not qualify: `(bonus, why)`.
pub async fn wagering_mismatches<C: GenericClient>(
    c: &C,
) -> Result<Vec<(Uuid, String)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "WITH w AS (SELECT bonus_id, sum(stake) AS total FROM bonus_wagers GROUP BY bonus_id)
             SELECT bo.id, format('progress %s, counted stakes %s', bo.wagering_progress,
                                  COALESCE(w.total, 0))
             FROM bonuses bo LEFT JOIN w ON w.bonus_id = bo.id
             WHERE bo.wagering_progress <> COALESCE(w.total, 0)
             UNION ALL
             SELECT bo.id, format('bet %s counted but %s (stake %s, counted %s)', b.id,
                                  b.status, b.stake, bw.stake)
             FROM bonus_wagers bw JOIN bonuses bo ON bo.id = bw.bonus_id
             JOIN bets b ON b.id = bw.bet_id
             WHERE bo.status = 'active' AND (
                 b.status NOT IN ('settled_win', 'settled_loss') OR b.cashed_out_stake <> 0
                 OR b.free_bet_id IS NOT NULL OR b.stake <> bw.stake OR b.user_id <> bo.user_id
                 OR EXISTS (SELECT 1 FROM bet_selections s
                            WHERE s.bet_id = b.id AND s.odds < bo.min_odds))
             UNION ALL
             SELECT bo.id, format('bet %s qualifies but is not counted', b.id)
             FROM bonuses bo JOIN bets b ON b.user_id = bo.user_id
             WHERE bo.status = 'active' AND b.placed_at >= bo.created_at
               AND b.status IN ('settled_win', 'settled_loss') AND b.cashed_out_stake = 0
               AND b.free_bet_id IS NULL
               AND NOT EXISTS (SELECT 1 FROM bet_selections s
                               WHERE s.bet_id = b.id AND s.odds < bo.min_odds)
               AND NOT EXISTS (SELECT 1 FROM bonus_wagers bw
                               WHERE bw.bonus_id = bo.id AND bw.bet_id = b.id)
             ORDER BY 1 LIMIT 1000",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// How each bet of a booking was funded: `(stake, bonus_stake, bonus_win)` by bet id.
pub async fn funding<C: GenericClient>(
    c: &C,
    bet_ids: &[BetId],
) -> Result<std::collections::HashMap<BetId, (Decimal, Decimal, Decimal)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT b.id, b.stake, b.bonus_stake, b.bonus_win
             FROM bet_keys k JOIN bets b ON b.id = k.id AND b.placed_at = k.placed_at
             WHERE k.id = ANY($1)",
            &[&bet_ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect())
}

/// The users among these with an active bonus.
pub async fn users_with_active<C: GenericClient>(
    c: &C,
    users: &[UserId],
) -> Result<std::collections::HashSet<UserId>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT user_id FROM bonuses WHERE user_id = ANY($1) AND status = 'active'",
            &[&users],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Bonus balances of these users, locked: `user_id → bonus_balance`.
pub async fn lock_bonus_balances<C: GenericClient>(
    c: &C,
    users: &[UserId],
) -> Result<std::collections::HashMap<UserId, Decimal>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT user_id, bonus_balance FROM user_balances WHERE user_id = ANY($1)
             ORDER BY user_id FOR UPDATE",
            &[&users],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The part of each bet's payout now booked to the bonus balance.
pub async fn set_bonus_wins<C: GenericClient>(
    c: &C,
    bets: &[BetId],
    wins: &[Decimal],
) -> Result<(), tokio_postgres::Error> {
    if bets.is_empty() {
        return Ok(());
    }
    c.execute(
        "UPDATE bets b SET bonus_win = u.w
         FROM UNNEST($1::uuid[], $2::numeric[]) AS u(id, w)
         JOIN bet_keys k ON k.id = u.id
         WHERE b.id = u.id AND b.placed_at = k.placed_at",
        &[&bets, &wins],
    )
    .await?;
    Ok(())
}

/// Free bets of voided bets come back (`available`), or `expired` past their expiry.
pub async fn restore_free_bets<C: GenericClient>(
    c: &C,
    tokens: &[Uuid],
    bets: &[BetId],
) -> Result<(), tokio_postgres::Error> {
    if tokens.is_empty() {
        return Ok(());
    }
    c.execute(
        "UPDATE free_bets SET status = CASE WHEN expires_at > now() THEN 'available'
                                            ELSE 'expired' END,
             bet_id = NULL, spent_at = NULL
         WHERE id = ANY($1) AND bet_id = ANY($2)",
        &[&tokens, &bets],
    )
    .await?;
    Ok(())
}

/// Wagering at settlement: the bets of `counting` (settled win or loss now) count towards
/// their user's active bonus when they qualify (placed after the grant, every leg at its
/// minimum odds, nothing cashed out, not a free bet), once; the bets of `uncounting`
/// (voided, pushed, reopened) are taken out of an active bonus's count. Answers the
/// active bonuses whose requirement is met now: `(bonus_id, user_id, conversion_cap)`.
pub async fn count_wagers<C: GenericClient>(
    c: &C,
    counting: &[BetId],
    uncounting: &[BetId],
) -> Result<Vec<(Uuid, UserId, Decimal)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "WITH ins AS (
                 INSERT INTO bonus_wagers (bonus_id, bet_id, stake)
                 SELECT bo.id, b.id, b.stake
                 FROM bet_keys k JOIN bets b ON b.id = k.id AND b.placed_at = k.placed_at
                 JOIN bonuses bo ON bo.user_id = b.user_id AND bo.status = 'active'
                 WHERE k.id = ANY($1) AND b.status IN ('settled_win', 'settled_loss')
                   AND b.cashed_out_stake = 0 AND b.free_bet_id IS NULL
                   AND b.placed_at >= bo.created_at
                   AND NOT EXISTS (SELECT 1 FROM bet_selections s
                                   WHERE s.bet_id = b.id AND s.odds < bo.min_odds)
                 ON CONFLICT DO NOTHING
                 RETURNING bonus_id, stake),
             del AS (
                 DELETE FROM bonus_wagers w USING bonuses bo
                 WHERE w.bet_id = ANY($2) AND bo.id = w.bonus_id AND bo.status = 'active'
                 RETURNING w.bonus_id, -w.stake AS stake),
             moved AS (
                 SELECT bonus_id, sum(stake) AS s
                 FROM (SELECT * FROM ins UNION ALL SELECT * FROM del) x GROUP BY bonus_id)
             UPDATE bonuses bo SET wagering_progress = bo.wagering_progress + moved.s
             FROM moved WHERE bo.id = moved.bonus_id
             RETURNING bo.id, bo.user_id, bo.conversion_cap,
                       bo.wagering_progress >= bo.wagering_required",
            &[&counting, &uncounting],
        )
        .await?;
    Ok(rows
        .iter()
        .filter(|r| r.get::<_, bool>(3))
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}
