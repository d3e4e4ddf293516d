//! SQL of settlement (docs/settlement.md): the durable settlement record
//! (`market_settlements`), leg results in batches, the bets a batch settles, and the
//! wallet shard's atomic booking of payouts, reversals, refunds and debts.
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

/// A `market_settlements` row.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SettlementRow {
    pub id: Uuid,
    pub market_id: Uuid,
    pub version: i32,
    pub kind: String,
    #[schema(value_type = Vec<Object>)]
    pub results: Value,
    pub void_after: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub cursor_selection_id: Option<Uuid>,
    pub cursor_bet_id: Option<Uuid>,
    /// Bets whose status or payout this settlement changed so far.
    pub bets_changed: i32,
    /// Set once every bet on the market was processed.
    pub completed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, market_id, version, kind, results, void_after, reason, created_by,
    created_at, cursor_selection_id, cursor_bet_id, bets_changed, completed_at";

fn settlement_row(r: &Row) -> SettlementRow {
    SettlementRow {
        id: r.get(0),
        market_id: r.get(1),
        version: r.get(2),
        kind: r.get(3),
        results: r.get(4),
        void_after: r.get(5),
        reason: r.get(6),
        created_by: r.get(7),
        created_at: r.get(8),
        cursor_selection_id: r.get(9),
        cursor_bet_id: r.get(10),
        bets_changed: r.get(11),
        completed_at: r.get(12),
    }
}

impl SettlementRow {
    /// Did this settlement pay results (a settle or a resettle, not a void or a rollback)?
    pub fn paid_results(&self) -> bool {
        matches!(self.kind.as_str(), "settle" | "resettle")
    }
}

/// The market's status, locked for the rest of the transaction (`None`: no such market).
pub async fn lock_market<C: GenericClient>(
    c: &C,
    market_id: Uuid,
) -> Result<Option<String>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT status::text FROM markets WHERE id = $1 FOR UPDATE",
            &[&market_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Moves the market to `settled` or `voided` (absolute; `settled_at` now). This UPDATE is
/// what makes a concurrent bet's placement check wait or refuse (docs/schema.md C6).
pub async fn set_market_final<C: GenericClient>(
    c: &C,
    market_id: Uuid,
    status: &str,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE markets SET status = $2::text::market_status, settled_at = now() WHERE id = $1",
        &[&market_id, &status],
    )
    .await?;
    Ok(())
}

/// A settled market back to `closed` with no results (a rolled-back result).
pub async fn reopen_settled_market<C: GenericClient>(
    c: &C,
    market_id: Uuid,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE markets SET status = 'closed', settled_at = NULL WHERE id = $1",
        &[&market_id],
    )
    .await?;
    c.execute(
        "UPDATE selections SET result = NULL WHERE market_id = $1",
        &[&market_id],
    )
    .await?;
    Ok(())
}

/// The selections' results (`selections.result`), for display and the catalogue.
pub async fn set_selection_results<C: GenericClient>(
    c: &C,
    ids: &[Uuid],
    results: &[&str],
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE selections s SET result = u.r::selection_result
         FROM UNNEST($1::uuid[], $2::text[]) AS u(id, r) WHERE s.id = u.id",
        &[&ids, &results],
    )
    .await?;
    Ok(())
}

pub async fn latest<C: GenericClient>(
    c: &C,
    market_id: Uuid,
) -> Result<Option<SettlementRow>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM market_settlements WHERE market_id = $1
                 ORDER BY version DESC LIMIT 1"
            ),
            &[&market_id],
        )
        .await?;
    Ok(row.as_ref().map(settlement_row))
}

/// A new settlement record to insert.
pub struct NewSettlement<'a> {
    pub market_id: Uuid,
    pub version: i32,
    pub kind: &'a str,
    pub results: Value,
    pub void_after: Option<DateTime<Utc>>,
    pub reason: Option<&'a str>,
    pub created_by: Option<Uuid>,
}

pub async fn insert<C: GenericClient>(
    c: &C,
    s: &NewSettlement<'_>,
) -> Result<SettlementRow, tokio_postgres::Error> {
    let row = c
        .query_one(
            &format!(
                "INSERT INTO market_settlements
                    (market_id, version, kind, results, void_after, reason, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
            ),
            &[
                &s.market_id,
                &s.version,
                &s.kind,
                &s.results,
                &s.void_after,
                &s.reason,
                &s.created_by,
            ],
        )
        .await?;
    Ok(settlement_row(&row))
}

pub async fn get<C: GenericClient>(
    c: &C,
    id: Uuid,
) -> Result<Option<SettlementRow>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM market_settlements WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(settlement_row))
}

