//! SQL of the ledger writer: a batch of accepted bets as four array statements
//! (bets, legs, stake debits, balance updates) inside the caller's transaction, prepared once
//! per connection and sent pipelined: one round trip for the four, not eight.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::domain::BetType;

/// One leg as written to `bet_selections`.
#[derive(Debug, Clone)]
pub struct LegRecord {
    pub selection_id: Uuid,
    /// The decimal odds actually taken.
    pub odds: Decimal,
}

/// An accepted bet, fully priced and checked, ready to be made durable.
#[derive(Debug, Clone)]
pub struct BetRecord {
    pub bet_id: Uuid,
    pub user_id: Uuid,
    pub bet_type: BetType,
    /// Total stake paid (lines × unit stake for system bets), 2 places.
    pub stake: Decimal,
    pub total_odds: Decimal,
    pub potential_win: Decimal,
    pub currency_code: String,
    pub placed_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
    /// Request fingerprint, system size, unit stake and the like.
    pub metadata: serde_json::Value,
    pub legs: Vec<LegRecord>,
    /// With several nodes: the leases the bet was taken under, checked at commit.
    pub fence: LeaseFence,
}

/// The leases a bet was taken under (several engine nodes): each leg's event lease as its
/// reservation was taken (`(event, node, epoch)`, at this node or another) and the bettor's
/// wallet partition as the stake was held (`(partition, epoch)`, at this node). Empty with
/// one node.
#[derive(Debug, Clone, Default)]
pub struct LeaseFence {
    pub events: Vec<(Uuid, String, i64)>,
    pub wallet: Option<(i32, i64)>,
}

const INSERT_BETS: &str = "
INSERT INTO bets (id, user_id, type, status, stake, total_odds, potential_win,
                  currency_code, placed_at, idempotency_key, metadata)
SELECT u.id, u.user_id, u.t::bet_type, 'accepted', u.stake, u.odds, u.pw, u.cur, u.placed,
       u.key, u.meta
FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[],
            $7::text[], $8::timestamptz[], $9::text[], $10::jsonb[])
     AS u(id, user_id, t, stake, odds, pw, cur, placed, key, meta)";

const INSERT_LEGS: &str = "
INSERT INTO bet_selections (bet_id, selection_id, odds)
SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::numeric[])";

const INSERT_DEBITS: &str = "
INSERT INTO transactions (user_id, type, amount, currency_code, status, reference,
                          related_bet_id, description, processed_at)
SELECT u.user_id, 'bet_debit', -u.stake, u.cur, 'completed', 'bet:' || u.bet_id::text,
       u.bet_id, 'stake', now()
FROM UNNEST($1::uuid[], $2::uuid[], $3::numeric[], $4::text[]) AS u(bet_id, user_id, stake, cur)";

/// Sorted by user id so concurrent writers lock balance rows in one global order.
/// The balances move with the debits that explain them: marked as a ledger write, so the
/// audit trail does not copy them (V44).
const DEBIT_BALANCES: &str = "
UPDATE user_balances b SET balance = b.balance - d.total
FROM (SELECT * FROM UNNEST($1::uuid[], $2::numeric[]) AS u(user_id, total)) d,
     (SELECT set_config('winzo.ledger_write', 'on', true)) AS ledger
WHERE b.user_id = d.user_id";

/// Writes a batch of bets inside `tx`. Returns an error without committing on any
/// failure; the caller decides whether to retry bets one by one.
pub async fn write_bets(
    tx: &Transaction<'_>,
    bets: &[&BetRecord],
) -> Result<(), tokio_postgres::Error> {
    let n = bets.len();
    let mut ids = Vec::with_capacity(n);
    let mut users = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut stakes = Vec::with_capacity(n);
    let mut odds = Vec::with_capacity(n);
    let mut wins = Vec::with_capacity(n);
    let mut currencies = Vec::with_capacity(n);
    let mut placed = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut metas = Vec::with_capacity(n);
    let (mut leg_bets, mut leg_sels, mut leg_odds) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_user: BTreeMap<Uuid, Decimal> = BTreeMap::new();
    for b in bets {
        ids.push(b.bet_id);
        users.push(b.user_id);
        types.push(b.bet_type.as_str());
        stakes.push(b.stake);
        odds.push(b.total_odds);
        wins.push(b.potential_win);
        currencies.push(b.currency_code.as_str());
        placed.push(b.placed_at);
        keys.push(b.idempotency_key.as_deref());
        metas.push(&b.metadata);
        for leg in &b.legs {
            leg_bets.push(b.bet_id);
            leg_sels.push(leg.selection_id);
            leg_odds.push(leg.odds);
        }
        *per_user.entry(b.user_id).or_default() += b.stake;
    }
    let (u_ids, totals): (Vec<Uuid>, Vec<Decimal>) = per_user.into_iter().unzip();
    let (s_bets, s_legs, s_debits, s_balances) = futures::try_join!(
        tx.prepare_cached(INSERT_BETS),
        tx.prepare_cached(INSERT_LEGS),
        tx.prepare_cached(INSERT_DEBITS),
        tx.prepare_cached(DEBIT_BALANCES),
    )?;
    type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
    let p_bets: [Param; 10] = [
        &ids,
        &users,
        &types,
        &stakes,
        &odds,
        &wins,
        &currencies,
        &placed,
        &keys,
        &metas,
    ];
    let p_legs: [Param; 3] = [&leg_bets, &leg_sels, &leg_odds];
    let p_debits: [Param; 4] = [&ids, &users, &stakes, &currencies];
    let p_balances: [Param; 2] = [&u_ids, &totals];
    // Polled together, the four are queued on the connection in this order and answered in
    // this order; the first failure is the one returned (later ones only say the
    // transaction is aborted).
    let (_, _, _, updated) = futures::try_join!(
        tx.execute(&s_bets, &p_bets),
        tx.execute(&s_legs, &p_legs),
        tx.execute(&s_debits, &p_debits),
        tx.execute(&s_balances, &p_balances),
    )?;
    if updated as usize != u_ids.len() {
        // A user without a balance row: make the whole batch fail like a constraint would.
        tx.batch_execute(
            "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
               MESSAGE = 'bet for a user without a balance row'; END $$",
        )
        .await?;
    }
    Ok(())
}

/// Whether a batch whose COMMIT lost its connection is in the database. First waits, with
/// a lock on each of the batch's balance rows, for a transaction still holding them: a
/// COMMIT that reached this server and still waits (for the synchronous standby, say)
/// keeps its locks until it ends, so the answer read afterwards cannot change. A batch is
/// one transaction, so any one of its bets present means all of them are.
pub async fn batch_committed(
    client: &mut deadpool_postgres::Client,
    users: &[Uuid],
    bet_ids: &[Uuid],
) -> Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT 1 FROM user_balances WHERE user_id = ANY($1) FOR UPDATE",
        &[&users],
    )
    .await?;
    let found: i64 = tx
        .query_one("SELECT count(*) FROM bets WHERE id = ANY($1)", &[&bet_ids])
        .await?
        .get(0);
    tx.rollback().await?;
    Ok(found > 0)
}
