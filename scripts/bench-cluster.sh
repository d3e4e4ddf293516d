#!/usr/bin/env bash
# Bets per second with one engine node and with three (issue 20), in one run on this
# machine: tests/cluster_bench.rs (ignored in the normal suite) starts the debug `winzo
# serve` binary once alone (no leases, as `make run`) and then three times sharing events by
# lease, each on a fresh database cloned from the test template, and prints the figures.
# Needs the test services (scripts/services.sh up test) and a migrated template.
# Environment: BENCH_BETTORS (12 concurrent bettors), BENCH_SECONDS (15 per measurement),
# BENCH_ROUNDS (3: one node then three, each round; the medians are printed),
# WINZO__DATABASE__TEMPLATE (the template database, as for the tests).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
env -u DATABASE_URL -u REDIS_URL WINZO_ENV=test \
  cargo test -p winzo --test cluster_bench -- --ignored --nocapture 2>&1 | grep -E '^bench:|test result'
