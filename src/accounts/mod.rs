//! Accounts: input validation of the account endpoints, betting limits with their
//! cooling-off, login throttling in Redis and the bounded security-event log.
pub mod cards;
pub mod limits;
pub mod ratelimit;
pub mod register;
pub mod security_log;
pub mod validate;
