//! Calls from one engine node to another: a JSON request to an internal endpoint of the
//! node at `addr`, carrying the cluster's forwarding secret, answered within a deadline.
//! Every such call (and request forwarding) shares the cluster's HTTP client
//! ([`Cluster::http`]).
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::domain::ids::{MarketId, SelectionId, UserId};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{lock, Cluster, RouteError, FORWARD_HEADER};

/// POSTs `body` to `{addr}{path}` and reads the JSON answer (a 200); an error says why
/// none came. Bounded by `forward_concurrency_max` calls at once and by `timeout`.
pub async fn call<Req: Serialize, Ans: DeserializeOwned>(
    cluster: &Cluster,
    addr: &str,
    path: &str,
    body: &Req,
    timeout: Duration,
) -> Result<Ans, String> {
    let Ok(_permit) = cluster.forward_slots.clone().try_acquire_owned() else {
        cluster
            .counters
            .forward_failed
            .fetch_add(1, Ordering::Relaxed);
        return Err("too many calls to other nodes".into());
    };
    let url = format!("{}{}", addr.trim_end_matches('/'), path);
    let answer = cluster
        .http()
        .post(&url)
        .timeout(timeout)
        .header(FORWARD_HEADER, &cluster.settings.forward_secret)
        .json(body)
        .send()
        .await
        .and_then(|r| r.error_for_status());
    let out = match answer {
        Ok(r) => r.json::<Ans>().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let counter = if out.is_ok() {
        &cluster.counters.forwarded
    } else {
        &cluster.counters.forward_failed
    };
    counter.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = &out {
        tracing::warn!(error = %e, %url, "call to another node failed");
    }
    out
}

/// A leg this node reserved for a bet placed at another node (the bettor's wallet node),
/// not yet confirmed or released by it.
#[derive(Debug, Clone)]
pub struct Unconfirmed {
    pub market_id: MarketId,
    pub reservation_id: u64,
    pub selection_id: SelectionId,
    /// The bet: its bettor and idempotency key (unique per bettor).
    pub user_id: UserId,
    pub idempotency_key: String,
    /// The wallet partition lease the bet's stake was held under: the only writer that
    /// may commit the bet.
    pub wallet_part: i32,
    pub wallet_epoch: i64,
    /// When reserved (or last found still undecided).
    pub since: Instant,
}

/// What Postgres says of an unconfirmed leg's bet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegFate {
    /// The bet is committed with this leg: the reservation is confirmed liability.
    Committed,
    /// Not committed, and it never can be: the wallet lease it was held under is gone
    /// (taken again, lapsed or freed), so its writer's commit would be fenced.
    Never,
    /// Not committed yet and its writer still holds the lease: ask again later.
    Undecided,
}

impl Cluster {
    /// Remembers a leg reserved here for another node's bet (bounded by
    /// `unconfirmed_legs_max`: beyond it the leg is not tracked and counts until the event
    /// moves, as before).
    pub fn note_unconfirmed(&self, leg: Unconfirmed) {
        let mut map = lock(&self.unconfirmed);
        if map.len() >= self.settings.unconfirmed_legs_max {
            tracing::warn!("too many unconfirmed remote legs; this one is not reconciled");
            return;
        }
        map.insert((leg.market_id, leg.reservation_id), leg);
    }

    /// The wallet node confirmed or released the leg.
    pub fn settled_unconfirmed(&self, market_id: MarketId, reservation_id: u64) {
        lock(&self.unconfirmed).remove(&(market_id, reservation_id));
    }

    /// Legs unconfirmed for longer than `leg_confirm_deadline_ms` (at most `max`).
    pub fn overdue_unconfirmed(&self, max: usize) -> Vec<Unconfirmed> {
        let deadline = Duration::from_millis(self.settings.leg_confirm_deadline_ms);
        lock(&self.unconfirmed)
            .values()
            .filter(|l| l.since.elapsed() >= deadline)
            .take(max)
            .cloned()
            .collect()
    }

    /// Legs still tracked (for `/metrics`).
    pub fn unconfirmed_len(&self) -> usize {
        lock(&self.unconfirmed).len()
    }

    /// Asks again later about a leg found [`LegFate::Undecided`].
    pub fn defer_unconfirmed(&self, market_id: MarketId, reservation_id: u64) {
        if let Some(l) = lock(&self.unconfirmed).get_mut(&(market_id, reservation_id)) {
            l.since = Instant::now();
        }
    }

    /// Learns the fate of an unconfirmed leg's bet from Postgres. The wallet lease row is
    /// locked first (`FOR NO KEY UPDATE`): a commit of that writer in progress holds it
    /// `FOR SHARE` and is waited for, so "not committed" is read after it.
    pub async fn leg_fate(&self, leg: &Unconfirmed) -> Result<LegFate, RouteError> {
        let Some(pool) = &self.db else {
            return Ok(LegFate::Undecided);
        };
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        tx.batch_execute("SET LOCAL lock_timeout = '2s'").await?;
        let lease = tx
            .query_opt(
                "SELECT epoch, expires_at > now() FROM wallet_leases WHERE part = $1
                 FOR NO KEY UPDATE",
                &[&leg.wallet_part],
            )
            .await?;
        let committed: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM bets b
                                JOIN bet_selections s ON s.bet_id = b.id
                                WHERE b.user_id = $1 AND b.idempotency_key = $2
                                  AND s.selection_id = $3)",
                &[&leg.user_id, &leg.idempotency_key, &leg.selection_id],
            )
            .await?
            .get(0);
        tx.commit().await?;
        let writer_gone = lease.is_none_or(|r| {
            let (epoch, valid): (i64, bool) = (r.get(0), r.get(1));
            epoch != leg.wallet_epoch || !valid
        });
        Ok(match (committed, writer_gone) {
            (true, _) => LegFate::Committed,
            (false, true) => LegFate::Never,
            (false, false) => LegFate::Undecided,
        })
    }
}
