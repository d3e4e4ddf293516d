//! SQL of the ledger writer: a batch of accepted bets as four array statements
//! (bets, legs, stake debits, balance updates) inside the caller's transaction, prepared once
//! per connection and sent pipelined: one round trip for the four, not eight.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::domain::ids::{BetId, EventId, SelectionId, UserId};
use crate::domain::money::Money;
use crate::domain::BetType;

/// One leg as written to `bet_selections`.
#[derive(Debug, Clone)]
pub struct LegRecord {
    pub selection_id: SelectionId,
    /// The decimal odds actually taken.
    pub odds: Decimal,
}

/// An accepted bet, fully priced and checked, ready to be made durable.
#[derive(Debug, Clone)]
pub struct BetRecord {
    pub bet_id: BetId,
    pub user_id: UserId,
    pub bet_type: BetType,
    /// Total stake paid (lines × unit stake for system bets), 2 places.
    pub stake: Money,
    pub total_odds: Decimal,
    pub potential_win: Money,
    pub currency_code: String,
    pub placed_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
    /// The part of `stake` paid from bonus money (the rest from cash; V51).
    pub bonus_stake: Money,
    /// The free bet that is the whole stake (no money moves; the token is spent).
    pub free_bet_id: Option<Uuid>,
    /// Request fingerprint, system size, unit stake and the like.
    pub metadata: serde_json::Value,
    pub legs: Vec<LegRecord>,
    /// The bet is referred to the trading desk: written in status `referred` with its
    /// `bet_referrals` row (the stake is held by its debit meanwhile).
    pub referral: Option<ReferralRecord>,
    /// With several nodes: the leases the bet was taken under, checked at commit.
    pub fence: LeaseFence,
}

/// The `bet_referrals` row of a referred bet.
#[derive(Debug, Clone)]
pub struct ReferralRecord {
    /// The refusal referred: `liability_exceeded` or `stake_too_high`.
    pub reason: &'static str,
    /// The liability the bet would add (its potential win less its stake).
    pub liability: Decimal,
    pub expires_at: DateTime<Utc>,
}

impl BetRecord {
    pub fn status(&self) -> &'static str {
        if self.referral.is_some() {
            "referred"
        } else {
            "accepted"
        }
    }
}

/// The leases a bet was taken under (several engine nodes): each leg's event lease as its
/// reservation was taken (`(event, node, epoch)`, at this node or another) and the bettor's
/// wallet partition as the stake was held (`(partition, epoch)`, at this node). Empty with
/// one node.
#[derive(Debug, Clone, Default)]
pub struct LeaseFence {
    pub events: Vec<(EventId, String, i64)>,
    pub wallet: Option<(i32, i64)>,
}

const INSERT_BETS: &str = "
INSERT INTO bets (id, user_id, type, status, stake, total_odds, potential_win,
                  currency_code, placed_at, idempotency_key, metadata, bonus_stake, free_bet_id)
SELECT u.id, u.user_id, u.t::bet_type, u.st::bet_status, u.stake, u.odds, u.pw, u.cur, u.placed,
       u.key, u.meta, u.bonus, u.free
FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[],
            $7::text[], $8::timestamptz[], $9::text[], $10::jsonb[], $11::text[], $12::numeric[],
            $13::uuid[])
     AS u(id, user_id, t, stake, odds, pw, cur, placed, key, meta, st, bonus, free)";

const INSERT_REFERRALS: &str = "
INSERT INTO bet_referrals (bet_id, user_id, reason, stake, liability, expires_at)
SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::numeric[], $5::numeric[],
                     $6::timestamptz[])";

const INSERT_LEGS: &str = "
INSERT INTO bet_selections (bet_id, selection_id, odds)
SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::numeric[])";

/// The cash part of each stake as a `bet_debit`, the bonus part as a `bonus` row
/// (`bonus:stake:<bet>`): each row moves its own balance (docs/accounts.md). A free bet's
/// stake moves no money.
const INSERT_DEBITS: &str = "
INSERT INTO transactions (user_id, type, amount, currency_code, status, reference,
                          related_bet_id, description, processed_at)
