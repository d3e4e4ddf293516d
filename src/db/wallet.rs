//! SQL of the wallet: balances, the `transactions` ledger, payment methods and the
//! ledger checks of `winzo check-ledger`. Only the wallet shard actors call the writers.
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::domain::ids::{BetId, UserId};

/// A `transactions` row as the API shows it. `amount` is signed: the change to the
/// balance (deposits +, withdrawals -; docs/accounts.md, "Sign convention").
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TxRecord {
    pub id: Uuid,
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = String, example = "-10.50")]
    pub amount: Decimal,
    /// What the book kept (never negative); the balance moved by `net_amount`.
    #[schema(value_type = String, example = "0.00")]
    pub fees: Decimal,
    /// `amount - fees` (a generated column).
    #[schema(value_type = String, example = "-10.50")]
    pub net_amount: Decimal,
    pub currency_code: String,
    pub status: String,
    pub reference: Option<String>,
    pub external_reference: Option<String>,
    pub description: Option<String>,
    pub payment_method_id: Option<Uuid>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub related_bet_id: Option<BetId>,
    pub processor_response: Option<Value>,
    pub idempotency_key: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const TX_COLUMNS: &str = "id, user_id, type::text, amount, currency_code, status::text,
    reference, external_reference, description, payment_method_id, related_bet_id,
    processor_response, idempotency_key, processed_at, created_at, fees, net_amount";

fn tx_row(r: &Row) -> TxRecord {
    TxRecord {
        id: r.get(0),
        user_id: r.get(1),
        kind: r.get(2),
        amount: r.get(3),
        currency_code: r.get(4),
        status: r.get(5),
        reference: r.get(6),
        external_reference: r.get(7),
        description: r.get(8),
        payment_method_id: r.get(9),
        related_bet_id: r.get(10),
        processor_response: r.get(11),
        idempotency_key: r.get(12),
        processed_at: r.get(13),
        created_at: r.get(14),
        fees: r.get(15),
        net_amount: r.get(16),
    }
}

/// The `user_balances` row as `GET /wallet` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BalanceRow {
    #[schema(value_type = String, example = "100.00")]
    pub balance: Decimal,
    #[schema(value_type = String, example = "0.00")]
    pub bonus_balance: Decimal,
    #[schema(value_type = String, example = "0.00")]
    pub pending_balance: Decimal,
    pub currency_code: String,
}

pub async fn get_balance<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<Option<BalanceRow>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT balance, bonus_balance, pending_balance, currency_code
             FROM user_balances WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
    Ok(row.map(|r| BalanceRow {
        balance: r.get(0),
        bonus_balance: r.get(1),
        pending_balance: r.get(2),
        currency_code: r.get(3),
    }))
}

/// Creates the zero balance row of an account that has none (accounts made by other
/// paths); a no-op otherwise.
pub async fn ensure_balance_row<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO user_balances (user_id) SELECT id FROM users WHERE id = $1
             ON CONFLICT (user_id) DO NOTHING",
            &[&user_id],
        )
        .await?;
    Ok(())
}

pub async fn find_by_key<C: GenericClient>(
    client: &C,
    user_id: UserId,
    key: &str,
) -> Result<Option<TxRecord>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {TX_COLUMNS} FROM transactions WHERE user_id = $1 AND idempotency_key = $2"
            ),
            &[&user_id, &key],
        )
        .await?;
    Ok(row.as_ref().map(tx_row))
}

/// A ledger entry to insert.
pub struct NewTx<'a> {
    pub user_id: UserId,
    /// A `transaction_type` value.
    pub kind: &'a str,
    /// Signed amount of the movement (the balance moves by `amount - fees`).
    pub amount: Decimal,
    /// What the book keeps (>= 0).
    pub fees: Decimal,
    pub currency_code: &'a str,
    /// `completed` (the balance moved) or `failed` (it did not).
    pub status: &'a str,
    pub reference: &'a str,
    pub external_reference: Option<&'a str>,
    pub description: &'a str,
    pub payment_method_id: Option<Uuid>,
    pub processor_response: Option<Value>,
    pub idempotency_key: Option<&'a str>,
}

