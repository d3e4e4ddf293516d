//! The bet path's steps on a market: check and reserve a leg, confirm or release the
//! reservation, and release the exposure of bets that left the book.
use actix::prelude::*;
use chrono::Utc;
use rust_decimal::Decimal;
use serde::Serialize;
use tokio::sync::oneshot;

use super::MarketActor;
use crate::actors::errors::LegRejection;
use crate::domain::currency::Rounding;
use crate::domain::ids::{MarketId, SelectionId};
use crate::domain::{MarketStatus, Odds, OddsChangePolicy};

#[derive(Debug, Clone)]
pub struct LegRequest {
    pub selection_id: SelectionId,
    /// The price the bettor asked for.
    pub odds: Odds,
    pub policy: OddsChangePolicy,
    /// Stake at risk on this leg (the bet's total stake for a single), in `currency_code`.
    pub stake: Decimal,
    /// Potential payout attributed to this leg, in `currency_code`; `None`: stake × the
    /// price taken, rounded down at the currency's scale.
    pub payout: Option<Decimal>,
    /// The bettor's currency: the market's limits and liability are in the base currency,
    /// so the stake and payout are converted at its rate.
    pub currency_code: String,
    /// The user's stake factor (multiplies the market's max stake).
    pub stake_factor: Decimal,
    /// The user's own max stake, if any (in the bettor's currency).
    pub user_max_stake: Option<Decimal>,
    /// The bet may be referred to the desk: a refusal the market refers (its
    /// `referral_window_ms` is not 0 and the refusal is in its `referable`) reserves the leg
    /// anyway, marked [`Reservation::referred`].
    pub referable: bool,
}

/// A taken leg, counted in the market's liability until confirmed or released.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Reservation {
    pub id: u64,
    pub market_id: MarketId,
    pub selection_id: SelectionId,
    /// The price actually taken.
    pub odds: Odds,
    /// Stake and payout as the market counts them: in the base currency.
    pub stake: Decimal,
    pub payout: Decimal,
    /// The market was in play: the leg was held for `bet_delay_ms` and re-checked.
    pub in_play: bool,
    /// The leg broke this limit and the market refers it: the bet goes to the desk,
    /// which has `referral_window_ms` to decide.
    #[serde(skip)]
    pub referred: Option<LegRejection>,
    pub referral_window_ms: u32,
}

impl MarketActor {
    /// The checks of one leg against the market as it is now (no state changes).
    /// The market takes bets (and cash-outs) now: open, and not suspended by its feed.
    pub(super) fn check_open(&self) -> Result<(), LegRejection> {
        match self.m.status {
            MarketStatus::Open => {}
            MarketStatus::Suspended => return Err(LegRejection::MarketSuspended),
            _ => return Err(LegRejection::MarketClosed),
        }
        if self.m.feed_suspended {
            return Err(LegRejection::MarketSuspended);
        }
        Ok(())
    }

    /// `limits`: false checks everything but the referable limits (stake maximum and
    /// liability), for a leg that is referred. Answers the selection, the price and the
    /// leg's stake and payout in the base currency (the market's limits and liability are
    /// in it; a stake limit is shown to the bettor converted to their currency).
    pub(super) fn check_leg(
        &self,
        leg: &LegRequest,
        limits_on: bool,
    ) -> Result<(usize, Odds, Decimal, Decimal), LegRejection> {
        self.check_open()?;
        if !self.m.in_play && Utc::now() >= self.m.event_start {
            return Err(LegRejection::EventStarted);
        }
        let i = self
            .m
            .selections
            .iter()
            .position(|s| s.id == leg.selection_id)
            .ok_or(LegRejection::UnknownSelection)?;
        let current = self.m.selections[i].odds;
        if !leg.policy.accepts(leg.odds, current) {
            return Err(LegRejection::OddsChanged { current });
        }
        let limits = &self.m.limits;
        let currency = self.shared.currencies.of(&leg.currency_code);
        // The market's stake limits are in the base currency: in the bettor's they are the
        // minimum rounded up and the maximum rounded down at its scale.
        let min = currency.from_base(limits.min_stake, Rounding::Up);
        if leg.stake < min {
            return Err(LegRejection::StakeTooLow { min });
        }
        let mut max = currency.from_base(limits.max_stake * leg.stake_factor, Rounding::Down);
        if let Some(user_max) = leg.user_max_stake {
            max = max.min(user_max);
        }
        if limits_on && leg.stake > max {
            return Err(LegRejection::StakeTooHigh { max });
        }
        let payout = leg.payout.unwrap_or_else(|| {
            crate::domain::round_payout(leg.stake * current.value(), currency.scale).as_decimal()
        });
        let (stake, payout) = (currency.to_base(leg.stake), currency.to_base(payout));
        if !limits_on {
            return Ok((i, current, stake, payout));
        }
        crate::domain::liability::check_leg(
            &self.exposures(),
            i,
            stake,
            payout,
            limits.max_liability_selection,
            limits.max_liability_market,
        )
        .map_err(|_| LegRejection::LiabilityExceeded)?;
        Ok((i, current, stake, payout))
    }

