//! Accounts: input validation of the account endpoints, betting limits with their
//! cooling-off, the one path of account-control changes ([`controls`]), login throttling
//! in Redis and the bounded security-event log.
pub mod cards;
pub mod controls;
pub mod limits;
pub mod ratelimit;
pub mod register;
pub mod security_log;
pub mod validate;
