//! The bet path's types: the request, its one error type, the answer, the keys in flight
//! and the settings. The use case itself is `app::bets::BetService`: request → shape and
//! idempotency → legs' markets resolved → wallet shard (account, funds, limits, hold) →
//! each leg's MarketActor (check and reserve; in-play delay) → ledger writer (group
//! commit) → confirm reservations, answer, private channel.
// The answer of an accepted bet is the database layer's view of a stored bet.
pub use crate::db::bet_answer as answer;
pub mod error;
pub mod inflight;
pub mod request;
pub mod settings;

pub use answer::BetAnswer;
pub use error::PlaceError;
pub use request::PlaceBetRequest;
