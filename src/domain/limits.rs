//! A market's trading settings (bet delay, stake and liability limits) and their
//! overrides: per sport in config, per market in the `markets` row. Pure data.

/// A market's trading settings (API: `PATCH /trading/markets/{id}/settings`).
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct MarketLimits {
    /// How long an in-play bet is held before it is re-checked and taken.
    pub bet_delay_ms: u32,
    #[schema(value_type = String)]
    pub min_stake: rust_decimal::Decimal,
    #[schema(value_type = String)]
    pub max_stake: rust_decimal::Decimal,
    /// Most potential payout on any one selection.
    #[schema(value_type = String)]
    pub max_liability_selection: rust_decimal::Decimal,
    /// Most net loss of the market whichever selection wins.
    #[schema(value_type = String)]
    pub max_liability_market: rust_decimal::Decimal,
}
/// The same settings, each optional: a sport's override, a market's own column values.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct MarketLimitsOverride {
    pub bet_delay_ms: Option<u32>,
    #[schema(value_type = Option<String>)]
    pub min_stake: Option<rust_decimal::Decimal>,
    #[schema(value_type = Option<String>)]
    pub max_stake: Option<rust_decimal::Decimal>,
    #[schema(value_type = Option<String>)]
    pub max_liability_selection: Option<rust_decimal::Decimal>,
    #[schema(value_type = Option<String>)]
    pub max_liability_market: Option<rust_decimal::Decimal>,
}
impl MarketLimits {
    /// `self` with every value `over` sets replacing the one here.
    pub fn overlaid(self, over: &MarketLimitsOverride) -> MarketLimits {
        MarketLimits {
            bet_delay_ms: over.bet_delay_ms.unwrap_or(self.bet_delay_ms),
            min_stake: over.min_stake.unwrap_or(self.min_stake),
            max_stake: over.max_stake.unwrap_or(self.max_stake),
            max_liability_selection: over
                .max_liability_selection
                .unwrap_or(self.max_liability_selection),
            max_liability_market: over
                .max_liability_market
                .unwrap_or(self.max_liability_market),
        }
    }
}
