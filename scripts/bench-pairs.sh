#!/usr/bin/env bash
# Before/after pairs: the `bets` scenario of `make bench` (scripts/bench.sh, one round each)
# run alternately against this checkout's release build and against another engine build,
# PAIRS times, so both sides see the same machine at nearly the same moment.
#
#   scripts/bench-pairs.sh <checkout of the earlier commit, with target/release/winzo built>
#
# The earlier engine runs with its own config/ (WINZO_CONFIG_DIR) and migrates its own
# fresh database; the load generator is this checkout's. Environment: PAIRS (3),
# BENCH_DURATION_S (15), BENCH_SCENARIOS (bets). Prints each round's summary line and
# where the results are; compare the rows (and their pgbench baselines, run in the same
# round) side by side.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

before="${1:?usage: scripts/bench-pairs.sh <checkout of the earlier commit>}"
before_bin="$before/target/release/winzo"
[ -x "$before_bin" ] || { echo "no engine build at $before_bin" >&2; exit 1; }
pairs="${PAIRS:-3}"
export BENCH_RUNS=1 BENCH_CURVE="" BENCH_SCENARIOS="${BENCH_SCENARIOS:-bets}"

round() { # <label> [env assignments...]
  local label="$1"; shift
  local log
  log="$(mktemp)"
  env "$@" scripts/bench.sh >"$log" 2>&1 || { tail -20 "$log" >&2; rm -f "$log"; return 1; }
  local dir
  dir="$(dirname "$(sed -n 's/^\[bench\] summary: //p' "$log")")"
  echo "== $label: $dir"
  grep -E '^\| (bets|parlays|inplay|cash-out) \|' "$dir/SUMMARY.md" || true
  grep -E '^\| run1 \|' "$dir/SUMMARY.md" | head -2 || true
  grep -E '^CPU per acknowledged bet' "$dir/SUMMARY.md" || true
  rm -f "$log"
}

for i in $(seq 1 "$pairs"); do
  round "pair $i after ($(git rev-parse --short HEAD))" PAIR="$i"
  round "pair $i before ($(git -C "$before" rev-parse --short HEAD))" \
    BENCH_BIN="$before_bin" WINZO_CONFIG_DIR="$before/config"
done
