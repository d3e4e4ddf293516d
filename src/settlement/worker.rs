//! The batch worker of one market settlement: selection by selection, bets in id order,
//! `batch_bets_max` at a time: write the legs' results (once per settlement version),
//! compute each bet's desired state, have the wallet shards book the differences, record
//! the cursor. Every step converges (a leg already at this version is not rewritten, a bet
//! already at its desired state books nothing, a booking is compare-and-set), so a batch
//! retried after a failure or resumed after a crash pays nothing twice.
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use super::compute::desired;
use super::Settlement;
use crate::broadcast::user_topic;
use crate::db::audit::Actor as AuditActor;
use crate::db::settlement::{self as sdb, LegSettlement, LegState, SettlementRow};
use crate::domain::ids::{BetId, SelectionId, UserId};
use crate::domain::settlement::BetChange;
use crate::wallet::credits::{Booked, Booking};

/// One selection's result as recorded in `market_settlements.results`.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionResult {
    pub result: String,
    pub dead_heat_factor: Option<Decimal>,
    pub void_factor: Option<Decimal>,
}

fn factor(v: &Value) -> Option<Decimal> {
    v.as_str().and_then(|s| Decimal::from_str(s).ok())
}

/// The recorded results by selection (a void settles every selection `void`).
pub fn results_of(row: &SettlementRow) -> HashMap<SelectionId, SelectionResult> {
    let mut out = HashMap::new();
    for r in row.results.as_array().into_iter().flatten() {
        let Some(id) = r["selection_id"]
            .as_str()
            .and_then(|s| s.parse::<SelectionId>().ok())
        else {
            continue;
        };
        let result = r["result"].as_str().unwrap_or("void").to_string();
        out.insert(
            id,
            SelectionResult {
                result,
                dead_heat_factor: factor(&r["dead_heat_factor"]),
                void_factor: factor(&r["void_factor"]),
            },
        );
    }
    out
}

/// Runs the settlement to completion, retrying failed batches until they succeed.
pub async fn run(s: &Settlement, row: SettlementRow) {
    let retry = Duration::from_millis(s.settings.retry_interval_ms.max(1));
    loop {
        match run_once(s, &row).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(settlement = %row.id, error = %format!("{e:#}"), "settlement batch failed; retrying");
                tokio::time::sleep(retry).await;
            }
        }
    }
}

/// What every batch of one run needs.
struct Plan {
    row: SettlementRow,
    results: HashMap<SelectionId, SelectionResult>,
    selections: Vec<SelectionId>,
    batch: i64,
    /// Each payout is rounded at its bet's currency's scale.
    currencies: std::sync::Arc<crate::domain::currency::Currencies>,
}

impl Plan {
    fn outcome(&self, selection_id: SelectionId) -> SelectionResult {
        match (self.row.kind.as_str(), self.results.get(&selection_id)) {
            ("void", _) | (_, None) => SelectionResult {
                result: "void".into(),
                dead_heat_factor: None,
                void_factor: None,
            },
            (_, Some(r)) => r.clone(),
        }
    }
}

/// Where the next batch starts: the selection (index in the plan) and the last bet done.
struct Cursor {
    index: usize,
    after: Option<BetId>,
}

/// A batch read, marked and computed, ready to book.
struct Batch {
    selection_id: SelectionId,
    last: BetId,
    changes: Vec<BetChange>,
}

/// One pass from the recorded cursor to the end. Batches are pipelined: while the wallet
/// shards book batch `k`, the next one is read, its legs marked and its bets computed on
/// the worker's connection. The cursor is recorded only once a batch is booked, so a
/// failure or a crash repeats at most the batches after it (converging, paying nothing
/// twice).
async fn run_once(s: &Settlement, row: &SettlementRow) -> anyhow::Result<()> {
    let client = s.pool.get().await?;
    // Resume from the recorded cursor (a retry re-reads it).
    let row = sdb::get(&client, row.id)
        .await?
        .unwrap_or_else(|| row.clone());
    if row.completed_at.is_some() {
        return Ok(());
    }
    let selections = sdb::market_selections(&client, row.market_id).await?;
    let mut cursor = Cursor {
        index: row
            .cursor_selection_id
            .map_or(0, |c| selections.partition_point(|s| *s < c)),
        after: row.cursor_bet_id,
    };
    if row.cursor_selection_id != selections.get(cursor.index).copied() {
        cursor.after = None;
    }
    let plan = Plan {
        results: results_of(&row),
        selections,
        batch: i64::try_from(s.settings.batch_bets_max.max(1)).unwrap_or(1000),
        currencies: s.registry.currencies().clone(),
        row,
    };
    let actor = AuditActor {
        user_id: plan.row.created_by,
        ip: None,
    };
    let mut next = prepare(&client, &plan, &mut cursor).await?;
    while let Some(batch) = next {
        let (booked, following) = tokio::join!(
            book(s, batch.changes, actor),
            prepare(&client, &plan, &mut cursor)
        );
        let booked = booked?;
        let changed = i32::try_from(booked.len()).unwrap_or(i32::MAX);
        sdb::advance(
            &client,
            plan.row.id,
            batch.selection_id,
            Some(batch.last),
            changed,
        )
        .await?;
        publish(s, &booked);
        super::exposure::release(&s.registry, &booked).await;
        next = following?;
    }
    sdb::complete(&client, plan.row.id).await?;
    tracing::info!(settlement = %plan.row.id, market = %plan.row.market_id, "settlement complete");
    Ok(())
}