/// Every settlement not yet completed (resumed on start-up), oldest first.
pub async fn unfinished<C: GenericClient>(
    c: &C,
) -> Result<Vec<SettlementRow>, tokio_postgres::Error> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM market_settlements WHERE completed_at IS NULL
                 ORDER BY created_at"
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(settlement_row).collect())
}

/// Every selection of the market (active or not), in id order.
pub async fn market_selections<C: GenericClient>(
    c: &C,
    market_id: Uuid,
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT id FROM selections WHERE market_id = $1 ORDER BY id",
            &[&market_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A leg's settlement as a batch writes it.
pub struct LegSettlement<'a> {
    pub selection_id: Uuid,
    /// `None`: the leg is open again (a rolled-back result).
    pub result: Option<&'a str>,
    pub dead_heat_factor: Option<Decimal>,
    pub void_factor: Option<Decimal>,
    /// Bets placed after this get `void` on this leg instead (past-posting).
    pub void_after: Option<DateTime<Utc>>,
    pub version: i32,
}

/// Writes the leg result of these bets on the selection, unless this settlement version
/// already did (a resumed batch rewrites nothing).
pub async fn mark_legs<C: GenericClient>(
    c: &C,
    leg: &LegSettlement<'_>,
    bet_ids: &[Uuid],
) -> Result<u64, tokio_postgres::Error> {
    if leg.void_after.is_none() {
        // Without past-posting every leg gets the same result: no need to read the bets.
        return c
            .execute(
                "UPDATE bet_selections SET result = $2::text::selection_result,
                     dead_heat_factor = $3, void_factor = $4,
                     settled_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END,
                     settlement_version = $5
                 WHERE selection_id = $1 AND bet_id = ANY($6)
                   AND settlement_version IS DISTINCT FROM $5",
                &[
                    &leg.selection_id,
                    &leg.result,
                    &leg.dead_heat_factor,
                    &leg.void_factor,
                    &leg.version,
                    &bet_ids,
                ],
            )
            .await;
    }
    c.execute(
        "UPDATE bet_selections bs SET
            result = CASE WHEN $5::timestamptz IS NOT NULL AND b.placed_at > $5
                          THEN 'void'::selection_result ELSE $2::text::selection_result END,
            dead_heat_factor = CASE WHEN $5::timestamptz IS NOT NULL AND b.placed_at > $5
                          THEN NULL ELSE $3::numeric END,
            void_factor = CASE WHEN $5::timestamptz IS NOT NULL AND b.placed_at > $5
                          THEN NULL ELSE $4::numeric END,
            settled_at = now(),
            settlement_version = $6
         FROM bets b
         WHERE b.id = bs.bet_id AND bs.selection_id = $1 AND bs.bet_id = ANY($7)
           AND bs.settlement_version IS DISTINCT FROM $6",
        &[
            &leg.selection_id,
            &leg.result,
            &leg.dead_heat_factor,
            &leg.void_factor,
            &leg.void_after,
            &leg.version,
            &bet_ids,
        ],
    )
    .await
}

/// A bet with everything its settlement needs.
#[derive(Debug, Clone)]
pub struct BetState {
    pub id: Uuid,
    pub user_id: Uuid,
    pub bet_type: String,
    pub status: String,
    pub stake: Decimal,
    /// What an open bet counts in its markets' liability (with `stake`).
    pub potential_win: Decimal,
    pub actual_win: Decimal,
    pub settlement_seq: i32,
    pub metadata: Value,
    pub currency_code: String,
    pub legs: Vec<LegState>,
}

/// One leg: the odds taken and its result so far.
#[derive(Debug, Clone)]
pub struct LegState {
    pub selection_id: Uuid,
    pub odds: Decimal,
    pub result: Option<String>,
    pub dead_heat_factor: Option<Decimal>,
    pub void_factor: Option<Decimal>,
}

/// The bets (with their legs) of these ids, in id order.
pub async fn load_bets<C: GenericClient>(
    c: &C,
    ids: &[Uuid],
) -> Result<Vec<BetState>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT id, user_id, type::text, status::text, stake, actual_win, settlement_seq,
                    metadata, currency_code, potential_win
             FROM bets WHERE id = ANY($1) ORDER BY id",
            &[&ids],
        )
        .await?;
    let mut bets: Vec<BetState> = rows
        .iter()
        .map(|r| BetState {
            id: r.get(0),
            user_id: r.get(1),
            bet_type: r.get(2),
            status: r.get(3),
            stake: r.get(4),
            actual_win: r.get(5),
            settlement_seq: r.get(6),
            metadata: r.get(7),
            currency_code: r.get(8),
            potential_win: r.get(9),
            legs: Vec::new(),
        })
        .collect();
    let legs = c
        .query(
            "SELECT bet_id, odds, result::text, dead_heat_factor, void_factor, selection_id
             FROM bet_selections WHERE bet_id = ANY($1) ORDER BY bet_id, id",
            &[&ids],
        )
        .await?;
    for r in &legs {
        let bet_id: Uuid = r.get(0);
        if let Ok(i) = bets.binary_search_by(|b| b.id.cmp(&bet_id)) {
            bets[i].legs.push(LegState {
                selection_id: r.get(5),
                odds: r.get(1),
                result: r.get(2),
                dead_heat_factor: r.get(3),
                void_factor: r.get(4),
            });
        }
    }
    Ok(bets)
}

