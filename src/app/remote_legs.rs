//! Bet legs whose events another node owns (several engine nodes, issue 20).
//!
//! A bet is placed at the node holding its bettor's wallet partition. Each leg is reserved
//! at the owner of its event: here through the market actor, elsewhere through the owner's
//! internal endpoints ([`RESERVE_PATH`], [`SETTLE_PATH`], authenticated by the cluster's
//! forwarding secret), which run the same actor messages there. The owner answers the
//! reservation with the epoch of its event lease; the bet's commit checks every leg's
//! `(event, node, epoch)` in its transaction (the fence), so a leg reserved under a lease
//! that has since moved fails the whole bet. After the commit (or a refusal) every
//! reservation is confirmed (or released) at its owner. A confirmation that never comes (the
//! wallet node died between its commit and its confirmation) is made up for at the owner:
//! after `cluster.leg_confirm_deadline_ms` it learns from Postgres whether the bet committed
//! or never can ([`reconcile_overdue`]), so the market's liability is exact again.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::actors::errors::LegRejection;
use crate::actors::market::{
    CheckAndReserve, ConfirmReservation, LegRequest, ReleaseReservation, Reservation,
};
use crate::actors::Registry;
use crate::bets::error::PlaceError;
use crate::cluster::legs::{LegFate, Unconfirmed};
use crate::domain::ids::{EventId, MarketId, SelectionId, UserId};
use crate::domain::{Odds, OddsChangePolicy};

/// Reserve a leg at its event's owner.
pub const RESERVE_PATH: &str = "/api/v1/cluster/internal/legs/reserve";
/// Confirm or release a reservation at its event's owner.
pub const SETTLE_PATH: &str = "/api/v1/cluster/internal/legs/settle";

/// The longest wait for a leg a remote node accepts (its bet delay included).
const LEG_WAIT_MAX_MS: u64 = 60_000;

/// A leg as sent to its event's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LegAsk {
    pub selection_id: SelectionId,
    pub odds: Odds,
    pub policy: OddsChangePolicy,
    pub stake: Decimal,
    pub payout: Option<Decimal>,
    /// The bettor's currency (the owner converts with its own `[currencies]`, which every
    /// node shares).
    pub currency_code: String,
    pub stake_factor: Decimal,
    pub user_max_stake: Option<Decimal>,
    /// How long the owner may take (the market's ask timeout plus the bet delay).
    pub wait_ms: u64,
    /// The bet asking, so the owner can find out what became of it if the wallet node
    /// never confirms the leg.
    pub origin: LegOrigin,
}

/// The bet a remote leg is reserved for, as the wallet node places it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LegOrigin {
    pub user_id: UserId,
    pub idempotency_key: String,
    /// The wallet partition lease its stake is held under.
    pub wallet_part: i32,
    pub wallet_epoch: i64,
}

impl LegAsk {
    pub fn of(leg: &LegRequest, wait: Duration, origin: LegOrigin) -> LegAsk {
        LegAsk {
            selection_id: leg.selection_id,
            odds: leg.odds,
            policy: leg.policy,
            stake: leg.stake,
            payout: leg.payout,
            currency_code: leg.currency_code.clone(),
            stake_factor: leg.stake_factor,
            user_max_stake: leg.user_max_stake,
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(LEG_WAIT_MAX_MS),
            origin,
        }
    }

    fn leg(&self) -> LegRequest {
        LegRequest {
            selection_id: self.selection_id,
            odds: self.odds,
            policy: self.policy,
            stake: self.stake,
            payout: self.payout,
            currency_code: self.currency_code.clone(),
            stake_factor: self.stake_factor,
            user_max_stake: self.user_max_stake,
            // A referral is kept by the node that took the bet, on its own markets: a leg
            // reserved at another node is refused as always, never referred.
            referable: false,
        }
    }
}

/// The owner's answer to a [`LegAsk`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LegAnswer {
    /// Reserved under this epoch of the event's lease (the commit checks it).
    Reserved {
        reservation: Reservation,
        event_id: EventId,
        node_id: String,
        epoch: i64,
    },
    /// The market refused the leg (the bettor's answer names why).
    Refused { rejection: LegRejection },
    /// The market's mailbox is full.
    Busy,
    /// The owner cannot serve the leg now (it lost the event, its database is away).
    Unavailable { message: String },
}

impl LegAnswer {
    /// The answer of a leg that was not reserved, as the bet path's error.
    pub fn into_error(self) -> PlaceError {
        match self {
            LegAnswer::Reserved { .. } => PlaceError::unavailable("leg answer out of order"),
            LegAnswer::Refused { rejection } => PlaceError::Leg(rejection),
            LegAnswer::Busy => PlaceError::Busy("the market"),
            LegAnswer::Unavailable { message } => PlaceError::Unavailable(message),
        }
    }
}

