//! Wallet partitions (V75): each user's balance has one writer at a time across nodes.
//!
//! Users are hashed over `cluster.wallet_partitions` partitions. A node takes a partition's
//! lease (free or lapsed, a new epoch from the events' sequence) the first time it must
//! hold a stake for one of its users, renews it in every round with its event leases, and
//! forgets it when it lapses by its own clock. A bet is placed at the node holding its
//! bettor's partition (any other node forwards it there), whose wallet shard is then the
//! only one holding stakes against that balance; its ledger writer commits the debit only
//! while the partition's row still names it with the epoch the stake was held under
//! ([`super::fence::wallets_owned`]). The database's `balance >= 0` stays the last line.
//!
//! Partitions are taken on demand (the first bet of one of its users a node serves) and
//! rebalanced like events: every round a node takes free or lapsed partitions up to its fair
//! share of `wallet_partitions` and gives up those beyond it, at most
//! `wallet_parts_per_round_max` either way, never one with a bet in flight
//! ([`WalletFlight`]: a bet enters its partition under the same lock the giving up takes,
//! so no stake is held under a partition being given up).
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::ids::UserId;

use deadpool_postgres::Pool;

use super::{fair_share, lock, read, write, Cluster, Held, Route, RouteError, WALLETS};

impl Cluster {
    /// The wallet partition of `user_id` (a stable hash: the id modulo the partitions).
    pub fn partition_of(&self, user_id: UserId) -> i32 {
        let n = u128::from(self.settings.wallet_partitions.max(1));
        i32::try_from(user_id.as_uuid().as_u128() % n).unwrap_or(0)
    }

    /// The epoch under which this node writes `user_id`'s balance now, if it holds the
    /// partition (valid by its own clock); `Some(0)` when the cluster is off.
    pub fn wallet_epoch(&self, user_id: UserId) -> Option<i64> {
        if !self.enabled() {
            return Some(0);
        }
        self.part_epoch(self.partition_of(user_id))
    }

    /// The epoch of partition `part` if this node holds it now by its clock.
    pub fn part_epoch(&self, part: i32) -> Option<i64> {
        let held = read(&self.parts).get(&part).copied()?;
        (Instant::now() < held.valid_until).then_some(held.epoch)
    }

    /// Wallet partitions held now.
    pub fn parts_held(&self) -> usize {
        let now = Instant::now();
        read(&self.parts)
            .values()
            .filter(|h| now < h.valid_until)
            .count()
    }

    /// Takes the lease of `user_id`'s partition if it is free or lapsed; else names the
    /// node holding it.
    pub async fn route_user(&self, user_id: UserId) -> Result<Route, RouteError> {
        let Some(pool) = &self.db else {
            return Ok(Route::Local);
        };
        if self.wallet_epoch(user_id).is_some() {
            return Ok(Route::Local);
        }
        if self.renewal_paused() {
            return Err(RouteError("lease renewal paused".into()));
        }
        let wait = self.validity().max(Duration::from_millis(100));
        let part = self.partition_of(user_id);
        tokio::time::timeout(wait, self.take_or_find_part(pool, user_id, part))
            .await
            .map_err(|_| RouteError("the lease table did not answer in time".into()))?
    }

    async fn take_or_find_part(
        &self,
        pool: &Pool,
        user_id: UserId,
        part: i32,
    ) -> Result<Route, RouteError> {
        let client = pool.get().await?;
        if let Some(row) = self.owner_row(&client, WALLETS, &part, true).await? {
            return self.remote_of(Some(row));
        }
        let _taking = self.taking.lock().await;
        if self.wallet_epoch(user_id).is_some() {
            return Ok(Route::Local);
        }
        let patient = self.parts_held() > self.part_share.load(Ordering::Relaxed);
        let sent = Instant::now();
        if let Some(epoch) = self.try_take(&client, WALLETS, &part, patient).await? {
            write(&self.parts).insert(
                part,
                Held {
                    epoch,
                    valid_until: sent + self.validity(),
                },
            );
            self.counters
                .wallet_parts_acquired
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(part, epoch, "wallet partition lease taken");
            return Ok(Route::Local);
        }
        if patient {
            return self.handed_over(&client, WALLETS, &part).await;
        }
        let owner = self.owner_row(&client, WALLETS, &part, false).await?;
        self.remote_of(owner)
    }

    /// Renews the partitions held (inside a round, `sent` being when it started); those
    /// the database no longer names this node for are forgotten.
    pub(super) async fn renew_parts(
        &self,
        client: &tokio_postgres::Client,
        sent: Instant,
    ) -> Result<(), RouteError> {
        let mine: Vec<(i32, i64)> = read(&self.parts)
            .iter()
            .map(|(p, h)| (*p, h.epoch))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let kept = self.renew_rows(client, WALLETS, &mine).await?;
        let mut held = write(&self.parts);
        for (part, epoch) in mine {
            match held.get_mut(&part) {
                Some(h) if kept.get(&part) == Some(&epoch) => {
                    h.valid_until = sent + self.validity();
                }
                // Taken again (a new epoch) while this round ran.
                Some(h) if h.epoch != epoch => {}
                _ => {
                    tracing::warn!(part, "wallet partition lease lost");
                    held.remove(&part);
                }
            }
        }
        Ok(())
    }