/// The next non-empty batch from the cursor (advancing it), or `None` at the end: its bets
/// read, their legs on the selection marked, the changes computed.
async fn prepare(
    client: &deadpool_postgres::Client,
    plan: &Plan,
    cursor: &mut Cursor,
) -> anyhow::Result<Option<Batch>> {
    while let Some(&selection_id) = plan.selections.get(cursor.index) {
        let bets = sdb::batch_bets(client, selection_id, cursor.after, plan.batch).await?;
        let Some(last) = bets.last().map(|b| b.bet.id) else {
            cursor.index += 1;
            cursor.after = None;
            continue;
        };
        cursor.after = Some(last);
        let outcome = plan.outcome(selection_id);
        // A rollback opens the legs again: no result.
        let rollback = plan.row.kind == "rollback";
        let leg = LegSettlement {
            selection_id,
            result: (!rollback).then_some(outcome.result.as_str()),
            dead_heat_factor: outcome.dead_heat_factor,
            void_factor: outcome.void_factor,
            void_after: plan.row.void_after,
            version: plan.row.version,
        };
        let ids: Vec<BetId> = bets.iter().map(|b| b.bet.id).collect();
        let multi: Vec<BetId> = bets
            .iter()
            .filter(|b| b.bet.bet_type != "single")
            .map(|b| b.bet.id)
            .collect();
        // Pipelined on the one connection; independent (other legs exclude this selection).
        let (_, others) = tokio::try_join!(
            sdb::mark_legs(client, &leg, &ids),
            sdb::other_legs(client, &multi, selection_id)
        )?;
        let changes = compute_batch(plan, &leg, bets, others);
        return Ok(Some(Batch {
            selection_id,
            last,
            changes,
        }));
    }
    Ok(None)
}

/// Each bet with all its legs (the one on this selection as `mark_legs` writes it), then
/// its change if it needs one.
fn compute_batch(
    plan: &Plan,
    leg: &LegSettlement<'_>,
    bets: Vec<sdb::BatchBet>,
    others: Vec<(BetId, Uuid, LegState)>,
) -> Vec<BetChange> {
    let mut others = others.into_iter().peekable();
    let market_void =
        (plan.row.kind == "void").then(|| plan.row.reason.as_deref().unwrap_or("voided"));
    let mut changes = Vec::new();
    for b in bets {
        let past_posted = leg.void_after.is_some_and(|t| b.placed_at > t);
        let this = LegState {
            selection_id: leg.selection_id,
            odds: b.leg_odds,
            result: match (past_posted, leg.result) {
                (true, _) => Some("void".to_string()),
                (false, r) => r.map(str::to_string),
            },
            dead_heat_factor: leg.dead_heat_factor.filter(|_| !past_posted),
            void_factor: leg.void_factor.filter(|_| !past_posted),
        };
        let mut legs = vec![(b.leg_id, this)];
        while let Some((_, leg_id, other)) = others.next_if(|(bet, _, _)| *bet == b.bet.id) {
            legs.push((leg_id, other));
        }
        legs.sort_by_key(|(id, _)| *id);
        let mut bet = b.bet;
        bet.legs = legs.into_iter().map(|(_, l)| l).collect();
        let scale = plan.currencies.scale_of(&bet.currency_code);
        match desired(&bet, market_void, scale) {
            Ok(Some(c)) => changes.push(c),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "bet cannot be settled; left as it is"),
        }
    }
    changes
}

/// Has each shard book its users' changes, durably (a trader's void of one bet is
/// answered once booked); fails if any shard failed (then retried: what was booked is not
/// booked again).
pub async fn book(
    s: &Settlement,
    changes: Vec<BetChange>,
    actor: AuditActor,
) -> anyhow::Result<Vec<Booked>> {
    // At most `shards_concurrent_max` shards book a settlement's changes at once, each on a
    // connection of the settlement's own pool: the other shards keep serving bets meanwhile.
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let booking = Booking {
        pool: s.pool.clone(),
        turns: s.booking_turns.clone(),
        actor,
    };
    let booked = s
        .wallet
        .settle_credits(changes, booking)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    // Bonus money moved (a share, a conversion): other nodes' cached bonus state of these
    // users is read again. The booking is committed; a node this cannot reach has lost its
    // notice channel too and reads bonus state for every bet meanwhile.
    let users: std::collections::BTreeSet<UserId> = booked
        .iter()
        .filter(|b| b.bonus_changed)
        .map(|b| b.change.user_id)
        .collect();
    for user in users {
        let told = s
            .controls
            .changed(user, crate::accounts::controls::Change::Bonus)
            .await;
        if let Err(e) = told {
            tracing::warn!(%user, error = ?e, "a bonus change could not reach every node");
        }
    }
    Ok(booked)
}

/// The bettor's `bet` and `balance` messages on their private channel.
pub fn publish(s: &Settlement, booked: &[Booked]) {
    for b in booked {
        let c = &b.change;
        let topic = user_topic(c.user_id);
        s.hub.publish(
            &topic,
            "bet",
            &json!({"bet_id": c.bet_id, "status": c.new_status, "payout": c.new_win.to_string(),
                    "void_reason": c.void_reason}),
        );
        // A balance the booking did not give (a lost bet of an account not cached here)
        // is not guessed: the message is sent only with the balance after the booking.
        if let Some(balance) = b.balance {
            s.hub.publish(
                &topic,
                "balance",
                &json!({"balance": format!("{balance:.2}")}),
            );
        }
    }
}