SELECT u.user_id, d.kind::transaction_type, -d.amount, u.cur, 'completed',
       d.prefix || u.bet_id::text, u.bet_id, d.descr, now()
FROM UNNEST($1::uuid[], $2::uuid[], $3::numeric[], $4::text[], $5::numeric[])
     AS u(bet_id, user_id, cash, cur, bonus)
CROSS JOIN LATERAL (VALUES ('bet_debit', u.cash, 'bet:', 'stake'),
                           ('bonus', u.bonus, 'bonus:stake:', 'stake from bonus money'))
     AS d(kind, amount, prefix, descr)
WHERE d.amount > 0";

/// Sorted by user id so concurrent writers lock balance rows in one global order.
/// The balances move with the debits that explain them: marked as a ledger write, so the
/// audit trail does not copy them (V44).
const DEBIT_BALANCES: &str = "
UPDATE user_balances b SET balance = b.balance - d.total, bonus_balance = b.bonus_balance - d.bonus
FROM (SELECT * FROM UNNEST($1::uuid[], $2::numeric[], $3::numeric[]) AS u(user_id, total, bonus)) d,
     (SELECT set_config('winzo.ledger_write', 'on', true)) AS ledger
WHERE b.user_id = d.user_id";

/// Spends the free bets of the batch: each must be available, the bettor's and unexpired
/// (the bet path checked it; this is the last line against two nodes spending one token).
const SPEND_FREE_BETS: &str = "
UPDATE free_bets f SET status = 'spent', bet_id = u.bet_id, spent_at = now()
FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[]) AS u(token, bet_id, user_id)
WHERE f.id = u.token AND f.user_id = u.user_id AND f.status = 'available'
  AND f.expires_at > now()";

/// A batch as the columns of its statements' UNNEST arrays, in the bets' order.
#[derive(Default)]
struct BatchColumns<'a> {
    ids: Vec<BetId>,
    users: Vec<UserId>,
    types: Vec<&'static str>,
    stakes: Vec<Decimal>,
    odds: Vec<Decimal>,
    wins: Vec<Decimal>,
    currencies: Vec<&'a str>,
    placed: Vec<DateTime<Utc>>,
    keys: Vec<Option<&'a str>>,
    metas: Vec<&'a serde_json::Value>,
    statuses: Vec<&'static str>,
    /// The parts of the stakes paid from cash and from bonus money.
    cash: Vec<Decimal>,
    bonus: Vec<Decimal>,
    frees: Vec<Option<Uuid>>,
    /// `bet_selections`: bet, selection, odds.
    legs: (Vec<BetId>, Vec<SelectionId>, Vec<Decimal>),
    referrals: ReferralColumns,
    /// The free bets spent: token, bet, user.
    free_bets: (Vec<Uuid>, Vec<BetId>, Vec<UserId>),
    /// Cash and bonus debited per user, sorted by user id.
    per_user: BTreeMap<UserId, (Decimal, Decimal)>,
}

/// `bet_referrals` rows: bet, user, reason, stake, liability, expiry.
#[derive(Default)]
struct ReferralColumns {
    bets: Vec<BetId>,
    users: Vec<UserId>,
    reasons: Vec<&'static str>,
    stakes: Vec<Decimal>,
    liabilities: Vec<Decimal>,
    expiries: Vec<DateTime<Utc>>,
}

