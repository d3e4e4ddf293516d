//! Property tests against one shared engine, several cases at a time.
//!
//! A case of these tests is a few dozen requests, each waiting on the engine and Postgres
//! more than on the CPU; run one after the other, 256 of them take minutes on a loaded
//! two-core machine. Here `workers` proptest runners, each with its own random seed and
//! its share of the cases, run side by side on one runtime. Cases must therefore share no
//! state: each makes its own users and markets, and checks only what it made (or what
//! holds at any moment for everyone, such as the ledger's invariants).
use std::fmt::Debug;
use std::future::Future;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestRunner};

/// Cases to run: `PROPTEST_CASES`, 256 by default.
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Runs `config.cases` cases of `strategy` through `case` on `rt`, `workers` at a time
/// (a fixed `PROPTEST_RNG_SEED` still reproduces the run: worker `i` uses seed + `i`).
/// A case fails by panicking; the test then fails with each failing worker's minimal
/// input.
pub fn run<S, F, Fut>(
    rt: &tokio::runtime::Runtime,
    config: Config,
    workers: u32,
    strategy: &S,
    case: F,
) where
    S: Strategy + Sync,
    S::Value: Debug,
    F: Fn(S::Value) -> Fut + Sync,
    Fut: Future<Output = ()>,
{
    let workers = workers.clamp(1, config.cases.max(1));
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..workers)
            .map(|i| {
                let mut config = config.clone();
                config.cases = config.cases / workers + u32::from(i < config.cases % workers);
                if let RngSeed::Fixed(seed) = config.rng_seed {
                    config.rng_seed = RngSeed::Fixed(seed.wrapping_add(u64::from(i)));
                }
                let case = &case;
                scope.spawn(move || {
                    TestRunner::new(config)
                        .run(strategy, |value| {
                            rt.block_on(case(value));
                            Ok(())
                        })
                        .err()
                        .map(|e| e.to_string())
                })
            })
            .collect();
        runs.into_iter()
            .filter_map(|r| r.join().expect("a property worker"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
