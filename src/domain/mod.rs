//! The pure domain of the engine: odds maths, money, the market, event and bet state
//! machines, bet validation and pricing, and settlement. Nothing here does I/O or knows
//! about actix, tokio, Postgres or Redis, so all of it is tested with plain unit and
//! property tests beside the code.
//!
//! - [`money`]: `Money` (2 places), strict parsing of amounts, the payout rounding rule,
//!   and the `ValidationError` shared by every numeric string of the API.
//! - [`currency`]: a currency's scale and rate to the base currency, [`currency::round_money`]
//!   (the one rounding of an account's money) and the conversion to the base.
//! - [`odds`]: `Odds` (decimal, 4 places, canonical), American and fractional conversion,
//!   `OddsFormat` and `display`.
//! - [`margin`]: a market's overround and the margin floor check for price updates.
//! - [`market`]: `MarketStatus`, `MarketCommand` and the one market transition table;
//!   `MarketType`.
//! - [`event`]: `EventStatus` and the event transition table.
//! - [`bet`]: `BetType`, `OddsChangePolicy`, leg checks (duplicate and correlated legs),
//!   system combinations and `price_bet`.
//! - [`bet_status`]: `BetStatus` and the bet transition table.
//! - [`settlement`]: leg results with dead-heat and void factors, and `settle_bet`.
//! - [`limits`]: a market's trading settings (`MarketLimits`) and their overrides.
//! - [`liability`]: a market's loss if each selection wins, and the limits a leg must keep.
//! - [`verification`]: a profile's `VerificationStatus` and its transition table (KYC).
//! - [`account`]: an account's `UserStatus` and what it restricts.
//!
//! Enums that mirror a Postgres enum type are declared with `wire_enum!`, so the spelling in
//! JSON, in SQL and in logs is one and the same.

#[macro_use]
mod wire_enum;

pub mod account;
pub mod bet;
pub mod bet_status;
pub mod betting_limits;
pub mod bonus;
pub mod cashout;
pub mod currency;
pub mod event;
pub mod ids;
pub mod liability;
pub mod limits;
pub mod margin;
pub mod market;
pub mod money;
pub mod odds;
pub mod settlement;
pub mod verification;

pub use bet::{
    check_legs, check_shape, line_count, price_bet, system_lines, BetError, BetLimits, BetType,
    LegKey, OddsChangePolicy, Priced,
};
pub use bet_status::{BetStatus, InvalidBetTransition};
pub use event::{EventStatus, InvalidEventTransition};
pub use margin::{check_margin_floor, overround, MarginError};
pub use market::{InvalidTransition, MarketCommand, MarketStatus, MarketType};
pub use money::{round_payout, Money, ValidationError};
pub use odds::{display, Odds, OddsFormat};
pub use settlement::{settle_bet, LegOutcome, LegResult, Settled, SettlementError};
pub use wire_enum::UnknownVariant;