/// Records how far the settlement got.
pub async fn advance<C: GenericClient>(
    c: &C,
    id: Uuid,
    selection_id: Uuid,
    bet_id: Option<Uuid>,
    changed: i32,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE market_settlements SET cursor_selection_id = $2, cursor_bet_id = $3,
             bets_changed = bets_changed + $4 WHERE id = $1",
        &[&id, &selection_id, &bet_id, &changed],
    )
    .await?;
    Ok(())
}

pub async fn complete<C: GenericClient>(c: &C, id: Uuid) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE market_settlements SET completed_at = now() WHERE id = $1 AND completed_at IS NULL",
        &[&id],
    )
    .await?;
    Ok(())
}

/// One bet of a booking, as the shard writes it.
pub struct BetUpdate {
    pub bet_id: Uuid,
    pub expected_seq: i32,
    pub old_status: String,
    pub new_status: String,
    pub new_win: Decimal,
    pub void_reason: Option<String>,
}

/// Moves the bets to their new state, each only if it still has the expected status and
/// settlement count (exactly once). Answers the ids that moved.
pub async fn update_bets<C: GenericClient>(
    c: &C,
    updates: &[BetUpdate],
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let ids: Vec<Uuid> = updates.iter().map(|u| u.bet_id).collect();
    let seqs: Vec<i32> = updates.iter().map(|u| u.expected_seq).collect();
    let olds: Vec<&str> = updates.iter().map(|u| u.old_status.as_str()).collect();
    let news: Vec<&str> = updates.iter().map(|u| u.new_status.as_str()).collect();
    let wins: Vec<Decimal> = updates.iter().map(|u| u.new_win).collect();
    let reasons: Vec<Option<&str>> = updates.iter().map(|u| u.void_reason.as_deref()).collect();
    let rows = c
        .query(
            "UPDATE bets b SET status = u.st::bet_status, actual_win = u.win, settled_at = now(),
                 void_reason = COALESCE(u.reason, b.void_reason),
                 settlement_seq = b.settlement_seq + 1
             FROM UNNEST($1::uuid[], $2::int[], $3::text[], $4::text[], $5::numeric[], $6::text[])
                  AS u(id, seq, old, st, win, reason)
             WHERE b.id = u.id AND b.settlement_seq = u.seq AND b.status::text = u.old
             RETURNING b.id",
            &[&ids, &seqs, &olds, &news, &wins, &reasons],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A settlement ledger row.
pub struct BookedTx {
    pub user_id: Uuid,
    pub bet_id: Uuid,
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
    let users: Vec<Uuid> = txs.iter().map(|t| t.user_id).collect();
    let bets: Vec<Uuid> = txs.iter().map(|t| t.bet_id).collect();
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
    users: &[Uuid],
) -> Result<Vec<(Uuid, Decimal)>, tokio_postgres::Error> {
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
    users: &[Uuid],
    deltas: &[Decimal],
) -> Result<Vec<(Uuid, Decimal)>, tokio_postgres::Error> {
    let rows = c
        .query(
            // A ledger write (V44): the bookings' transaction rows explain it.
            "UPDATE user_balances b SET balance = b.balance + d.delta
             FROM UNNEST($1::uuid[], $2::numeric[]) AS d(user_id, delta),
                  (SELECT set_config('winzo.ledger_write', 'on', true)) AS ledger
             WHERE b.user_id = d.user_id RETURNING b.user_id, b.balance",
            &[&users, &deltas],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Records what a resettlement could not take back, and flags the accounts for staff.
pub async fn insert_debts<C: GenericClient>(
    c: &C,
    debts: &[(Uuid, Uuid, Decimal, String)],
) -> Result<(), tokio_postgres::Error> {
    if debts.is_empty() {
        return Ok(());
    }
    let users: Vec<Uuid> = debts.iter().map(|d| d.0).collect();
    let bets: Vec<Uuid> = debts.iter().map(|d| d.1).collect();
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
) -> Result<Vec<(Uuid, Decimal, Decimal, Decimal)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "WITH credits AS (
                 SELECT related_bet_id AS bet_id, sum(amount) AS net
                 FROM transactions
                 WHERE related_bet_id IS NOT NULL AND status = 'completed'
                   AND type IN ('bet_credit', 'adjustment', 'refund')
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

/// The markets of an event without a void settlement yet (a cancelled event voids them
/// all; its actor may have set their status already, but not refunded their bets).
pub async fn event_markets_to_void<C: GenericClient>(
    c: &C,
    event_id: Uuid,
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT m.id FROM markets m WHERE m.event_id = $1 AND NOT EXISTS
                 (SELECT 1 FROM market_settlements s WHERE s.market_id = m.id AND s.kind = 'void')
             ORDER BY m.id",
            &[&event_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether the event's status is `cancelled` (`None`: no such event).
pub async fn event_cancelled<C: GenericClient>(
    c: &C,
    event_id: Uuid,
) -> Result<Option<bool>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT status = 'cancelled' FROM events WHERE id = $1",
            &[&event_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Cancelled events after `after` (by id) with a market whose void settlement was never
/// recorded (a crash between the cancellation and its voids), at most `limit`.
pub async fn cancelled_events_to_void<C: GenericClient>(
    c: &C,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT e.id FROM events e
              WHERE e.status = 'cancelled' AND ($1::uuid IS NULL OR e.id > $1)
                AND EXISTS (SELECT 1 FROM markets m WHERE m.event_id = e.id AND NOT EXISTS
                     (SELECT 1 FROM market_settlements s
                      WHERE s.market_id = m.id AND s.kind = 'void'))
              ORDER BY e.id LIMIT $2",
            &[&after, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A bet of a settlement batch with its leg on the selection being settled.
pub struct BatchBet {
    pub bet: BetState,
    pub placed_at: DateTime<Utc>,
    /// The leg on the selection being settled: its id and the odds taken.
    pub leg_id: Uuid,
    pub leg_odds: Decimal,
}

/// The next `limit` bets with a leg on `selection_id` after `after`, in bet id order, with
/// what settling them needs (their other legs come from [`other_legs`]). One index range
/// of `(selection_id, bet_id)` and a key lookup per bet.
pub async fn batch_bets<C: GenericClient>(
    c: &C,
    selection_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<BatchBet>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT b.id, b.user_id, b.type::text, b.status::text, b.stake, b.actual_win,
                    b.settlement_seq, b.metadata, b.currency_code, b.potential_win, b.placed_at,
                    bs.id, bs.odds
             FROM bet_selections bs JOIN bets b ON b.id = bs.bet_id
             WHERE bs.selection_id = $1 AND bs.bet_id > $2 AND b.id > $2
             ORDER BY bs.bet_id LIMIT $3",
            // Plain ranges on both sides: the nil id sorts first, and `b.id > $2` lets a
            // merge join start the bets index at the cursor (without them every batch read
            // the bets from the first one: quadratic).
            &[&selection_id, &after.unwrap_or(Uuid::nil()), &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| BatchBet {
            bet: BetState {
                id: r.get(0),
                user_id: r.get(1),
                bet_type: r.get(2),
                status: r.get(3),
                stake: r.get(4),
                actual_win: r.get(5),
                settlement_seq: r.get(6),
                metadata: r.get(7),
                currency_code: r.get(8),
                potential_win: r.get(9),
                legs: Vec::new(),
            },
            placed_at: r.get(10),
            leg_id: r.get(11),
            leg_odds: r.get(12),
        })
        .collect())
}

/// The legs of these (multi-leg) bets on other selections than `selection_id`, as
/// `(bet_id, leg_id, leg)` in bet and leg id order.
pub async fn other_legs<C: GenericClient>(
    c: &C,
    bet_ids: &[Uuid],
    selection_id: Uuid,
) -> Result<Vec<(Uuid, Uuid, LegState)>, tokio_postgres::Error> {
    if bet_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            "SELECT bet_id, id, selection_id, odds, result::text, dead_heat_factor, void_factor
             FROM bet_selections WHERE bet_id = ANY($1) AND selection_id <> $2
             ORDER BY bet_id, id",
            &[&bet_ids, &selection_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let leg = LegState {
                selection_id: r.get(2),
                odds: r.get(3),
                result: r.get(4),
                dead_heat_factor: r.get(5),
                void_factor: r.get(6),
            };
            (r.get(0), r.get(1), leg)
        })
        .collect())
}
