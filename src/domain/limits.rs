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
    /// How long the desk has to decide a referred bet; 0: referral off (a bet breaking a
    /// limit is refused).
    #[serde(default)]
    pub referral_window_ms: u32,
    /// Which refusals are referred rather than answered (when the window is not 0).
    #[serde(default = "Referable::all")]
    #[schema(value_type = Vec<String>)]
    pub referable: Referable,
}

/// The refusals a market refers to the trading desk instead of answering them:
/// `liability_exceeded`, `stake_too_high` (a list of those codes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Referable {
    pub liability_exceeded: bool,
    pub stake_too_high: bool,
}

impl Referable {
    pub const fn all() -> Referable {
        Referable {
            liability_exceeded: true,
            stake_too_high: true,
        }
    }

    /// The codes, in a fixed order.
    pub fn codes(self) -> Vec<&'static str> {
        let mut out = Vec::with_capacity(2);
        if self.liability_exceeded {
            out.push("liability_exceeded");
        }
        if self.stake_too_high {
            out.push("stake_too_high");
        }
        out
    }

    /// From a list of codes; `Err` names the first one that is not referable.
    pub fn from_codes<'a>(codes: impl IntoIterator<Item = &'a str>) -> Result<Referable, String> {
        let mut r = Referable {
            liability_exceeded: false,
            stake_too_high: false,
        };
        for code in codes {
            match code {
                "liability_exceeded" => r.liability_exceeded = true,
                "stake_too_high" => r.stake_too_high = true,
                other => return Err(format!("{other:?} is not a referable refusal")),
            }
        }
        Ok(r)
    }
}

impl serde::Serialize for Referable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.codes().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Referable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let codes: Vec<String> = Vec::deserialize(d)?;
        Referable::from_codes(codes.iter().map(String::as_str)).map_err(serde::de::Error::custom)
    }
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
    pub referral_window_ms: Option<u32>,
    #[schema(value_type = Option<Vec<String>>)]
    pub referable: Option<Referable>,
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
            referral_window_ms: over.referral_window_ms.unwrap_or(self.referral_window_ms),
            referable: over.referable.unwrap_or(self.referable),
        }
    }
}