    /// This market refers the refusal `e` to the desk instead of answering it.
    fn refers(&self, e: &LegRejection) -> bool {
        let l = &self.m.limits;
        l.referral_window_ms > 0
            && match e {
                LegRejection::LiabilityExceeded => l.referable.liability_exceeded,
                LegRejection::StakeTooHigh { .. } => l.referable.stake_too_high,
                _ => false,
            }
    }

    pub(super) fn reserve(&mut self, leg: &LegRequest) -> Result<Reservation, LegRejection> {
        let (i, odds, stake, payout, referred) = match self.check_leg(leg, true) {
            Ok((i, odds, stake, payout)) => (i, odds, stake, payout, None),
            Err(e) if leg.referable && self.refers(&e) => {
                let (i, odds, stake, payout) = self.check_leg(leg, false)?;
                (i, odds, stake, payout, Some(e))
            }
            Err(e) => return Err(e),
        };
        let s = &mut self.m.selections[i];
        s.reserved_stake += stake;
        s.reserved_payout += payout;
        let id = self.next_reservation;
        self.next_reservation += 1;
        let r = Reservation {
            id,
            market_id: self.m.id,
            selection_id: s.id,
            odds,
            stake,
            payout,
            in_play: self.m.in_play,
            referred,
            referral_window_ms: self.m.limits.referral_window_ms,
        };
        self.reservations.insert(id, r.clone());
        Ok(r)
    }

    /// Removes a reservation; `confirm` moves it into the confirmed totals.
    pub(super) fn settle_reservation(&mut self, id: u64, confirm: bool) {
        let Some(r) = self.reservations.remove(&id) else {
            return;
        };
        if let Some(s) = self
            .m
            .selections
            .iter_mut()
            .find(|s| s.id == r.selection_id)
        {
            s.reserved_stake -= r.stake;
            s.reserved_payout -= r.payout;
            if confirm {
                s.stake += r.stake;
                s.payout += r.payout;
            }
        }
    }
}

/// The bet path's step on this market: check the leg (status, event start for pre-match,
/// price against the policy, stake limits, liability) and reserve it. An in-play market
/// holds the leg for its bet delay and checks it again at expiry (a suspension or a price
/// move against the policy meanwhile rejects it and releases the reservation). The
/// reservation counts toward liability at once; the bet path then sends
/// [`ConfirmReservation`] after its commit or [`ReleaseReservation`] on any refusal.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckAndReserve {
    pub leg: LegRequest,
    pub reply: oneshot::Sender<Result<Reservation, LegRejection>>,
}

impl Handler<CheckAndReserve> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: CheckAndReserve, ctx: &mut Context<Self>) {
        let reservation = match self.reserve(&msg.leg) {
            Ok(r) => r,
            Err(e) => {
                let _ = msg.reply.send(Err(e));
                return;
            }
        };
        let delay_ms = self.m.limits.bet_delay_ms;
        if !reservation.in_play || delay_ms == 0 {
            let _ = msg.reply.send(Ok(reservation));
            return;
        }
        let delay = std::time::Duration::from_millis(u64::from(delay_ms));
        ctx.run_later(delay, move |act, _| {
            // The leg's own reservation must not count against itself in the re-check,
            // which compares the market now with the price the bettor asked for.
            act.settle_reservation(reservation.id, false);
            let out = act.reserve(&msg.leg);
            let _ = msg.reply.send(out);
        });
    }
}

/// The bet committed: the reservation becomes confirmed liability.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConfirmReservation {
    pub reservation_id: u64,
}

impl Handler<ConfirmReservation> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: ConfirmReservation, _: &mut Context<Self>) {
        self.settle_reservation(msg.reservation_id, true);
    }
}

/// The bet was refused or failed to commit: the reservation is dropped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseReservation {
    pub reservation_id: u64,
}

impl Handler<ReleaseReservation> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: ReleaseReservation, _: &mut Context<Self>) {
        self.settle_reservation(msg.reservation_id, false);
    }
}

/// A referred bet's counter-offer was taken: its new stake and exposure join the book
/// (after [`ReleaseExposure`] of what the referral counted). Entries as in
/// [`ReleaseExposure`] (in the base currency).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddExposure {
    pub legs: Vec<(SelectionId, Decimal, Decimal)>,
}

impl Handler<AddExposure> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: AddExposure, _: &mut Context<Self>) {
        for (selection_id, stake, payout) in msg.legs {
            if let Some(s) = self.m.selections.iter_mut().find(|s| s.id == selection_id) {
                s.stake += stake;
                s.payout += payout;
            }
        }
    }
}

/// Open bets left the book (a trader voided one, or it was settled by another of its
/// markets): their stake and exposure leave this market's liability at once. Each entry
/// is `(selection_id, stake, payout)` as the bet counted them when it was confirmed (or
/// recovered: `bets.stake`, `bets.potential_win`), converted to the base currency
/// (`Currency::to_base`, exact); a total never goes below zero.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseExposure {
    pub legs: Vec<(SelectionId, Decimal, Decimal)>,
}

impl Handler<ReleaseExposure> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: ReleaseExposure, _: &mut Context<Self>) {
        for (selection_id, stake, payout) in msg.legs {
            if let Some(s) = self.m.selections.iter_mut().find(|s| s.id == selection_id) {
                s.stake = (s.stake - stake).max(Decimal::ZERO);
                s.payout = (s.payout - payout).max(Decimal::ZERO);
            }
        }
    }
}
