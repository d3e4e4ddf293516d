//! `result` and `result_rollback`: a provider's results settle the event's markets through
//! the very settlement a trader's settle and resettle run (`settlement::open`), so a bet is
//! paid the same whichever door its result came by. Markets are addressed like `odds`
//! messages address them; selections by the names the fixture gave them.
//!
//! A first result settles; a different later one resettles (compensating entries); the
//! same one again changes nothing. A `result_rollback` withdraws a market's result: the
//! market goes back to `closed`, its settled bets back to open with their payouts taken
//! back (a `rollback` settlement, compensating entries), until the next `result`. Only a final result settles: `"final": false` is
//! acknowledged and kept out. A market a trader holds from settlement by the feed
//! (`PATCH .../settings` `hold_feed_settlement`) rejects results and rollbacks: the trader
//! settles it by hand. A market that cannot take the result (voided by a trader,
//! a selection missing or unknown) rejects the message with the reason.
use crate::domain::ids::{EventId, MarketId};

use super::apply::{market_key, ApplyError};
use super::messages::{MarketRef, MarketResult, MarketResults, ResultRollback};
use super::FeedContext;
use crate::actors::AuditActor;
use crate::db::feed as sql;
use crate::db::settlement as sdb;
use crate::settlement::error::SettlementError;
use crate::settlement::open::{self, Kind, OpenRequest, ResultSpec};

fn reject(msg: impl Into<String>) -> ApplyError {
    ApplyError::Reject(msg.into())
}

fn infra(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Infra(e.to_string())
}

/// Settles (or resettles) every market the message names, in order.
pub async fn apply(
    state: &FeedContext,
    event_id: EventId,
    r: &MarketResults,
) -> Result<(), ApplyError> {
    if !r.is_final {
        return Ok(());
    }
    for m in &r.markets {
        settle_market(state, event_id, m).await?;
    }
    Ok(())
}

async fn settle_market(
    state: &FeedContext,
    event_id: EventId,
    m: &MarketResult,
) -> Result<(), ApplyError> {
    let (market_id, names, settled_before) = {
        let client = state.db.get().await.map_err(infra)?;
        let market_id = settleable_market(&client, event_id, &m.market).await?;
        let names = sql::selections_by_name(&client, market_id).await?;
        let latest = sdb::latest(&client, market_id).await?;
        let settled = latest.is_some_and(|l| l.paid_results());
        (market_id, names, settled)
    };
    let mut results = Vec::with_capacity(m.results.len());
    for r in &m.results {
        let selection_id = names
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&r.selection))
            .map(|(_, id)| *id)
            .ok_or_else(|| reject(format!("unknown selection {}", r.selection)))?;
        results.push(ResultSpec {
            selection_id,
            result: r.result,
            dead_heat_factor: r.dead_heat_factor.clone(),
            void_factor: r.void_factor.clone(),
        });
    }
    let request = OpenRequest {
        kind: if settled_before {
            Kind::Resettle
        } else {
            Kind::Settle
        },
        results,
        void_after: None,
        reason: None,
    };
    let system = AuditActor {
        user_id: None,
        client_ip: None,
    };
    open::open(
        &state.settlement,
        &state.registry,
        market_id,
        request,
        system,
    )
    .await
    .map(|_| ())
    .map_err(settlement_error)
}

/// The market a result addresses, unless a trader holds it from settlement by the feed.
async fn settleable_market(
    client: &deadpool_postgres::Client,
    event_id: EventId,
    market: &MarketRef,
) -> Result<MarketId, ApplyError> {
    let key = market_key(market)?;
    let market_id = sql::find_market_to_settle(
        client,
        event_id,
        key.market_type.as_str(),
        key.handicap,
        key.total_points,
        key.name.as_deref(),
    )
    .await?
    .ok_or_else(|| reject("unknown market"))?;
    if sql::settlement_held(client, market_id).await? {
        return Err(reject(
            "a trader holds this market from settlement by the feed",
        ));
    }
    Ok(market_id)
}

/// Rolls back the results of every market the message names, in order.
pub async fn rollback(
    state: &FeedContext,
    event_id: EventId,
    r: &ResultRollback,
) -> Result<(), ApplyError> {
    for m in &r.markets {
        let market_id = {
            let client = state.db.get().await.map_err(infra)?;
            settleable_market(&client, event_id, m).await?
        };
        let request = OpenRequest {
            kind: Kind::Rollback,
            results: Vec::new(),
            void_after: None,
            reason: Some("result rolled back by the provider".into()),
        };
        let system = AuditActor {
            user_id: None,
            client_ip: None,
        };
        open::open(
            &state.settlement,
            &state.registry,
            market_id,
            request,
            system,
        )
        .await
        .map_err(settlement_error)?;
    }
    Ok(())
}

/// A refusal of the market's state or of the results is the message's fault (reported, its
/// `seq` consumed); anything else is the engine's (the provider retries).
pub fn settlement_error(e: SettlementError) -> ApplyError {
    match e {
        // The market's previous settlement is still booking: the provider sends it again.
        SettlementError::Conflict {
            code: "settlement_in_progress",
            ..
        } => infra(e),
        SettlementError::NotFound(_)
        | SettlementError::Invalid { .. }
        | SettlementError::Conflict { .. }
        | SettlementError::Market(_) => reject(e.to_string()),
        e => infra(e),
    }
}