pub async fn insert_tx<C: GenericClient>(
    tx: &C,
    t: &NewTx<'_>,
) -> Result<TxRecord, tokio_postgres::Error> {
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO transactions (user_id, type, amount, currency_code, status, reference,
                    external_reference, description, payment_method_id, processor_response,
                    idempotency_key, processed_at, fees)
                 VALUES ($1, $2::text::transaction_type, $3, $4, $5::text::transaction_status,
                    $6, $7, $8, $9, $10, $11, now(), $12)
                 RETURNING {TX_COLUMNS}"
            ),
            &[
                &t.user_id,
                &t.kind,
                &t.amount,
                &t.currency_code,
                &t.status,
                &t.reference,
                &t.external_reference,
                &t.description,
                &t.payment_method_id,
                &t.processor_response,
                &t.idempotency_key,
                &t.fees,
            ],
        )
        .await?;
    Ok(tx_row(&row))
}

/// Moves a balance from `expected` to `new` (compare-and-set: `false` when the row no
/// longer holds `expected`, i.e. the cached balance is stale).
pub async fn set_balance<C: GenericClient>(
    tx: &C,
    user_id: UserId,
    expected: Decimal,
    new: Decimal,
) -> Result<bool, tokio_postgres::Error> {
    let n = tx
        .execute(
            // A ledger write (V44): the deposit's or withdrawal's row explains it.
            "UPDATE user_balances SET balance = $3
             FROM (SELECT set_config('winzo.ledger_write', 'on', true)) AS ledger
             WHERE user_id = $1 AND balance = $2",
            &[&user_id, &expected, &new],
        )
        .await?;
    Ok(n == 1)
}

/// A page of the user's transactions, newest first.
pub async fn list_transactions<C: GenericClient>(
    client: &C,
    user_id: UserId,
    limit: i64,
    offset: i64,
) -> Result<Vec<TxRecord>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "SELECT {TX_COLUMNS} FROM transactions WHERE user_id = $1
                 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
            ),
            &[&user_id, &limit, &offset],
        )
        .await?;
    Ok(rows.iter().map(tx_row).collect())
}

/// A `payment_methods` row; `details` only ever holds masked data (brand, last4, expiry).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentMethod {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub details: Value,
    pub is_default: bool,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const PM_COLUMNS: &str =
    "id, type::text, name, details, is_default, is_active, expires_at, created_at";

fn pm_row(r: &Row) -> PaymentMethod {
    PaymentMethod {
        id: r.get(0),
        kind: r.get(1),
        name: r.get(2),
        details: r.get(3),
        is_default: r.get(4),
        is_active: r.get(5),
        expires_at: r.get(6),
        created_at: r.get(7),
    }
}

pub async fn list_payment_methods<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<Vec<PaymentMethod>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "SELECT {PM_COLUMNS} FROM payment_methods WHERE user_id = $1 ORDER BY created_at, id"
            ),
            &[&user_id],
        )
        .await?;
    Ok(rows.iter().map(pm_row).collect())
}

pub async fn count_payment_methods<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*) FROM payment_methods WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
    Ok(row.get(0))
}

/// A masked payment method to store.
pub struct NewPaymentMethod<'a> {
    pub user_id: UserId,
    pub kind: &'a str,
    pub name: &'a str,
    pub details: Value,
    pub is_default: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert_payment_method<C: GenericClient>(
    tx: &C,
    m: &NewPaymentMethod<'_>,
) -> Result<PaymentMethod, tokio_postgres::Error> {
    if m.is_default {
        tx.execute(
            "UPDATE payment_methods SET is_default = false WHERE user_id = $1 AND is_default",
            &[&m.user_id],
        )
        .await?;
    }
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO payment_methods (user_id, type, name, details, is_default, expires_at)
                 VALUES ($1, $2::text::payment_method_type, $3, $4, $5, $6) RETURNING {PM_COLUMNS}"
            ),
            &[
                &m.user_id,
                &m.kind,
                &m.name,
                &m.details,
                &m.is_default,
                &m.expires_at,
            ],
        )
        .await?;
    Ok(pm_row(&row))
}

