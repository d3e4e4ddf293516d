//! winzo-load: the load-test driver of the Winzo engine as a library (the `winzo-load`
//! binary and the smoke tests both use it).
//!
//! A run provisions its own data through the public API (`provision`), runs one scenario
//! (`scenarios`) for a set time or count while recording per-operation latency and answers
//! by code (`stats`), verifies correctness afterwards (`verify`: `winzo check-ledger` and
//! every acknowledged bet id in Postgres) and writes JSON, Markdown and an SVG latency plot
//! (`report`).
pub mod api;
pub mod cpu;
pub mod opts;
pub mod provision;
pub mod rawws;
pub mod report;
pub mod scenarios;
pub mod stats;
pub mod summary;
pub mod verify;
pub mod ws;

pub use opts::Opts;
pub use scenarios::{run_scenario, Scenario};
