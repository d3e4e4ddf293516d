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

use super::compute::{desired, BetChange};
use super::{user_topic, Settlement};
use crate::db::audit::Actor as AuditActor;
use crate::db::settlement::{self as sdb, LegSettlement, SettlementRow};
use crate::wallet::credits::Booked;

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
pub fn results_of(row: &SettlementRow) -> HashMap<Uuid, SelectionResult> {
    let mut out = HashMap::new();
    for r in row.results.as_array().into_iter().flatten() {
        let Some(id) = r["selection_id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
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

async fn run_once(s: &Settlement, row: &SettlementRow) -> anyhow::Result<()> {
    let client = s.pool.get().await?;
    // Resume from the recorded cursor (a retry re-reads it).
    let row = sdb::get(&client, row.id)
        .await?
        .unwrap_or_else(|| row.clone());
    if row.completed_at.is_some() {
        return Ok(());
    }
    let results = results_of(&row);
    let selections = sdb::market_selections(&client, row.market_id).await?;
    drop(client);
    let batch = i64::try_from(s.settings.batch_bets_max.max(1)).unwrap_or(1000);
    for selection_id in selections {
        if row.cursor_selection_id.is_some_and(|c| selection_id < c) {
            continue;
        }
        let mut after = if row.cursor_selection_id == Some(selection_id) {
            row.cursor_bet_id
        } else {
            None
        };
        let outcome = match (row.kind.as_str(), results.get(&selection_id)) {
            ("void", _) | (_, None) => SelectionResult {
                result: "void".into(),
                dead_heat_factor: None,
                void_factor: None,
            },
            (_, Some(r)) => r.clone(),
        };
        loop {
            let client = s.pool.get().await?;
            let ids = sdb::next_bets(&client, selection_id, after, batch).await?;
            drop(client);
            let Some(&last) = ids.last() else { break };
            let changed = settle_batch(s, &row, selection_id, &outcome, &ids).await?;
            let client = s.pool.get().await?;
            sdb::advance(&client, row.id, selection_id, Some(last), changed).await?;
            after = Some(last);
        }
    }
    let client = s.pool.get().await?;
    sdb::complete(&client, row.id).await?;
    tracing::info!(settlement = %row.id, market = %row.market_id, "settlement complete");
    Ok(())
}

/// One batch: legs, desired states, bookings, notifications. Answers the bets changed.
async fn settle_batch(
    s: &Settlement,
    row: &SettlementRow,
    selection_id: Uuid,
    outcome: &SelectionResult,
    ids: &[Uuid],
) -> anyhow::Result<i32> {
    let client = s.pool.get().await?;
    let leg = LegSettlement {
        selection_id,
        result: &outcome.result,
        dead_heat_factor: outcome.dead_heat_factor,
        void_factor: outcome.void_factor,
        void_after: row.void_after,
        version: row.version,
    };
    sdb::mark_legs(&client, &leg, ids).await?;
    let bets = sdb::load_bets(&client, ids).await?;
    drop(client);
    let market_void = (row.kind == "void").then(|| row.reason.as_deref().unwrap_or("voided"));
    let mut changes = Vec::new();
    for bet in &bets {
        match desired(bet, market_void) {
            Ok(Some(c)) => changes.push(c),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "bet cannot be settled; left as it is"),
        }
    }
    let actor = AuditActor {
        user_id: row.created_by,
        ip: None,
    };
    let booked = book(s, changes, actor).await?;
    publish(s, &booked);
    super::exposure::release(&s.registry, &booked).await;
    Ok(i32::try_from(booked.len()).unwrap_or(i32::MAX))
}

/// Has each shard book its users' changes (all shards at once); fails if any shard failed
/// (the batch is then retried: what was booked is not booked again).
pub async fn book(
    s: &Settlement,
    changes: Vec<BetChange>,
    actor: AuditActor,
) -> anyhow::Result<Vec<Booked>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    s.wallet
        .settle_credits(changes, actor)
        .await
        .map_err(|e| anyhow::anyhow!(e))
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
        s.hub.publish(
            &topic,
            "balance",
            &json!({"balance": b.balance.to_string()}),
        );
    }
}