/// Confirm (`committed`) or release a reservation at its owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LegSettle {
    pub market_id: MarketId,
    pub reservation_id: u64,
    pub committed: bool,
}

/// At the owner: reserves the leg on its market here, under the event lease this node
/// holds now.
pub async fn reserve_here(registry: &Registry, ask: LegAsk) -> LegAnswer {
    let wait = Duration::from_millis(ask.wait_ms.min(LEG_WAIT_MAX_MS));
    let addr = match registry.market_for_selection(ask.selection_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return LegAnswer::Refused {
                rejection: LegRejection::UnknownSelection,
            }
        }
        Err(e) => return error_answer(PlaceError::from(e)),
    };
    let leg = ask.leg();
    let origin = ask.origin;
    let reservation = match registry
        .ask_within(&addr, wait, |reply| CheckAndReserve { leg, reply })
        .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(rejection)) => return LegAnswer::Refused { rejection },
        Err(e) => return error_answer(PlaceError::from(e)),
    };
    let held = registry
        .event_of_market(reservation.market_id)
        .and_then(|e| registry.cluster().epoch_of(e).map(|epoch| (e, epoch)));
    match held {
        Some((event_id, epoch)) => {
            registry.cluster().note_unconfirmed(Unconfirmed {
                market_id: reservation.market_id,
                reservation_id: reservation.id,
                selection_id: reservation.selection_id,
                user_id: origin.user_id,
                idempotency_key: origin.idempotency_key,
                wallet_part: origin.wallet_part,
                wallet_epoch: origin.wallet_epoch,
                since: Instant::now(),
            });
            LegAnswer::Reserved {
                reservation,
                event_id,
                node_id: registry.cluster().node_id().to_string(),
                epoch,
            }
        }
        None => {
            addr.do_send(ReleaseReservation {
                reservation_id: reservation.id,
            });
            LegAnswer::Unavailable {
                message: "this node no longer owns the leg's event; retry".into(),
            }
        }
    }
}

fn error_answer(e: PlaceError) -> LegAnswer {
    match e {
        PlaceError::Leg(rejection) => LegAnswer::Refused { rejection },
        PlaceError::Busy(_) => LegAnswer::Busy,
        other => LegAnswer::Unavailable {
            message: other.to_string(),
        },
    }
}

/// At the owner: confirms or releases a reservation (nothing if the market stopped here:
/// its next owner recovered the committed bets from Postgres).
pub async fn settle_here(registry: &Registry, s: LegSettle) {
    registry
        .cluster()
        .settled_unconfirmed(s.market_id, s.reservation_id);
    let Some(addr) = registry.running_market(s.market_id) else {
        return;
    };
    let sent = if s.committed {
        addr.send(ConfirmReservation {
            reservation_id: s.reservation_id,
        })
        .await
    } else {
        addr.send(ReleaseReservation {
            reservation_id: s.reservation_id,
        })
        .await
    };
    if sent.is_err() {
        tracing::debug!(market = %s.market_id, "market stopped before a remote reservation was settled");
    }
}

/// Unconfirmed legs looked up per round, at most.
const RECONCILE_PER_ROUND: usize = 256;

/// At the owner: every half `leg_confirm_deadline_ms`, [`reconcile_overdue`].
pub fn spawn_reconcile(registry: Arc<Registry>) {
    let cluster = registry.cluster().clone();
    if !cluster.enabled() {
        return;
    }
    let every = Duration::from_millis((cluster.settings.leg_confirm_deadline_ms / 2).max(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            reconcile_overdue(&registry).await;
        }
    });
}

/// Settles the legs reserved here whose confirmation is overdue from what Postgres says of
/// their bets: confirmed if committed, released if it never can commit (the wallet lease
/// it was held under is gone), asked again later otherwise.
pub async fn reconcile_overdue(registry: &Registry) {
    let cluster = registry.cluster();
    for leg in cluster.overdue_unconfirmed(RECONCILE_PER_ROUND) {
        let fate = match cluster.leg_fate(&leg).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "unconfirmed remote legs: Postgres did not answer");
                return;
            }
        };
        if fate == LegFate::Undecided {
            cluster.defer_unconfirmed(leg.market_id, leg.reservation_id);
            continue;
        }
        let committed = fate == LegFate::Committed;
        settle_here(
            registry,
            LegSettle {
                market_id: leg.market_id,
                reservation_id: leg.reservation_id,
                committed,
            },
        )
        .await;
        cluster
            .counters
            .legs_reconciled
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(market = %leg.market_id, committed,
            "a remote leg's confirmation never came; settled from Postgres");
    }
}
