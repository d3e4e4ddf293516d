//! The fence: inside the writers' transactions, which events this node still owns.
//!
//! The lease rows of the events a transaction writes are read `FOR SHARE` with this node's
//! name and the epoch it holds: a row taken by another node (a new epoch) or by nobody is
//! not returned, and what the rows returned say cannot change before the commit (a takeover
//! is an UPDATE of the row, which waits for the share lock). The writers then write only
//! what touches events that passed; the rest is refused.
use std::collections::HashSet;

use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::Cluster;

/// The events of these selections (bet legs).
pub async fn events_of_selections(
    c: &impl GenericClient,
    selection_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, tokio_postgres::Error> {
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
    market_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, tokio_postgres::Error> {
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
    events: &[Uuid],
) -> Result<HashSet<Uuid>, tokio_postgres::Error> {
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
