//! `MarketActor`: the one writer of a market's live state: selections and their odds,
//! status, in-play flag, trading settings and liability per selection. Price changes,
//! suspensions and every bet leg's check-and-reserve are serialized through its mailbox.
//!
//! Every request carries a `oneshot` reply and is sent with `try_send` (see
//! [`super::registry::ask`]), so a full mailbox answers 503 `busy` at once. A change of live
//! state takes a slot in the writer's queue first, then changes memory, publishes to the
//! event's and sport's topics, and answers with a [`Durable`] that resolves once the change
//! is committed.
use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use tokio::sync::oneshot;
use uuid::Uuid;

pub mod feed;

use super::errors::{LegRejection, MarketError};
use super::registry::Directory;
use super::writer::{AuditActor, Change, Durable};
use super::Shared;
use crate::domain::limits::{MarketLimits, MarketLimitsOverride};
use crate::domain::{
    check_margin_floor, display, market, MarketCommand, MarketStatus, MarketType, Odds,
    OddsChangePolicy, OddsFormat,
};

/// A selection's live state.
#[derive(Debug, Clone)]
pub struct SelectionState {
    pub id: Uuid,
    pub name: String,
    pub odds: Odds,
    /// Confirmed bets: stake taken and potential payout.
    pub stake: Decimal,
    pub payout: Decimal,
    /// Reservations not yet confirmed or released (they count toward limits at once).
    pub reserved_stake: Decimal,
    pub reserved_payout: Decimal,
}

/// Everything a market actor starts from (recovery, on-demand start, creation).
pub struct MarketInit {
    pub id: Uuid,
    pub event_id: Uuid,
    pub sport_slug: Arc<str>,
    pub event_start: DateTime<Utc>,
    pub market_type: MarketType,
    pub name: String,
    pub handicap: Option<Decimal>,
    pub total_points: Option<Decimal>,
    pub status: MarketStatus,
    pub in_play: bool,
    pub feed_suspended: bool,
    /// The sport's defaults overlaid with the market's own settings.
    pub limits: MarketLimits,
    pub selections: Vec<SelectionState>,
}

pub struct MarketActor {
    m: MarketInit,
    reservations: HashMap<u64, Reservation>,
    next_reservation: u64,
    shared: Arc<Shared>,
    directory: std::sync::Weak<Directory>,
    event_topic: crate::broadcast::TopicHandle,
    sport_topic: crate::broadcast::TopicHandle,
}

/// A selection as answered and published.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SelectionView {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = String, example = "2.5000")]
    pub odds: Odds,
}

/// A market's live state as answered to traders and the catalogue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MarketView {
    pub id: Uuid,
    pub event_id: Uuid,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub market_type: MarketType,
    pub name: String,
    pub handicap: Option<Decimal>,
    pub total_points: Option<Decimal>,
    #[schema(value_type = String)]
    pub status: MarketStatus,
    pub in_play: bool,
    pub feed_suspended: bool,
    /// Overround `sum(1/odds) - 1`.
    pub margin: Option<Decimal>,
    pub settings: MarketLimits,
    pub selections: Vec<SelectionView>,
}

/// Stake and exposure of one selection (confirmed plus reserved).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SelectionLiability {
    pub selection_id: Uuid,
    pub name: String,
    pub stake: Decimal,
    /// Potential payout if the selection wins.
    pub payout: Decimal,
    /// Net loss of the market if this selection wins: payout − every stake on the market.
    pub liability: Decimal,
    pub reserved_stake: Decimal,
    pub reserved_payout: Decimal,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LiabilityView {
    pub market_id: Uuid,
    pub total_stake: Decimal,
    /// Worst case over selections of `liability`.
    pub max_liability: Decimal,
    pub max_liability_selection: Decimal,
    pub max_liability_market: Decimal,
    pub selections: Vec<SelectionLiability>,
}

/// One leg of a bet as the bet path asks the market to take it.
#[derive(Debug, Clone)]
pub struct LegRequest {
    pub selection_id: Uuid,
    /// The price the bettor asked for.
    pub odds: Odds,
    pub policy: OddsChangePolicy,
    /// Stake at risk on this leg (the bet's total stake for a single).
    pub stake: Decimal,
    /// Potential payout attributed to this leg; `None`: stake × the price taken.
    pub payout: Option<Decimal>,
    /// The user's stake factor (multiplies the market's max stake).
    pub stake_factor: Decimal,
    /// The user's own max stake, if any.
    pub user_max_stake: Option<Decimal>,
}

