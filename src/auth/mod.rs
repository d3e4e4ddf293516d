//! Authentication and authorization: Argon2id passwords, Redis sessions, roles, and the
//! extractors every protected handler takes.
pub mod cache;
pub mod client;
pub mod extract;
pub mod password;
pub mod roles;
pub mod session;

pub use extract::{AdminUser, AuthUser, Trader, TradingReader};
pub use roles::{Role, RouteClass};
