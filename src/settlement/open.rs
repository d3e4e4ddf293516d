//! Opening a settlement: validate the results, take the market out of trading through its
//! actor (close then settle, or void: the actor stops and its liability is released), then
//! in one transaction lock the market row, set its final status, record the settlement
//! (`market_settlements`, next version) and the selections' results. Only then does the
//! worker read legs, so no bet can slip in between (docs/schema.md C6).
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::error::SettlementError;
use super::Settlement;
use crate::actors::market::ApplyCommand;
use crate::actors::{AuditActor, Registry};
use crate::db::audit::{self, Actor};
use crate::db::settlement::{self as sdb, NewSettlement, SettlementRow};
use crate::domain::ids::{MarketId, SelectionId};
use crate::domain::{LegOutcome, LegResult, MarketCommand};

type Result<T> = std::result::Result<T, SettlementError>;

/// What the trader asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Settle,
    Resettle,
    Void,
    /// The result the market was settled on is withdrawn: back to `closed`, bets open.
    Rollback,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Settle => "settle",
            Kind::Resettle => "resettle",
            Kind::Void => "void",
            Kind::Rollback => "rollback",
        }
    }
}

/// One selection's result as asked (factors as decimal strings).
#[derive(Debug, Clone)]
pub struct ResultSpec {
    pub selection_id: SelectionId,
    pub result: LegResult,
    pub dead_heat_factor: Option<String>,
    pub void_factor: Option<String>,
}

