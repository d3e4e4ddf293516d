//! Winzo: an actor-based real-time odds and in-play engine for a sportsbook.
//!
//! Map of the crate:
//! - [`config`]: typed settings from `config/` files and environment variables.
//! - [`domain`]: pure sportsbook logic (money, odds, state machines, bet pricing,
//!   settlement); no I/O, tested exhaustively.
//! - [`db`]: the Postgres pool, migrations and every SQL statement; it imports nothing
//!   above it but [`domain`].
//! - [`demo`]: `winzo seed-demo`, the demo book and accounts of `make run`.
//! - [`redis_client`]: the Redis connection (sessions, rate limits, fan-out).
//! - [`app`]: the services, one per use case, between the adapters and the owners of
//!   live state.
//! - [`routes`]: the HTTP surface of `shared/API.md` and its error plumbing.
//! - [`startup`]: wiring everything together and running the server.
//! - [`actors`]: live state (event and market actors, registry, batching writer).
//! - [`broadcast`]: the in-process topic hub (`event:<id>`, `sport:<slug>`).
//! - [`metrics`], [`telemetry`]: Prometheus figures and tracing.
//! - [`feed`]: signed provider pushes, sequencing, the silent-provider watchdog;
//!   [`feed_sim`] a simulated provider.
//! - [`ws`]: WebSocket sessions (the only user of actix-web-actors); [`bridge`] relays
//!   topic messages between nodes through Redis pub/sub.
//! - [`kyc`]: verification settings, codes and the notifier (use cases in `app::kyc`).
//! - [`accounts`]: account validation, betting limits, login throttling, security events.
//! - [`wallet`]: wallet shard actors (one writer per user) and payment processors.
//! - [`settlement`]: settling, resettling and voiding markets and bets, in resumable
//!   batches through the wallet shards.
//! - [`ledger_check`]: `winzo check-ledger`, the ledger invariants checked in Postgres.
//! - [`maintenance`]: the daily maintenance scheduler and the database gauges' refresh.
// No production function over 70 lines (clippy.toml sets the threshold; unit-test tables
// may run longer).
#![cfg_attr(not(test), warn(clippy::too_many_lines))]
pub mod accounts;
pub mod actors;
pub mod app;
pub mod auth;
pub mod bets;
pub mod book;
pub mod bridge;
pub mod broadcast;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;

pub mod feed;
pub mod feed_sim;
pub mod kyc;
pub mod ledger;
pub mod ledger_check;
pub mod maintenance;
pub mod metrics;
pub mod redis_client;
pub mod routes;
pub mod settlement;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod wallet;
