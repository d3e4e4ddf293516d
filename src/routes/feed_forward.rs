//! Feed pushes across several engine nodes (issue 20): a push whose messages name events
//! owned by other nodes is split per owner. Every message of one `event_ref` goes to the
//! same node in its original order (a provider's `seq` is per event), the parts are sent at
//! once (each bounded by `forward_concurrency_max` and `forward_timeout_ms`), and the
//! outcomes come back merged in the push's order, as one node would have answered.
//!
//! A part goes to the owner's internal endpoint ([`FEED_PATH`], authenticated by the
//! cluster's forwarding secret: the provider's signature was checked here), which applies
//! it as a push of its own. Messages of an event nobody has yet (a fixture creating it) and
//! heartbeats stay here. If any part cannot be applied (its owner did not answer, or lost
//! the event meanwhile) the whole push answers 503: the provider sends it again, and what
//! was applied meanwhile answers `duplicate`.
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, Route};
use crate::domain::ids::EventId;
use crate::feed::apply::Outcome;
use crate::feed::messages::{Body, FeedMessage};
use crate::routes::error::ApiError;
use crate::routes::feed::PushAnswer;
use crate::state::AppState;

/// The owner's endpoint for a part of a push (`{provider}` in the path).
pub const FEED_PATH: &str = "/api/v1/cluster/internal/feed";

/// A part of a push sent to the owner of its events.
#[derive(Debug, Serialize, Deserialize)]
pub struct FeedPart {
    /// The push's signed `X-Feed-Timestamp` (the owner's watchdog hears the provider).
    pub signed_s: i64,
    /// The messages, as the provider sent them, in the push's order.
    pub messages: Vec<serde_json::Value>,
}

/// Where a push's messages are applied: here, and at each other owner (by address), as
/// indexes into the push.
#[derive(Debug, Default)]
pub struct Split {
    pub here: Vec<usize>,
    pub there: HashMap<String, Vec<usize>>,
}

/// Splits `messages` by the owner of their event (taking free leases on the way, as any
/// request about an event does). 503 when an owner cannot be known.
pub async fn split(
    state: &AppState,
    provider: &str,
    messages: &[FeedMessage],
) -> Result<Split, ApiError> {
    let cluster = state.registry.cluster();
    let mut refs: Vec<&str> = messages
        .iter()
        .filter(|m| !matches!(m.body, Body::Heartbeat(_)))
        .filter_map(|m| m.event_ref.as_deref())
        .collect();
    refs.sort_unstable();
    refs.dedup();
    let mut split = Split::default();
    if refs.is_empty() {
        split.here = (0..messages.len()).collect();
        return Ok(split);
    }
    let events = events_of_refs(state, provider, &refs).await?;
    let mut owner_of: HashMap<&str, Option<String>> = HashMap::with_capacity(refs.len());
    for r in refs {
        let addr = match events.get(r) {
            None => None,
            Some(id) => remote_owner(cluster, *id).await?,
        };
        owner_of.insert(r, addr);
    }
    for (i, m) in messages.iter().enumerate() {
        let addr = m
            .event_ref
            .as_deref()
            .filter(|_| !matches!(m.body, Body::Heartbeat(_)))
            .and_then(|r| owner_of.get(r).cloned().flatten());
        match addr {
            Some(addr) => split.there.entry(addr).or_default().push(i),
            None => split.here.push(i),
        }
    }
    Ok(split)
}

async fn events_of_refs(
    state: &AppState,
    provider: &str,
    refs: &[&str],
) -> Result<HashMap<String, EventId>, ApiError> {
    let unavailable = |e: String| {
        tracing::warn!(error = %e, "feed push: events of the refs");
        ApiError::unavailable("database unavailable; retry the push")
    };
    let client = state
        .feed
        .db
        .get()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    crate::db::feed::events_of_refs(&client, provider, refs)
        .await
        .map_err(|e| unavailable(e.to_string()))
}

/// The address of `event_id`'s owner when it is another node.
async fn remote_owner(cluster: &Cluster, event_id: EventId) -> Result<Option<String>, ApiError> {
    match cluster.route(event_id).await {
        Ok(Route::Local) => Ok(None),
        Ok(Route::Remote { addr, .. }) => Ok(Some(addr)),
        Err(e) => {
            tracing::warn!(error = %e, %event_id, "feed push: event owner unknown");
            Err(ApiError::unavailable(
                "an event's owner is unknown; retry the push",
            ))
        }
    }
}

/// Sends each remote part to its owner, all at once; the answers by address.
pub async fn send_parts(
    cluster: &Cluster,
    provider: &str,
    signed_s: i64,
    raw: &[serde_json::Value],
    there: &HashMap<String, Vec<usize>>,
) -> Result<Vec<(Vec<usize>, PushAnswer)>, ApiError> {
    let path = format!("{FEED_PATH}/{provider}");
    let timeout = Duration::from_millis(cluster.settings.forward_timeout_ms);
    let calls = there.iter().map(|(addr, idx)| {
        let part = FeedPart {
            signed_s,
            messages: idx.iter().map(|&i| raw[i].clone()).collect(),
        };
        let path = path.as_str();
        async move {
            let answer: Result<PushAnswer, String> =
                crate::cluster::legs::call(cluster, addr, path, &part, timeout).await;
            (idx.clone(), answer)
        }
    });
    let mut parts = Vec::with_capacity(there.len());
    for (idx, answer) in futures::future::join_all(calls).await {
        let answer = answer.map_err(|e| {
            tracing::warn!(error = %e, "feed push: a part was not applied by its owner");
            ApiError::unavailable("an event's owner did not apply its messages; retry the push")
        })?;
        if answer.results.len() != idx.len() {
            return Err(ApiError::unavailable(
                "an event's owner answered for other messages; retry the push",
            ));
        }
        cluster
            .counters
            .feed_parts_forwarded
            .fetch_add(1, Ordering::Relaxed);
        cluster
            .counters
            .feed_messages_forwarded
            .fetch_add(idx.len() as u64, Ordering::Relaxed);
        parts.push((idx, answer));
    }
    Ok(parts)
}

/// The answers of every part as one answer in the push's order (`len` messages).
pub fn merge(len: usize, parts: Vec<(Vec<usize>, PushAnswer)>) -> PushAnswer {
    let mut results: Vec<Option<Outcome>> = vec![None; len];
    let mut merged = PushAnswer::empty(len);
    for (idx, answer) in parts {
        merged.applied += answer.applied;
        merged.duplicates += answer.duplicates;
        merged.gaps += answer.gaps;
        merged.rejected += answer.rejected;
        for (i, outcome) in idx.into_iter().zip(answer.results) {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(outcome);
            }
        }
    }
    merged.results = results.into_iter().flatten().collect();
    merged
}
