//! Opening a market on a live event, and a market's liability (live, or zeros once it has
//! left the book).
use rust_decimal::Decimal;

use super::{MarketService, MarketsError};
use crate::actors::event::GetEvent;
use crate::actors::market::{
    GetLiability, GetMarket, LiabilityView, MarketView, SelectionLiability,
};
use crate::actors::AuditActor;
use crate::db::markets as mq;
use crate::domain::ids::{EventId, MarketId};
use crate::domain::{check_margin_floor, MarketType, Odds};

/// A market as a trader asks to open it (names already checked for length by the adapter).
pub struct NewMarketSpec {
    pub market_type: MarketType,
    pub name: String,
    pub handicap: Option<Decimal>,
    pub total_points: Option<Decimal>,
    /// `(name, price)` per selection, in the order they are shown.
    pub selections: Vec<(String, Odds)>,
}

impl MarketService {
    /// Checks the prices (count, highest price, margin floor), records the market with its
    /// selections (audited with `actor`) and starts its actor in the event's state.
    pub async fn create(
        &self,
        event_id: EventId,
        spec: NewMarketSpec,
        actor: AuditActor,
    ) -> Result<MarketView, MarketsError> {
        let cfg = &self.registry.shared.markets;
        let n = spec.selections.len();
        if n < 2 || n > cfg.selections_per_market_max {
            return Err(MarketsError::Invalid(format!(
                "a market needs 2 to {} selections",
                cfg.selections_per_market_max
            )));
        }
        let mut prices = Vec::with_capacity(n);
        for (_, odds) in &spec.selections {
            let odds = odds
                .ensure_at_most(cfg.odds_max)
                .map_err(|e| MarketsError::Invalid(format!("odds: {e}")))?;
            prices.push(odds);
        }
        check_margin_floor(&prices, cfg.margin_floor)
            .map_err(|e| MarketsError::Refused(e.into()))?;
        let reg = &self.registry;
        let event_addr = reg
            .event(event_id)
            .await?
            .ok_or(MarketsError::EventNotFound)?;
        let (event_state, _) = reg.ask(&event_addr, |reply| GetEvent { reply }).await?;
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        mq::set_audit_context(&*tx, &actor).await?;
        let new = mq::NewMarket {
            event_id,
            market_type: spec.market_type,
            name: &spec.name,
            handicap: spec.handicap,
            total_points: spec.total_points,
            in_play: event_state.status.is_in_play(),
            selections: spec
                .selections
                .iter()
                .zip(&prices)
                .map(|((name, _), o)| (name.as_str(), o.value()))
                .collect(),
        };
        let (market, selections) = mq::insert_market(&*tx, &new)
            .await
            .map_err(MarketsError::Write)?;
        let event_row = mq::load_event(&*tx, event_id)
            .await?
            .ok_or(MarketsError::EventNotFound)?;
        tx.commit().await?;
        let addr = reg.start_market(&event_row, market, selections, &Default::default())?;
        Ok(reg.ask(&addr, |reply| GetMarket { reply }).await?)
    }

    /// The market's liability per selection. A settled or voided market holds no open bet:
    /// its view shows zeros with its selections and limits (not found only for a market
    /// that never existed).
    pub async fn liability(&self, market_id: MarketId) -> Result<LiabilityView, MarketsError> {
        let reg = &self.registry;
        match reg.market(market_id).await? {
            Some(addr) => Ok(reg.ask(&addr, |reply| GetLiability { reply }).await?),
            None => self.final_liability(market_id).await,
        }
    }

    async fn final_liability(&self, id: MarketId) -> Result<LiabilityView, MarketsError> {
        let client = self.db.get().await?;
        let row = mq::load_market(&**client, id)
            .await?
            .ok_or(MarketsError::NotFound)?;
        let event = mq::load_event(&**client, row.event_id)
            .await?
            .ok_or(MarketsError::NotFound)?;
        let limits = self
            .registry
            .shared
            .markets
            .type_limits(&event.sport_slug, row.market_type.as_str())
            .overlaid(&row.settings);
        let zero = Decimal::new(0, 2);
        let mut selections: Vec<SelectionLiability> =
            crate::db::feed::selections_by_name(&client, id)
                .await?
                .into_iter()
                .map(|(name, selection_id)| SelectionLiability {
                    selection_id,
                    name,
                    stake: zero,
                    payout: zero,
                    liability: zero,
                    reserved_stake: zero,
                    reserved_payout: zero,
                })
                .collect();
        selections.sort_by_key(|s| s.selection_id);
        Ok(LiabilityView {
            market_id: id,
            currency_code: self.registry.currencies().base().to_string(),
            total_stake: zero,
            max_liability: zero,
            max_liability_selection: limits.max_liability_selection,
            max_liability_market: limits.max_liability_market,
            selections,
        })
    }
}
