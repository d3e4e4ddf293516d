//! A market's state changes through its mailbox: prices, status commands, in-play,
//! settings; and the reads of its state and liability.
use actix::prelude::*;
use tokio::sync::oneshot;

use super::{ChangeReply, LiabilityView, MarketActor, MarketView};
use crate::actors::errors::MarketError;
use crate::actors::writer::{AuditActor, Change, Durable};
use crate::domain::ids::SelectionId;
use crate::domain::limits::MarketLimitsOverride;
use crate::domain::{check_margin_floor, market, MarketCommand, MarketStatus, Odds};

impl MarketActor {
    /// Validates and applies new prices; the caller has a writer slot.
    pub(super) fn set_prices(
        &mut self,
        prices: &[(SelectionId, Odds)],
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
            let moved = changed.iter().map(|(id, _)| *id).collect();
            self.shared.price_moves.notify(self.m.id, moved);
        }
        Ok((self.view(), durable))
    }

    /// Applies a status command through the domain's table.
    pub(super) fn apply_command(
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

    pub(super) fn set_in_play(
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

    pub(super) fn update_settings(
        &mut self,
        patch: &MarketLimitsOverride,
        actor: AuditActor,
    ) -> Result<(MarketView, Durable), MarketError> {
        let next = self.m.limits.overlaid(patch);
        crate::actors::errors::check_limits(&next)?;
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
    pub prices: Vec<(SelectionId, Odds)>,
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