/// A taken leg, counted in the market's liability until confirmed or released.
#[derive(Debug, Clone, Serialize)]
pub struct Reservation {
    pub id: u64,
    pub market_id: Uuid,
    pub selection_id: Uuid,
    /// The price actually taken.
    pub odds: Odds,
    pub stake: Decimal,
    pub payout: Decimal,
    /// The market was in play: the leg was held for `bet_delay_ms` and re-checked.
    pub in_play: bool,
}

/// Reply channel of a state change: the new state and when it is durable.
pub type ChangeReply = oneshot::Sender<Result<(MarketView, Durable), MarketError>>;

impl Actor for MarketActor {
    type Context = Context<Self>;
}

impl MarketActor {
    pub fn new(m: MarketInit, shared: Arc<Shared>, directory: std::sync::Weak<Directory>) -> Self {
        let event_topic = shared
            .hub
            .handle(&crate::broadcast::event_topic(m.event_id));
        let sport_topic = shared
            .hub
            .handle(&crate::broadcast::sport_topic(&m.sport_slug));
        MarketActor {
            m,
            reservations: HashMap::new(),
            next_reservation: 1,
            shared,
            directory,
            event_topic,
            sport_topic,
        }
    }

    fn view(&self) -> MarketView {
        let prices: Vec<Odds> = self.m.selections.iter().map(|s| s.odds).collect();
        MarketView {
            id: self.m.id,
            event_id: self.m.event_id,
            market_type: self.m.market_type,
            name: self.m.name.clone(),
            handicap: self.m.handicap,
            total_points: self.m.total_points,
            status: self.m.status,
            in_play: self.m.in_play,
            feed_suspended: self.m.feed_suspended,
            margin: crate::domain::overround(&prices).ok(),
            settings: self.m.limits,
            selections: self
                .m
                .selections
                .iter()
                .map(|s| SelectionView {
                    id: s.id,
                    name: s.name.clone(),
                    odds: s.odds,
                })
                .collect(),
        }
    }

    fn publish_odds(&self, changed: &[(Uuid, Odds)]) {
        let data = OddsDelta {
            event_id: self.m.event_id,
            market_id: self.m.id,
            selections: changed
                .iter()
                .map(|&(id, odds)| PriceOut {
                    id,
                    odds,
                    american: display(odds, OddsFormat::American),
                    fractional: display(odds, OddsFormat::Fractional),
                })
                .collect(),
        };
        self.shared
            .hub
            .publish_all(&[&self.event_topic, &self.sport_topic], "odds", &data);
    }

    fn publish_status(&self) {
        let data = StatusDelta {
            event_id: self.m.event_id,
            market_id: self.m.id,
            status: self.m.status,
            in_play: self.m.in_play,
            feed_suspended: self.m.feed_suspended,
        };
        self.shared.hub.publish_all(
            &[&self.event_topic, &self.sport_topic],
            "market_status",
            &data,
        );
    }

    /// Validates and applies new prices; the caller has a writer slot.
    fn set_prices(
        &mut self,
        prices: &[(Uuid, Odds)],
        actor: AuditActor,
    ) -> Result<(MarketView, Durable), MarketError> {
        match self.m.status {
            MarketStatus::Open => {}
            MarketStatus::Suspended if self.shared.markets.suspended_accepts_prices => {}
            MarketStatus::Suspended => return Err(MarketError::Suspended),
            _ => return Err(MarketError::Closed(self.m.status)),
        }
        let mut next: Vec<Odds> = self.m.selections.iter().map(|s| s.odds).collect();
        for (selection_id, odds) in prices {
            let i = self.index_of(*selection_id)?;
            next[i] = odds
                .ensure_at_most(self.shared.markets.odds_max)
                .map_err(|e| MarketError::Validation(e.to_string()))?;
        }
        check_margin_floor(&next, self.shared.markets.margin_floor)?;
        let slot = self
            .shared
            .writer
            .reserve()
            .map_err(|_| MarketError::Busy)?;
        let mut changes = Vec::with_capacity(prices.len());
        let mut changed = Vec::with_capacity(prices.len());
        for (i, s) in self.m.selections.iter_mut().enumerate() {
            if s.odds != next[i] {
                s.odds = next[i];
                changes.push(Change::SelectionOdds {
                    selection_id: s.id,
                    odds: s.odds.value(),
                });
                changed.push((s.id, s.odds));
            }
        }
        let durable = slot.send(actor, changes);
        if !changed.is_empty() {
            self.publish_odds(&changed);
        }
        Ok((self.view(), durable))
    }

