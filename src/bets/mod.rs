//! The bet path: request → shape and idempotency → each leg's MarketActor (check and
//! reserve) → in-play delay → wallet shard (account, funds, limits, reserve) → ledger
//! writer (group commit) → confirm reservations, answer, private channel.
pub mod answer;
pub mod request;

pub use answer::BetAnswer;
pub use request::PlaceBetRequest;
