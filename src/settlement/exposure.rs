//! Open bets that leave the book (a trader's void of one bet, a parlay lost or voided by
//! one of its markets) release their stake and exposure in the live actors of their other
//! legs' markets at once, rather than at the actors' next restart (recovery counts only
//! `accepted` bets). The market being settled has no actor any more: nothing to release.
use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::actors::market::ReleaseExposure;
use crate::actors::Registry;
use crate::domain::ids::{MarketId, SelectionId};
use crate::domain::BetStatus;
use crate::wallet::credits::Booked;

/// Tells every running market of these bookings' open bets to drop them from liability.
/// A bet's confirmation that has not reached its actor yet is released too early and then
/// counted again (the total never goes below zero): liability can only be overstated.
pub async fn release(registry: &Registry, booked: &[Booked]) {
    let mut per_market: HashMap<MarketId, Vec<(SelectionId, Decimal, Decimal)>> = HashMap::new();
    for b in booked
        .iter()
        .filter(|b| b.change.old_status == BetStatus::Accepted)
    {
        // The markets count in the base currency.
        let currency = registry.currencies().of(&b.change.currency_code);
        let (stake, payout) = b.change.exposure;
        let (stake, payout) = (currency.to_base(stake), currency.to_base(payout));
        for &selection in &b.change.selections {
            if let Some(market) = registry.market_of_selection(selection) {
                per_market
                    .entry(market)
                    .or_default()
                    .push((selection, stake, payout));
            }
        }
    }
    for (market, legs) in per_market {
        if let Some(addr) = registry.running_market(market) {
            // `send` waits for mailbox room (bounded; internal and trader-only traffic).
            // A stopped actor has nothing left to release.
            let _ = addr.send(ReleaseExposure { legs }).await;
        }
    }
}
