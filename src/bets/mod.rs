//! The bet path: request → shape and idempotency → each leg's MarketActor (check and
//! reserve) → in-play delay → wallet shard (account, funds, limits, reserve) → ledger
//! writer (group commit) → confirm reservations, answer, private channel.
pub mod answer;
pub mod inflight;
pub mod place;
pub mod request;
pub mod settings;

pub use answer::BetAnswer;
pub use place::place;
pub use request::PlaceBetRequest;
