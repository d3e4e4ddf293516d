//! What a market shows: its view for traders and the catalogue, its liability, and the
//! `odds` and `market_status` messages it publishes.
use rust_decimal::Decimal;
use serde::Serialize;

use super::MarketActor;
use crate::domain::ids::{EventId, MarketId, SelectionId};
use crate::domain::limits::MarketLimits;
use crate::domain::{display, MarketStatus, MarketType, Odds, OddsFormat};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SelectionView {
    #[schema(value_type = uuid::Uuid)]
    pub id: SelectionId,
    pub name: String,
    #[schema(value_type = String, example = "2.5000")]
    pub odds: Odds,
}

/// A market's live state as answered to traders and the catalogue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MarketView {
    #[schema(value_type = uuid::Uuid)]
    pub id: MarketId,
    #[schema(value_type = uuid::Uuid)]
    pub event_id: EventId,
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

/// Stake and exposure of one selection (confirmed plus reserved), in the base currency.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SelectionLiability {
    #[schema(value_type = uuid::Uuid)]
    pub selection_id: SelectionId,
    pub name: String,
    #[schema(value_type = String)]
    pub stake: Decimal,
    /// Potential payout if the selection wins.
    #[schema(value_type = String)]
    pub payout: Decimal,
    /// Net loss of the market if this selection wins: payout − every stake on the market.
    #[schema(value_type = String)]
    pub liability: Decimal,
    #[schema(value_type = String)]
    pub reserved_stake: Decimal,
    #[schema(value_type = String)]
    pub reserved_payout: Decimal,
}

/// A market's liability. Bets in every currency are counted in the book's base currency
/// (`currency_code`) at the configured rates, and shown rounded at its scale; the limits
/// are in it too.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LiabilityView {
    #[schema(value_type = uuid::Uuid)]
    pub market_id: MarketId,
    /// The base currency every amount of this view is in.
    pub currency_code: String,
    #[schema(value_type = String)]
    pub total_stake: Decimal,
    /// Worst case over selections of `liability`.
    #[schema(value_type = String)]
    pub max_liability: Decimal,
    #[schema(value_type = String)]
    pub max_liability_selection: Decimal,
    #[schema(value_type = String)]
    pub max_liability_market: Decimal,
    pub selections: Vec<SelectionLiability>,
}

impl MarketActor {
    pub(super) fn view(&self) -> MarketView {
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

    pub(super) fn publish_odds(&self, changed: &[(SelectionId, Odds)]) {
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

    pub(super) fn publish_status(&self) {
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

    /// Each selection's stakes and payout, confirmed and reserved together.
    pub(super) fn exposures(&self) -> Vec<crate::domain::liability::Exposure> {
        self.m
            .selections
            .iter()
            .map(|s| crate::domain::liability::Exposure {
                stake: s.stake + s.reserved_stake,
                payout: s.payout + s.reserved_payout,
            })
            .collect()
    }

    pub(super) fn liability(&self) -> LiabilityView {
        use crate::domain::liability;
        let exposures = self.exposures();
        let c = &self.shared.currencies;
        let shown = |d: Decimal| c.base_money(d);
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
                stake: shown(e.stake),
                payout: shown(e.payout),
                liability: shown(liability::liability_if_wins(&exposures, i)),
                reserved_stake: shown(s.reserved_stake),
                reserved_payout: shown(s.reserved_payout),
            })
            .collect();
        let max_liability = liability::worst_case(&exposures);
        LiabilityView {
            market_id: self.m.id,
            currency_code: c.base().to_string(),
            total_stake: shown(total_stake),
            max_liability: shown(max_liability),
            max_liability_selection: self.m.limits.max_liability_selection,
            max_liability_market: self.m.limits.max_liability_market,
            selections,
        }
    }
}

#[derive(Serialize)]
struct PriceOut {
    id: SelectionId,
    odds: Odds,
    american: String,
    fractional: String,
}

/// The `odds` topic message.
#[derive(Serialize)]
struct OddsDelta {
    event_id: EventId,
    market_id: MarketId,
    selections: Vec<PriceOut>,
}

/// The `market_status` topic message.
#[derive(Serialize)]
struct StatusDelta {
    event_id: EventId,
    market_id: MarketId,
    status: MarketStatus,
    in_play: bool,
    feed_suspended: bool,
}