pub struct OpenRequest {
    pub kind: Kind,
    pub results: Vec<ResultSpec>,
    pub void_after: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// The answer: the settlement row, and whether this request started it.
pub struct Opened {
    pub row: SettlementRow,
    pub started: bool,
}

fn parse_factor(field: &str, v: &Option<String>) -> Result<Option<Decimal>> {
    let Some(text) = v else { return Ok(None) };
    if text.len() > 30 || text.contains(['e', 'E']) {
        return Err(SettlementError::invalid(format!(
            "{field} must be a plain decimal"
        )));
    }
    Decimal::from_str(text)
        .map(|d| Some(d.normalize()))
        .map_err(|_| SettlementError::invalid(format!("{field} must be a decimal string")))
}

/// Checks the results against the market's selections (each exactly once, factors in
/// range) and answers them as recorded: sorted by selection id, factors normalized.
fn normalize(specs: &[ResultSpec], selections: &[SelectionId]) -> Result<Value> {
    let known: HashSet<SelectionId> = selections.iter().copied().collect();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(specs.len());
    for s in specs {
        if !known.contains(&s.selection_id) {
            return Err(SettlementError::Invalid {
                message: "unknown selection for this market".into(),
                code: Some("unknown_selection"),
                details: json!({"selection_id": s.selection_id}),
            });
        }
        if !seen.insert(s.selection_id) {
            return Err(SettlementError::invalid("a selection has two results"));
        }
        let dh = parse_factor("dead_heat_factor", &s.dead_heat_factor)?;
        let vf = parse_factor("void_factor", &s.void_factor)?;
        LegOutcome::new(s.result, dh, vf).map_err(|e| SettlementError::invalid(e.to_string()))?;
        out.push((s.selection_id, s.result, dh, vf));
    }
    if seen.len() != known.len() {
        return Err(SettlementError::Invalid {
            message: "every selection of the market needs a result".into(),
            code: None,
            details: json!({"selections": selections}),
        });
    }
    out.sort_by_key(|r| r.0);
    Ok(Value::Array(
        out.into_iter()
            .map(|(id, r, dh, vf)| {
                json!({"selection_id": id, "result": r,
                       "dead_heat_factor": dh.map(|d| d.to_string()),
                       "void_factor": vf.map(|d| d.to_string())})
            })
            .collect(),
    ))
}

/// Takes the market out of trading through its actor, if it runs.
async fn stop_trading(
    reg: &Registry,
    market_id: MarketId,
    kind: Kind,
    actor: &AuditActor,
) -> Result<()> {
    let commands: &[MarketCommand] = match kind {
        Kind::Settle => &[MarketCommand::Close, MarketCommand::Settle],
        Kind::Void => &[MarketCommand::Void],
        Kind::Resettle | Kind::Rollback => return Ok(()),
    };
    let Some(addr) = reg.market(market_id).await? else {
        return Ok(());
    };
    for &command in commands {
        let out = reg
            .ask(&addr, |reply| ApplyCommand {
                command,
                actor: actor.clone(),
                skip_if_invalid: command == MarketCommand::Close,
                reply,
            })
            .await??;
        if let Some((_, durable)) = out {
            crate::actors::writer::durable(durable, reg.ask_timeout()).await?;
        }
    }
    Ok(())
}

/// Opens (or, for identical results, finds) the settlement and starts its worker.
pub async fn open(
    svc: &Arc<Settlement>,
    reg: &Registry,
    market_id: MarketId,
    req: OpenRequest,
    actor: AuditActor,
) -> Result<Opened> {
    let selections = {
        let client = svc.pool.get().await?;
        sdb::market_selections(&client, market_id).await?
    };
    if selections.is_empty() {
        return Err(SettlementError::NotFound("market"));
    }
    let results = match req.kind {
        Kind::Void | Kind::Rollback => json!([]),
        _ => normalize(&req.results, &selections)?,
    };
    if let Some(found) = unchanged(svc, market_id, &req, &results).await? {
        return Ok(Opened {
            row: found,
            started: false,
        });
    }
    stop_trading(reg, market_id, req.kind, &actor).await?;
    let row = record(svc, market_id, &req, results, &actor).await?;
    svc.spawn(row.clone());
    Ok(Opened { row, started: true })
}

/// The latest settlement when asking again for the very same thing (nothing changes).
async fn unchanged(
    svc: &Settlement,
    market_id: MarketId,
    req: &OpenRequest,
    results: &Value,
) -> Result<Option<SettlementRow>> {
    let client = svc.pool.get().await?;
    let Some(latest) = sdb::latest(&client, market_id).await? else {
        return Ok(None);
    };
    let same = match req.kind {
        Kind::Void => latest.kind == "void",
        Kind::Rollback => latest.kind == "rollback",
        _ => {
            latest.kind != "void"
                && &latest.results == results
                && latest.void_after == req.void_after
        }
    };
    Ok(same.then_some(latest))
}

fn conflict(code: &'static str, msg: &str) -> SettlementError {
    SettlementError::conflict(code, msg)
}

/// The transaction that makes the settlement durable.
async fn record(
    svc: &Settlement,
    market_id: MarketId,
    req: &OpenRequest,
    results: Value,
    actor: &AuditActor,
) -> Result<SettlementRow> {
    let mut client = svc.pool.get().await?;
    let tx = client.transaction().await?;
    let who = Actor {
        user_id: actor.user_id,
        ip: actor.client_ip.as_deref().and_then(|ip| ip.parse().ok()),
    };
    audit::set_actor(&tx, who).await?;
    let status = sdb::lock_market(&tx, market_id)
        .await?
        .ok_or(SettlementError::NotFound("market"))?;
    let latest = sdb::latest(&tx, market_id).await?;
    check_transition(req.kind, &status, latest.as_ref())?;
    mark_market(&tx, market_id, req.kind, &results).await?;
    let row = sdb::insert(
        &tx,
        &NewSettlement {
            market_id,
            version: latest.map_or(1, |l| l.version + 1),
            kind: req.kind.as_str(),
            results,
            void_after: req.void_after,
            reason: req.reason.as_deref(),
            created_by: actor.user_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Whether a settlement of `kind` may open on a market in `status` whose latest
/// settlement is `latest`.
fn check_transition(kind: Kind, status: &str, latest: Option<&SettlementRow>) -> Result<()> {
    if latest.is_some_and(|l| l.completed_at.is_none()) {
        return Err(conflict(
            "settlement_in_progress",
            "an earlier settlement of this market is still running",
        ));
    }
    // Settled now: the latest settlement paid results (a rollback or a void did not).
    let settled_before = latest.is_some_and(SettlementRow::paid_results);
    match kind {
        // A market voided by its actor (event cancelled) still needs its void settlement.
        Kind::Settle | Kind::Resettle if status == "voided" => {
            Err(conflict("invalid_transition", "the market is voided"))
        }
        Kind::Settle if settled_before => Err(conflict(
            "already_settled",
            "the market is settled: use resettle",
        )),
        Kind::Resettle | Kind::Rollback if !settled_before || status != "settled" => Err(conflict(
            "not_settled",
            "only a settled market can be resettled or rolled back",
        )),
        _ => Ok(()),
    }
}

/// The market's final status (or its reopening, for a rollback) and, when results are
/// paid, its selections' results.
async fn mark_market(
    tx: &deadpool_postgres::Transaction<'_>,
    market_id: MarketId,
    kind: Kind,
    results: &Value,
) -> Result<()> {
    match kind {
        Kind::Void => sdb::set_market_final(tx, market_id, "voided").await?,
        Kind::Rollback => sdb::reopen_settled_market(tx, market_id).await?,
        Kind::Settle | Kind::Resettle => sdb::set_market_final(tx, market_id, "settled").await?,
    }
    if matches!(kind, Kind::Settle | Kind::Resettle) {
        let (ids, rs): (Vec<SelectionId>, Vec<String>) = results
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let id: SelectionId = r["selection_id"].as_str()?.parse().ok()?;
                Some((id, r["result"].as_str()?.to_string()))
            })
            .unzip();
        let rs: Vec<&str> = rs.iter().map(String::as_str).collect();
        sdb::set_selection_results(tx, &ids, &rs).await?;
    }
    Ok(())
}

/// Waits (bounded) for the settlement to finish; answers the row as it then stands.
pub async fn wait(svc: &Arc<Settlement>, row: SettlementRow) -> Result<SettlementRow> {
    if row.completed_at.is_some() {
        return Ok(row);
    }
    let mut rx = svc.spawn(row.clone());
    let limit = Duration::from_millis(svc.settings.answer_wait_ms);
    let _ = tokio::time::timeout(limit, rx.wait_for(|done| *done)).await;
    let client = svc.pool.get().await?;
    Ok(sdb::get(&client, row.id).await?.unwrap_or(row))
}
