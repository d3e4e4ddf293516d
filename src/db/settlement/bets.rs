//! The bets a settlement touches: leg results, bet states and their updates, batches.
use super::*;

use crate::domain::ids::{BetId, SelectionId, UserId};

/// A leg's settlement as a batch writes it.
pub struct LegSettlement<'a> {
    pub selection_id: SelectionId,
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
    bet_ids: &[BetId],
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
         FROM bet_keys b
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
    pub id: BetId,
    pub user_id: UserId,
    pub bet_type: String,
    pub status: String,
    /// The stake still at risk: the stake paid less what was cashed out (V60).
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
    pub selection_id: SelectionId,
    pub odds: Decimal,
    pub result: Option<String>,
    pub dead_heat_factor: Option<Decimal>,
    pub void_factor: Option<Decimal>,
}

/// The bets (with their legs) of these ids, in id order.
pub async fn load_bets<C: GenericClient>(
    c: &C,
    ids: &[BetId],
) -> Result<Vec<BetState>, tokio_postgres::Error> {
    let rows = c
        .query(
            // Through bet_keys: each bet is read in the one partition its placed_at names;
            // what a cash-out took is no longer at stake.
            "SELECT b.id, b.user_id, b.type::text, b.status::text, b.stake - b.cashed_out_stake,
                    b.actual_win, b.settlement_seq, b.metadata, b.currency_code,
                    b.potential_win - b.cashed_out_win
             FROM bet_keys k JOIN bets b ON b.id = k.id AND b.placed_at = k.placed_at
             WHERE k.id = ANY($1) ORDER BY b.id",
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
        let bet_id: BetId = r.get(0);
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

/// One bet of a booking, as the shard writes it.
pub struct BetUpdate {
    pub bet_id: BetId,
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
) -> Result<Vec<BetId>, tokio_postgres::Error> {
    let ids: Vec<BetId> = updates.iter().map(|u| u.bet_id).collect();
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
             JOIN bet_keys k ON k.id = u.id
             WHERE b.id = u.id AND b.placed_at = k.placed_at
               AND b.settlement_seq = u.seq AND b.status::text = u.old
             RETURNING b.id",
            &[&ids, &seqs, &olds, &news, &wins, &reasons],
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
    selection_id: SelectionId,
    after: Option<BetId>,
    limit: i64,
) -> Result<Vec<BatchBet>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT b.id, b.user_id, b.type::text, b.status::text, b.stake - b.cashed_out_stake,
                    b.actual_win, b.settlement_seq, b.metadata, b.currency_code,
                    b.potential_win - b.cashed_out_win, b.placed_at,
                    bs.id, bs.odds
             FROM bet_selections bs JOIN bets b ON b.id = bs.bet_id
             WHERE bs.selection_id = $1 AND bs.bet_id > $2 AND b.id > $2
             ORDER BY bs.bet_id LIMIT $3",
            // Plain ranges on both sides: the nil id sorts first, and `b.id > $2` lets a
            // merge join start the bets index at the cursor (without them every batch read
            // the bets from the first one: quadratic).
            &[&selection_id, &after.unwrap_or(BetId(Uuid::nil())), &limit],
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
    bet_ids: &[BetId],
    selection_id: SelectionId,
) -> Result<Vec<(BetId, Uuid, LegState)>, tokio_postgres::Error> {
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
