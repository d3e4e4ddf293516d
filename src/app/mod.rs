//! Services: one unit per use case, between the adapters (routes, WebSocket, feed ingest,
//! CLI) and the owners of live state (actors, wallet shards, writers). Each service holds
//! only the handles it needs (never `AppState`) and answers its own error type, whose
//! variants are the domain's reasons; the adapters map those to the contract
//! (`routes::error_map`). Two doors to one action call one service.
//!
//! - [`accounts`]: the desk's changes of an account's controls; the bettor's profile,
//!   preferences (limits) and self-exclusion.
//! - [`bets`]: place a bet (REST and WebSocket).
//! - [`cashout`]: cash-out offers, taking them (full, partial), automatic cash-out.
//! - [`catalogue`]: create sports, leagues, teams and events (audited; an event goes live).
//! - [`events`]: set an event's status (trader and feed), cancellation included.
//! - [`kyc`]: verification codes, documents, the support queue and its decisions.
//! - [`markets`]: a trader's actions on one market (prices, suspend/resume/close, settings).
//! - [`referrals`]: bets referred to the trading desk: its decisions, counter-offers, the
//!   bettor's answer, the windows.
pub mod accounts;
pub mod bets;
pub mod bonus;
pub mod cashout;
pub mod catalogue;
pub mod events;
pub mod kyc;
pub mod markets;
pub mod referrals;
pub mod remote_legs;
