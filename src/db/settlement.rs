//! SQL of settlement (docs/settlement.md): the durable settlement record
//! (`market_settlements`), leg results in batches, the bets a batch settles, and the
//! wallet shard's atomic booking of payouts, reversals, refunds and debts.
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::domain::ids::{BetId, MarketId, SelectionId, UserId};

mod bets;
mod money;
mod voids;
#[allow(unused_imports)]
pub use bets::*;
#[allow(unused_imports)]
pub use money::*;
#[allow(unused_imports)]
pub use voids::*;

/// A `market_settlements` row.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SettlementRow {
    pub id: Uuid,
    #[schema(value_type = uuid::Uuid)]
    pub market_id: MarketId,
    pub version: i32,
    pub kind: String,
    #[schema(value_type = Vec<Object>)]
    pub results: Value,
    pub void_after: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub cursor_selection_id: Option<SelectionId>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub cursor_bet_id: Option<BetId>,
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
    market_id: MarketId,
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
    market_id: MarketId,
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
    market_id: MarketId,
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
    ids: &[SelectionId],
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
    market_id: MarketId,
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
    pub market_id: MarketId,
    pub version: i32,
    pub kind: &'a str,
    pub results: Value,
    pub void_after: Option<DateTime<Utc>>,
    pub reason: Option<&'a str>,
    pub created_by: Option<UserId>,
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
    market_id: MarketId,
) -> Result<Vec<SelectionId>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT id FROM selections WHERE market_id = $1 ORDER BY id",
            &[&market_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Records how far the settlement got.
pub async fn advance<C: GenericClient>(
    c: &C,
    id: Uuid,
    selection_id: SelectionId,
    bet_id: Option<BetId>,
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