impl<'a> BatchColumns<'a> {
    fn of(bets: &[&'a BetRecord]) -> BatchColumns<'a> {
        let mut c = BatchColumns::default();
        for b in bets {
            let cash_part = if b.free_bet_id.is_some() {
                Decimal::ZERO
            } else {
                (b.stake - b.bonus_stake).as_decimal()
            };
            c.cash.push(cash_part);
            c.bonus.push(b.bonus_stake.as_decimal());
            c.frees.push(b.free_bet_id);
            if let Some(token) = b.free_bet_id {
                c.free_bets.0.push(token);
                c.free_bets.1.push(b.bet_id);
                c.free_bets.2.push(b.user_id);
            }
            c.ids.push(b.bet_id);
            c.users.push(b.user_id);
            c.types.push(b.bet_type.as_str());
            c.stakes.push(b.stake.as_decimal());
            c.odds.push(b.total_odds);
            c.wins.push(b.potential_win.as_decimal());
            c.currencies.push(b.currency_code.as_str());
            c.placed.push(b.placed_at);
            c.keys.push(b.idempotency_key.as_deref());
            c.metas.push(&b.metadata);
            c.statuses.push(b.status());
            if let Some(r) = &b.referral {
                c.referrals.push(b, r);
            }
            for leg in &b.legs {
                c.legs.0.push(b.bet_id);
                c.legs.1.push(leg.selection_id);
                c.legs.2.push(leg.odds);
            }
            let totals = c.per_user.entry(b.user_id).or_default();
            totals.0 += cash_part;
            totals.1 += b.bonus_stake.as_decimal();
        }
        c
    }
}

impl ReferralColumns {
    fn push(&mut self, b: &BetRecord, r: &ReferralRecord) {
        self.bets.push(b.bet_id);
        self.users.push(b.user_id);
        self.reasons.push(r.reason);
        self.stakes.push(b.stake.as_decimal());
        self.liabilities.push(r.liability);
        self.expiries.push(r.expires_at);
    }
}

/// Writes a batch of bets inside `tx`. Returns an error without committing on any
/// failure; the caller decides whether to retry bets one by one.
pub async fn write_bets(
    tx: &Transaction<'_>,
    bets: &[&BetRecord],
) -> Result<(), tokio_postgres::Error> {
    let c = BatchColumns::of(bets);
    let u_ids: Vec<UserId> = c.per_user.keys().copied().collect();
    let totals: Vec<Decimal> = c.per_user.values().map(|t| t.0).collect();
    let bonus_totals: Vec<Decimal> = c.per_user.values().map(|t| t.1).collect();
    let (s_bets, s_legs, s_debits, s_balances) = futures::try_join!(
        tx.prepare_cached(INSERT_BETS),
        tx.prepare_cached(INSERT_LEGS),
        tx.prepare_cached(INSERT_DEBITS),
        tx.prepare_cached(DEBIT_BALANCES),
    )?;
    type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
    let p_bets: [Param; 13] = [
        &c.ids,
        &c.users,
        &c.types,
        &c.stakes,
        &c.odds,
        &c.wins,
        &c.currencies,
        &c.placed,
        &c.keys,
        &c.metas,
        &c.statuses,
        &c.bonus,
        &c.frees,
    ];
    let p_legs: [Param; 3] = [&c.legs.0, &c.legs.1, &c.legs.2];
    let p_debits: [Param; 5] = [&c.ids, &c.users, &c.cash, &c.currencies, &c.bonus];
    let p_balances: [Param; 3] = [&u_ids, &totals, &bonus_totals];
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
    write_referrals(tx, &c.referrals).await?;
    spend_free_bets(tx, &c.free_bets).await
}

/// The `bet_referrals` rows of the batch's referred bets.
async fn write_referrals(
    tx: &Transaction<'_>,
    r: &ReferralColumns,
) -> Result<(), tokio_postgres::Error> {
    if r.bets.is_empty() {
        return Ok(());
    }
    let stmt = tx.prepare_cached(INSERT_REFERRALS).await?;
    tx.execute(
        &stmt,
        &[
            &r.bets,
            &r.users,
            &r.reasons,
            &r.stakes,
            &r.liabilities,
            &r.expiries,
        ],
    )
    .await?;
    Ok(())
}

/// Spends the batch's free bets (token, bet, user); all of them or the batch fails.
async fn spend_free_bets(
    tx: &Transaction<'_>,
    (tokens, bets, users): &(Vec<Uuid>, Vec<BetId>, Vec<UserId>),
) -> Result<(), tokio_postgres::Error> {
    if tokens.is_empty() {
        return Ok(());
    }
    let spent = tx.execute(SPEND_FREE_BETS, &[tokens, bets, users]).await?;
    if spent as usize != tokens.len() {
        // A token spent, expired or not the bettor's: refuse like a constraint would.
        tx.batch_execute(
            "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'check_violation',
               CONSTRAINT = 'free_bets_spend', MESSAGE = 'free bet not available'; END $$",
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
    users: &[UserId],
    bet_ids: &[BetId],
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