    /// Frees these partitions' rows: for a stopping node as lapsed long ago (any node takes
    /// them at once), when `rebalancing` as lapsed now (nodes above their share, this one
    /// too, leave them to the others for a lease time: `try_take`).
    pub(super) async fn release_parts(
        &self,
        client: &tokio_postgres::Client,
        parts: &[(i32, i64)],
        rebalancing: bool,
    ) {
        if parts.is_empty() {
            return;
        }
        let (parts, epochs): (Vec<i32>, Vec<i64>) = parts.iter().copied().unzip();
        let _ = client
            .execute(
                "UPDATE wallet_leases l
                    SET expires_at = CASE WHEN $4 THEN now() ELSE '-infinity' END
                   FROM UNNEST($1::int[], $2::bigint[]) AS u(part, epoch)
                  WHERE l.part = u.part AND l.epoch = u.epoch AND l.node_id = $3",
                &[&parts, &epochs, &self.settings.node_id, &rebalancing],
            )
            .await;
    }
}

/// A bet in flight on a wallet partition (from [`Cluster::enter_wallet`] until dropped):
/// rebalancing never gives up a partition while one is.
pub struct WalletFlight {
    held: Option<(Arc<Cluster>, i32)>,
}

impl Drop for WalletFlight {
    fn drop(&mut self) {
        if let Some((cluster, part)) = self.held.take() {
            let mut flights = lock(&cluster.flights);
            if let Some(n) = flights.get_mut(&part) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    flights.remove(&part);
                }
            }
        }
    }
}

impl Cluster {
    /// [`Cluster::wallet_epoch`], counting a bet in flight on the partition until the
    /// returned guard drops (`(0, _)` when the cluster is off).
    pub fn enter_wallet(self: &Arc<Self>, user_id: UserId) -> Option<(i64, WalletFlight)> {
        if !self.enabled() {
            return Some((0, WalletFlight { held: None }));
        }
        let part = self.partition_of(user_id);
        let mut flights = lock(&self.flights);
        let epoch = self.part_epoch(part)?;
        *flights.entry(part).or_default() += 1;
        Some((
            epoch,
            WalletFlight {
                held: Some((self.clone(), part)),
            },
        ))
    }

    /// Takes free or lapsed partitions up to this node's fair share of
    /// `wallet_partitions`, or gives up partitions beyond it (never one with a bet in
    /// flight), at most `wallet_parts_per_round_max` either way (inside a round).
    pub(super) async fn rebalance_parts(
        &self,
        client: &tokio_postgres::Client,
        nodes: i64,
    ) -> Result<(), RouteError> {
        let total = i64::from(self.settings.wallet_partitions.max(1));
        let share = fair_share(total, nodes);
        self.part_share.store(share, Ordering::Relaxed);
        let held = self.parts_held();
        let per_round = self.settings.wallet_parts_per_round_max.max(1);
        if held < share {
            self.take_free_parts(client, total, (share - held).min(per_round))
                .await?;
        } else if held > share + 1 {
            // One of slack, so two nodes never hand a partition back and forth.
            self.give_up_parts(client, (held - share - 1).min(per_round))
                .await;
        }
        Ok(())
    }

    async fn take_free_parts(
        &self,
        client: &tokio_postgres::Client,
        total: i64,
        want: usize,
    ) -> Result<(), RouteError> {
        let want = i64::try_from(want).unwrap_or(0);
        let _taking = self.taking.lock().await;
        let sent = Instant::now();
        let free = "SELECT p.part FROM generate_series(0, $4::int - 1) AS p(part)
                    LEFT JOIN wallet_leases l ON l.part = p.part
                    WHERE l.part IS NULL OR l.expires_at < now()
                    ORDER BY p.part LIMIT $1";
        let total = i32::try_from(total).unwrap_or(1);
        let rows = self
            .take_rows(client, WALLETS, free, &[&want, &total])
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut parts = write(&self.parts);
        for r in &rows {
            parts.insert(
                r.get(0),
                Held {
                    epoch: r.get(1),
                    valid_until: sent + self.validity(),
                },
            );
        }
        self.counters
            .wallet_parts_acquired
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        tracing::info!(parts = rows.len(), "wallet partition leases taken");
        Ok(())
    }

    /// Gives up to `give` partitions with no bet in flight: this node stops holding stakes
    /// for their users at once (under the same lock a bet enters by), then frees the rows.
    async fn give_up_parts(&self, client: &tokio_postgres::Client, give: usize) {
        let _taking = self.taking.lock().await;
        let chosen: Vec<(i32, i64)> = {
            let flights = lock(&self.flights);
            let mut parts = write(&self.parts);
            let now = Instant::now();
            let mut idle: Vec<(i32, i64)> = parts
                .iter()
                .filter(|(p, h)| now < h.valid_until && !flights.contains_key(p))
                .map(|(p, h)| (*p, h.epoch))
                .collect();
            // The highest first: the nodes' choices spread the low ones in order.
            idle.sort_unstable_by(|a, b| b.cmp(a));
            idle.truncate(give);
            for (p, _) in &idle {
                parts.remove(p);
            }
            idle
        };
        if chosen.is_empty() {
            return;
        }
        self.release_parts(client, &chosen, true).await;
        self.counters
            .wallet_parts_released
            .fetch_add(chosen.len() as u64, Ordering::Relaxed);
        tracing::info!(
            parts = chosen.len(),
            "wallet partition leases given up (rebalancing)"
        );
    }
}
