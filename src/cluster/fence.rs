//! The fence: inside the writers' transactions, which events this node still owns.
//!
//! The lease rows of the events a transaction writes are read `FOR SHARE` with this node's
//! name and the epoch it holds: a row taken by another node (a new epoch) or by nobody is
//! not returned, and what the rows returned say cannot change before the commit (a takeover
//! is an UPDATE of the row, which waits for the share lock). The writers then write only
//! what touches events that passed; the rest is refused.
use std::collections::HashSet;

use crate::domain::ids::{EventId, MarketId, SelectionId};

use tokio_postgres::GenericClient;

use super::Cluster;

/// Bounds the caller's transaction (before it locks any lease row): if it then sits idle
/// longer than `fenced_idle_timeout_ms` (this node was cut off from Postgres in the middle
/// of it), Postgres ends the session and its share locks on lease rows go with it, so the
/// next owner's takeover is not held up by a transaction nobody will finish. Only these
/// transactions: a COMMIT waiting for a synchronous standby is not idle, and other
/// sessions keep the pool's settings.
pub async fn bound_idle(
    cluster: &Cluster,
    c: &impl GenericClient,
) -> Result<(), tokio_postgres::Error> {
    if !cluster.enabled() {
        return Ok(());
    }
    let ms = cluster.settings.fenced_idle_timeout_ms;
    c.batch_execute(&format!(
        "SET LOCAL idle_in_transaction_session_timeout = {ms}"
    ))
    .await
}

/// The events of these selections (bet legs).
pub async fn events_of_selections(
    c: &impl GenericClient,
    selection_ids: &[SelectionId],
) -> Result<Vec<(SelectionId, EventId)>, tokio_postgres::Error> {
    Ok(c.query(
        "SELECT s.id, m.event_id FROM selections s JOIN markets m ON m.id = s.market_id
         WHERE s.id = ANY($1)",
        &[&selection_ids],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// The events of these markets.
pub async fn events_of_markets(
    c: &impl GenericClient,
    market_ids: &[MarketId],
) -> Result<Vec<(MarketId, EventId)>, tokio_postgres::Error> {
    Ok(c.query(
        "SELECT id, event_id FROM markets WHERE id = ANY($1)",
        &[&market_ids],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// Of `events`, those whose lease row names this node with the epoch it holds now (and
/// is valid by its clock), locked `FOR SHARE` until the caller's transaction ends. All of
/// them when the cluster is off.
pub async fn owned(
    cluster: &Cluster,
    c: &impl GenericClient,
    events: &[EventId],
) -> Result<HashSet<EventId>, tokio_postgres::Error> {
    if !cluster.enabled() {
        return Ok(events.iter().copied().collect());
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut epochs = Vec::with_capacity(events.len());
    for e in events {
        if let Some(epoch) = cluster.epoch_of(*e) {
            ids.push(*e);
            epochs.push(epoch);
        }
    }
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(c.query(
        "SELECT l.event_id FROM event_leases l
         JOIN UNNEST($1::uuid[], $2::bigint[]) AS u(id, epoch)
           ON l.event_id = u.id AND l.epoch = u.epoch
         WHERE l.node_id = $3
         ORDER BY l.event_id
         FOR SHARE OF l",
        &[&ids, &epochs, &cluster.settings.node_id],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// Of these `(event, node, epoch)` leases (each bet leg's, as its reservation was taken, at
/// this node or another), those whose row still says exactly that and has not lapsed,
/// locked `FOR SHARE` until the caller's transaction ends. One of this node's must also be
/// valid by its own clock. All of them when the cluster is off.
pub async fn leases_held(
    cluster: &Cluster,
    c: &impl GenericClient,
    leases: &[(EventId, String, i64)],
) -> Result<HashSet<(EventId, String, i64)>, tokio_postgres::Error> {
    if !cluster.enabled() {
        return Ok(leases.iter().cloned().collect());
    }
    let me = cluster.node_id();
    let asked: Vec<&(EventId, String, i64)> = leases
        .iter()
        .filter(|(e, node, epoch)| node != me || cluster.epoch_of(*e) == Some(*epoch))
        .collect();
    if asked.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<EventId> = asked.iter().map(|l| l.0).collect();
    let nodes: Vec<&str> = asked.iter().map(|l| l.1.as_str()).collect();
    let epochs: Vec<i64> = asked.iter().map(|l| l.2).collect();
    Ok(c.query(
        "SELECT l.event_id, l.node_id, l.epoch FROM event_leases l
         JOIN UNNEST($1::uuid[], $2::text[], $3::bigint[]) AS u(id, node, epoch)
           ON l.event_id = u.id AND l.node_id = u.node AND l.epoch = u.epoch
         WHERE l.expires_at > now()
         ORDER BY l.event_id
         FOR SHARE OF l",
        &[&ids, &nodes, &epochs],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect())
}

/// Of these `(partition, epoch)` wallet leases, those this node holds now by its clock and
/// whose row still names it with that epoch, locked `FOR SHARE` until the caller's
/// transaction ends. All of them when the cluster is off.
pub async fn wallets_owned(
    cluster: &Cluster,
    c: &impl GenericClient,
    parts: &[(i32, i64)],
) -> Result<HashSet<(i32, i64)>, tokio_postgres::Error> {
    if !cluster.enabled() {
        return Ok(parts.iter().copied().collect());
    }
    let valid: Vec<(i32, i64)> = parts
        .iter()
        .copied()
        .filter(|(p, e)| cluster.part_epoch(*p) == Some(*e))
        .collect();
    if valid.is_empty() {
        return Ok(HashSet::new());
    }
    let (ids, epochs): (Vec<i32>, Vec<i64>) = valid.into_iter().unzip();
    Ok(c.query(
        "SELECT l.part, l.epoch FROM wallet_leases l
         JOIN UNNEST($1::int[], $2::bigint[]) AS u(part, epoch)
           ON l.part = u.part AND l.epoch = u.epoch
         WHERE l.node_id = $3
         ORDER BY l.part
         FOR SHARE OF l",
        &[&ids, &epochs, &cluster.settings.node_id],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}