    fn index_of(&self, selection_id: Uuid) -> Result<usize, MarketError> {
        self.m
            .selections
            .iter()
            .position(|s| s.id == selection_id)
            .ok_or(MarketError::UnknownSelection(selection_id))
    }

    /// Applies a status command through the domain's table.
    fn apply_command(
        &mut self,
        command: MarketCommand,
        actor: AuditActor,
        ctx: &mut Context<Self>,
    ) -> Result<(MarketView, Durable), MarketError> {
        let next = market::transition(self.m.status, command)?;
        let slot = self
            .shared
            .writer
            .reserve()
            .map_err(|_| MarketError::Busy)?;
        self.m.status = next;
        let durable = slot.send(
            actor,
            vec![Change::MarketStatus {
                market_id: self.m.id,
                status: next,
            }],
        );
        self.publish_status();
        if matches!(next, MarketStatus::Settled | MarketStatus::Voided) {
            if let Some(dir) = self.directory.upgrade() {
                dir.forget_market(self.m.id, self.m.selections.iter().map(|s| s.id));
            }
            ctx.stop();
        }
        Ok((self.view(), durable))
    }

    fn set_in_play(
        &mut self,
        in_play: bool,
        actor: AuditActor,
    ) -> Result<Option<Durable>, MarketError> {
        if self.m.in_play == in_play {
            return Ok(None);
        }
        let slot = self
            .shared
            .writer
            .reserve()
            .map_err(|_| MarketError::Busy)?;
        self.m.in_play = in_play;
        let durable = slot.send(
            actor,
            vec![Change::MarketInPlay {
                market_id: self.m.id,
                in_play,
            }],
        );
        self.publish_status();
        Ok(Some(durable))
    }

    fn update_settings(
        &mut self,
        patch: &MarketLimitsOverride,
        actor: AuditActor,
    ) -> Result<(MarketView, Durable), MarketError> {
        let next = self.m.limits.overlaid(patch);
        super::errors::check_limits(&next)?;
        let slot = self
            .shared
            .writer
            .reserve()
            .map_err(|_| MarketError::Busy)?;
        self.m.limits = next;
        let durable = slot.send(
            actor,
            vec![Change::MarketSettings {
                market_id: self.m.id,
                limits: next,
            }],
        );
        Ok((self.view(), durable))
    }

    /// Each selection's stakes and payout, confirmed and reserved together.
    fn exposures(&self) -> Vec<crate::domain::liability::Exposure> {
        self.m
            .selections
            .iter()
            .map(|s| crate::domain::liability::Exposure {
                stake: s.stake + s.reserved_stake,
                payout: s.payout + s.reserved_payout,
            })
            .collect()
    }

    fn liability(&self) -> LiabilityView {
        use crate::domain::liability;
        let exposures = self.exposures();
        let total_stake = liability::total_stake(&exposures);
        let selections: Vec<SelectionLiability> = self
            .m
            .selections
            .iter()
            .zip(&exposures)
            .enumerate()
            .map(|(i, (s, e))| SelectionLiability {
                selection_id: s.id,
                name: s.name.clone(),
                stake: e.stake,
                payout: e.payout,
                liability: liability::liability_if_wins(&exposures, i),
                reserved_stake: s.reserved_stake,
                reserved_payout: s.reserved_payout,
            })
            .collect();
        let max_liability = liability::worst_case(&exposures);
        LiabilityView {
            market_id: self.m.id,
            total_stake,
            max_liability,
            max_liability_selection: self.m.limits.max_liability_selection,
            max_liability_market: self.m.limits.max_liability_market,
            selections,
        }
    }

    /// The checks of one leg against the market as it is now (no state changes).
    fn check_leg(&self, leg: &LegRequest) -> Result<(usize, Odds, Decimal), LegRejection> {
        match self.m.status {
            MarketStatus::Open => {}
            MarketStatus::Suspended => return Err(LegRejection::MarketSuspended),
            _ => return Err(LegRejection::MarketClosed),
        }
        if self.m.feed_suspended {
            return Err(LegRejection::MarketSuspended);
        }
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
        if leg.stake < limits.min_stake {
            return Err(LegRejection::StakeTooLow {
                min: limits.min_stake,
            });
        }
        let mut max = limits.max_stake * leg.stake_factor;
        if let Some(user_max) = leg.user_max_stake {
            max = max.min(user_max);
        }
        let max = max.round_dp(2);
        if leg.stake > max {
            return Err(LegRejection::StakeTooHigh { max });
        }
        let payout = leg.payout.unwrap_or_else(|| {
            crate::domain::round_payout(leg.stake * current.value()).as_decimal()
        });
        crate::domain::liability::check_leg(
            &self.exposures(),
            i,
            leg.stake,
            payout,
            limits.max_liability_selection,
            limits.max_liability_market,
        )
        .map_err(|_| LegRejection::LiabilityExceeded)?;
        Ok((i, current, payout))
    }