/// The type of `method_id` when it is an active method of `user_id` (`None`: it is not).
pub async fn payment_method_usable<C: GenericClient>(
    client: &C,
    user_id: UserId,
    method_id: Uuid,
) -> Result<Option<String>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT type::text FROM payment_methods WHERE id = $1 AND user_id = $2 AND is_active
               AND (expires_at IS NULL OR expires_at > now())",
            &[&method_id, &user_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Users whose balance differs from the sum of their completed transactions (or who have
/// completed transactions but no balance row): `(user_id, balance, ledger_sum)`.
pub async fn ledger_mismatches<C: GenericClient>(
    client: &C,
) -> Result<Vec<(UserId, Option<Decimal>, Decimal)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "WITH sums AS (
                 SELECT user_id, sum(net_amount) AS total FROM transactions
                 WHERE status = 'completed' AND type <> 'bonus' GROUP BY user_id)
             SELECT COALESCE(b.user_id, s.user_id), b.balance, COALESCE(s.total, 0)
             FROM user_balances b FULL OUTER JOIN sums s ON s.user_id = b.user_id
             WHERE b.balance IS DISTINCT FROM COALESCE(s.total, 0)
             ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Transactions whose fee is negative (the schema's CHECK forbids it; the command proves
/// it of the data as it is): `(transaction_id, fees)`.
pub async fn negative_fees<C: GenericClient>(
    client: &C,
) -> Result<Vec<(Uuid, Decimal)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, fees FROM transactions WHERE fees < 0 ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Balances below zero (main or bonus): `(user_id, balance, bonus_balance)`.
pub async fn negative_balances<C: GenericClient>(
    client: &C,
) -> Result<Vec<(UserId, Decimal, Decimal)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT user_id, balance, bonus_balance FROM user_balances
             WHERE balance < 0 OR bonus_balance < 0 OR pending_balance < 0 ORDER BY user_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Bets without exactly one completed stake debit or with more than one completed
/// settlement credit (cash-out credits, `cashout:..`, are checked on their own by
/// `db::cashout::cash_out_violations`): `(bet_id, debits, credits)`.
pub async fn bet_ledger_violations<C: GenericClient>(
    client: &C,
) -> Result<Vec<(BetId, i64, i64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT b.id,
                    count(t.id) FILTER (WHERE t.type = 'bet_debit'
                                          OR t.reference LIKE 'bonus:stake:%'),
                    count(t.id) FILTER (WHERE t.type = 'bet_credit' AND COALESCE(t.reference, '') NOT LIKE 'cashout:%')
                    - count(t.id) FILTER (WHERE t.type = 'adjustment'
                                            AND t.reference LIKE 'reverse:%')
             FROM bets b
             LEFT JOIN transactions t ON t.related_bet_id = b.id AND t.status = 'completed'
             GROUP BY b.id, b.free_bet_id, b.stake, b.bonus_stake
             HAVING count(t.id) FILTER (WHERE t.type = 'bet_debit')
                        <> (CASE WHEN b.free_bet_id IS NULL AND b.stake > b.bonus_stake
                                 THEN 1 ELSE 0 END)
                 OR count(t.id) FILTER (WHERE t.type = 'bonus'
                                          AND t.reference LIKE 'bonus:stake:%')
                        <> (CASE WHEN b.bonus_stake > 0 THEN 1 ELSE 0 END)
                 OR count(t.id) FILTER (WHERE t.type = 'bet_credit' AND COALESCE(t.reference, '') NOT LIKE 'cashout:%')
                    - count(t.id) FILTER (WHERE t.type = 'adjustment'
                                            AND t.reference LIKE 'reverse:%') > 1
             ORDER BY b.id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}
