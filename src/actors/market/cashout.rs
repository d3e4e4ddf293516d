//! Cash-out on a market: the price of an open leg now, checked like a bet leg in one actor
//! turn (status, feed suspension, the selection), and for a cash-out being taken in play,
//! checked again at the end of the market's bet delay.
use actix::prelude::*;
use tokio::sync::oneshot;

use super::MarketActor;
use crate::actors::errors::LegRejection;
use crate::domain::ids::{MarketId, SelectionId};
use crate::domain::Odds;

/// A leg's price for a cash-out.
#[derive(Debug, Clone, PartialEq)]
pub struct LegPrice {
    pub market_id: MarketId,
    /// The market's sport (the cash-out margin may differ per sport).
    pub sport: std::sync::Arc<str>,
    pub selection_id: SelectionId,
    pub odds: Odds,
    pub in_play: bool,
    /// The bet delay this answer waited (0: answered at once).
    pub waited_ms: u32,
}

/// The price of `selection_id` now. `hold`: a cash-out being taken: in play the answer
/// waits the market's bet delay and is checked again then (a suspension meanwhile refuses
/// it; the price answered is the one at expiry).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CashOutPrice {
    pub selection_id: SelectionId,
    pub hold: bool,
    pub reply: oneshot::Sender<Result<LegPrice, LegRejection>>,
}

impl MarketActor {
    fn cash_out_price(
        &self,
        selection_id: SelectionId,
        waited_ms: u32,
    ) -> Result<LegPrice, LegRejection> {
        self.check_open()?;
        let s = self
            .m
            .selections
            .iter()
            .find(|s| s.id == selection_id)
            .ok_or(LegRejection::UnknownSelection)?;
        Ok(LegPrice {
            market_id: self.m.id,
            sport: self.m.sport_slug.clone(),
            selection_id,
            odds: s.odds,
            in_play: self.m.in_play,
            waited_ms,
        })
    }
}

impl Handler<CashOutPrice> for MarketActor {
    type Result = ();
    fn handle(&mut self, msg: CashOutPrice, ctx: &mut Context<Self>) {
        let now = self.cash_out_price(msg.selection_id, 0);
        let delay_ms = self.m.limits.bet_delay_ms;
        let wait = msg.hold && delay_ms > 0 && now.as_ref().is_ok_and(|p| p.in_play);
        if !wait {
            let _ = msg.reply.send(now);
            return;
        }
        let delay = std::time::Duration::from_millis(u64::from(delay_ms));
        ctx.run_later(delay, move |act, _| {
            let _ = msg
                .reply
                .send(act.cash_out_price(msg.selection_id, delay_ms));
        });
    }
}