    fn reserve(&mut self, leg: &LegRequest) -> Result<Reservation, LegRejection> {
        let (i, odds, payout) = self.check_leg(leg)?;
        let s = &mut self.m.selections[i];
        s.reserved_stake += leg.stake;
        s.reserved_payout += payout;
        let id = self.next_reservation;
        self.next_reservation += 1;
        let r = Reservation {
            id,
            market_id: self.m.id,
            selection_id: s.id,
            odds,
            stake: leg.stake,
            payout,
            in_play: self.m.in_play,
        };
        self.reservations.insert(id, r.clone());
        Ok(r)
    }

    /// Removes a reservation; `confirm` moves it into the confirmed totals.
    fn settle_reservation(&mut self, id: u64, confirm: bool) {
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

#[derive(Serialize)]
struct PriceOut {
    id: Uuid,
    odds: Odds,
    american: String,
    fractional: String,
}

/// The `odds` topic message.
#[derive(Serialize)]
struct OddsDelta {
    event_id: Uuid,
    market_id: Uuid,
    selections: Vec<PriceOut>,
}

/// The `market_status` topic message.
#[derive(Serialize)]
struct StatusDelta {
    event_id: Uuid,
    market_id: Uuid,
    status: MarketStatus,
    in_play: bool,
    feed_suspended: bool,
}

/// The market's current state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetMarket {
    pub reply: oneshot::Sender<MarketView>,
}

impl Handler<GetMarket> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: GetMarket, _: &mut Context<Self>) {
        let _ = msg.reply.send(self.view());
    }
}

/// New prices for one or more selections (`prices: [(selection_id, odds)]`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetPrices {
    pub prices: Vec<(Uuid, Odds)>,
    pub actor: AuditActor,
    pub reply: ChangeReply,
}

impl Handler<SetPrices> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: SetPrices, _: &mut Context<Self>) {
        let _ = msg.reply.send(self.set_prices(&msg.prices, msg.actor));
    }
}

/// A status command (suspend, resume, close, settle, resettle, void). With
/// `skip_if_invalid` (bulk calls over an event's markets), a command that does not apply
/// answers `Ok(None)` instead of an error.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyCommand {
    pub command: MarketCommand,
    pub actor: AuditActor,
    pub skip_if_invalid: bool,
    pub reply: oneshot::Sender<Result<Option<(MarketView, Durable)>, MarketError>>,
}

impl Handler<ApplyCommand> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: ApplyCommand, ctx: &mut Context<Self>) {
        let out = match self.apply_command(msg.command, msg.actor, ctx) {
            Ok(v) => Ok(Some(v)),
            Err(MarketError::InvalidTransition(_)) if msg.skip_if_invalid => Ok(None),
            Err(e) => Err(e),
        };
        let _ = msg.reply.send(out);
    }
}

/// The event went (or left) in play.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetInPlay {
    pub in_play: bool,
    pub actor: AuditActor,
    pub reply: oneshot::Sender<Result<Option<Durable>, MarketError>>,
}

impl Handler<SetInPlay> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: SetInPlay, _: &mut Context<Self>) {
        let _ = msg.reply.send(self.set_in_play(msg.in_play, msg.actor));
    }
}

/// Changes the market's trading settings (values not given stay).
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpdateSettings {
    pub patch: MarketLimitsOverride,
    pub actor: AuditActor,
    pub reply: ChangeReply,
}

impl Handler<UpdateSettings> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: UpdateSettings, _: &mut Context<Self>) {
        let _ = msg.reply.send(self.update_settings(&msg.patch, msg.actor));
    }
}

/// Liability per selection, live.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetLiability {
    pub reply: oneshot::Sender<LiabilityView>,
}

impl Handler<GetLiability> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: GetLiability, _: &mut Context<Self>) {
        let _ = msg.reply.send(self.liability());
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

/// Open bets left the book (a trader voided one, or it was settled by another of its
/// markets): their stake and exposure leave this market's liability at once. Each entry
/// is `(selection_id, stake, payout)` as the bet counted them when it was confirmed (or
/// recovered: `bets.stake`, `bets.potential_win`); a total never goes below zero.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseExposure {
    pub legs: Vec<(Uuid, Decimal, Decimal)>,
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
