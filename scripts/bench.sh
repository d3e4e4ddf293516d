#!/usr/bin/env bash
# make bench: the standard load-test set against a local release build.
#
#   1. release build of every binary (winzo, winzo-load);
#   2. the dev services (scripts/services.sh up dev, as `make run`), but a separate
#      database `winzo_bench` dropped and recreated on every run (dev data is untouched),
#      migrated and seeded with `winzo seed-demo` (trader/trader-password-1, demo sports);
#   3. per round a fresh `winzo serve` (release) with production-like settings (config/bench.toml:
#      warn-level JSON logs, no maintenance job) on BENCH_PORT, open-files limit raised;
#      with the ws-compare scenario, after the round's other scenarios, a second fresh engine
#      and two baselines: the plain serialize-once broadcaster (tokio-tungstenite,
#      load-tests/src/bin/plain_broadcaster.rs) on BENCH_BROADCASTER_PORT (BENCH_PORT + 1)
#      and the minimal Node `ws` one (load-tests/node-broadcaster/server.mjs; its npm
#      dependency installed with `npm ci` when missing) on BENCH_NODE_BROADCASTER_PORT
#      (BENCH_PORT + 2): the same WebSocket clients against the engine, then each baseline;
#   4. BENCH_RUNS rounds of the scenarios in BENCH_SCENARIOS (each verified: check-ledger
#      and every acknowledged bet in Postgres) and, in the same round, the pgbench baseline
#      (load-tests/pgbench/bet.sql) on its own database `winzo_bench_pgbench`, then the
#      batched ceiling (load-tests/pgbench/batch100.sql: 100 bets per transaction, no triggers)
#      and the same batches with every trigger and foreign key on;
#   5. stops the engine by its PID after each round's scenarios; writes the summary (medians, ratio to the baseline)
#      to load-tests/results/bench-<time>/SUMMARY.md; the per-run JSON, Markdown and SVG
#      plots are beside it.
#   With the bets scenario, each round also runs the open-loop curve: singles at fixed rates
#   of BENCH_CURVE (fractions of that round's bets/s; "0.25 0.5 0.75 1.0", empty for none),
#   BENCH_CURVE_S (10) seconds each; SUMMARY.md gets the table and curve.svg the plot.
# Environment: BENCH_RUNS (3), BENCH_DURATION_S (15), BENCH_SCENARIOS, BENCH_PORT (18080),
# BENCH_DB (winzo_bench; the baseline's database is <BENCH_DB>_pgbench, and the baseline runs
# only with the bets scenario), BENCH_BROADCASTER_PORT, BENCH_NODE_BROADCASTER_PORT,
# BENCH_SKIP_SERVICES, BENCH_FANOUT_SUBSCRIBERS (10000), BENCH_KEEP_WAL, BENCH_ARGS (more winzo-load flags),
# BENCH_BIN (the engine binary; default this checkout's release build). Exits 1 if any run FAILED its correctness checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS="${BENCH_RUNS:-3}"
DURATION="${BENCH_DURATION_S:-15}"
PORT="${BENCH_PORT:-18080}"
PG="postgres://winzo@127.0.0.1:25432"
DB="${BENCH_DB:-winzo_bench}"
DB_URL="$PG/$DB"
PGB_DB="${DB}_pgbench"
BROADCASTER_PORT="${BENCH_BROADCASTER_PORT:-$((PORT + 1))}"
NODE_BROADCASTER_PORT="${BENCH_NODE_BROADCASTER_PORT:-$((PORT + 2))}"
NODE_DIR=load-tests/node-broadcaster
REDIS_URL="redis://127.0.0.1:26379"
OUT="load-tests/results/bench-$(date -u +%Y%m%d-%H%M%S)"
# BENCH_BIN: another engine binary to measure (e.g. a release build of an earlier commit,
# for before/after pairs); built here when unset.
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="${BENCH_BIN:-$TARGET_DIR/release/winzo}"
LOAD="$TARGET_DIR/release/winzo-load"
PLAIN="$TARGET_DIR/release/plain_broadcaster"

log() { printf '[bench] %s\n' "$*" >&2; }

cargo build --release --workspace --bins
# BENCH_SKIP_SERVICES=1: the dev services already run from another checkout (a worktree's
# services.sh would set up a cluster of its own under its own .data/ on the same ports).
[ -n "${BENCH_SKIP_SERVICES:-}" ] || scripts/services.sh up dev

# Scenarios: the WebSocket and feed ones only when this build serves them.
default_scenarios="bets parlays inplay match-day cash-out"
if "$BIN" --help 2>/dev/null | grep -qE '^[[:space:]]+feed-sim'; then
  default_scenarios="bets parlays inplay fanout feed-storm match-day cash-out ws-compare"
fi
SCENARIOS="${BENCH_SCENARIOS:-$default_scenarios}"
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# ws-compare's Node broadcaster: Node and npm (Debian's) when missing, then its one
# dependency (ws) as scripts/browser-test.sh installs its own: `npm ci` when node_modules is
# missing or older than the lock file.
if has ws-compare; then
  command -v node >/dev/null && command -v npm >/dev/null || scripts/apt-install.sh nodejs npm
  if [ ! -d "$NODE_DIR/node_modules/ws" ] || [ "$NODE_DIR/package-lock.json" -nt "$NODE_DIR/node_modules/.package-lock.json" ]; then
    log "npm ci in $NODE_DIR"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
fi

recreate() { # <database>
  psql "$PG/postgres" -qX -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
  DATABASE_URL="$PG/$1" "$BIN" migrate >/dev/null
}
log "fresh database $DB"
recreate "$DB"
DATABASE_URL="$DB_URL" "$BIN" seed-demo >/dev/null
# The baseline's ratios are the bets scenario's: without it, no pgbench.
if has bets; then
  log "fresh database $PGB_DB"
  recreate "$PGB_DB"
  psql "$PG/$PGB_DB" -qX -v ON_ERROR_STOP=1 -f load-tests/pgbench/setup.sql >/dev/null
fi

# 10,000 WebSocket clients need more than the default 1,024 open files (per process).
hard="$(ulimit -Hn)"
ulimit -n "$([ "$hard" = unlimited ] && echo 20000 || echo $((hard < 20000 ? hard : 20000)))"

mkdir -p "$OUT"
export WINZO_ENV=bench DATABASE_URL="$DB_URL" REDIS_URL="$REDIS_URL"
ENGINE=""
BROADCASTER=""
NODE_BROADCASTER=""
trap 'for p in $ENGINE $BROADCASTER $NODE_BROADCASTER; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done' EXIT

# A fresh engine per round, so that its peak memory and the memory per idle WebSocket
# connection are those of the round; its resident memory once ready goes to engine-memory.txt.
start_engine() { # <round>
  WINZO__SERVER__PORT="$PORT" WINZO__DATABASE__MIGRATE_ON_START=false \
    "$BIN" serve >>"$OUT/engine-$1.log" 2>&1 &
  ENGINE=$!
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "$1 ready: $(grep -E '^Vm(HWM|RSS)' "/proc/$ENGINE/status" | tr -s ' \t' ' ' | tr '\n' ' ')" \
    >>"$OUT/engine-memory.txt"
  log "round $1: engine pid $ENGINE on port $PORT; results in $OUT"
}
stop_engine() {
  kill "$ENGINE"
  wait "$ENGINE" 2>/dev/null || true
  ENGINE=""
}

# The providers of config/bench.toml.
FEED_ARGS=""
for i in 1 2 3 4; do FEED_ARGS+=" --feed-provider bench$i:bench-only-feed-secret-$i"; done

failed=0
for run in $(seq 1 "$RUNS"); do
  start_engine "run$run"
  for s in $SCENARIOS; do
    [ "$s" = ws-compare ] && continue # below, on an engine of its own
    log "run $run: $s"
    extra=""
    case "$s" in
      fanout) extra="--subscribers ${BENCH_FANOUT_SUBSCRIBERS:-10000} --price-moves-per-s 40" ;;
      inplay) extra="--concurrency 256 --price-moves-per-s 20" ;;
      match-day) extra="--concurrency 256 --subscribers 2000" ;;
      cash-out) extra="--concurrency 64 --price-moves-per-s 50" ;;
    esac
    # shellcheck disable=SC2086
    "$LOAD" "$s" --url "http://127.0.0.1:$PORT" --duration-s "$DURATION" \
      --results-dir "$OUT" --tag "run$run" --engine-pid "$ENGINE" \
      --database-url "$DB_URL" --winzo-bin "$BIN" --winzo-env bench --quiet \
      $FEED_ARGS $extra ${BENCH_ARGS:-} >>"$OUT/winzo-load.log" || failed=1
  done
  # The open-loop curve (issue 16): singles at fixed rates, fractions of this round's
  # closed-loop peak (the bets scenario's acknowledged bets/s), on the same engine.
  peak="$(grep -ho '"per_s": *[0-9.]*' "$OUT"/*-bets-run"$run".json 2>/dev/null | head -1 |
    grep -o '[0-9.]*$' || true)"
  if [ -n "$peak" ] && [ -n "${BENCH_CURVE-0.25 0.5 0.75 1.0}" ]; then
    for f in ${BENCH_CURVE-0.25 0.5 0.75 1.0}; do
      rate="$(awk -v p="$peak" -v f="$f" 'BEGIN { printf "%.0f", p * f }')"
      log "run $run: open loop at $rate bets/s ($f of $peak)"
      # shellcheck disable=SC2086
      "$LOAD" bets --rate "$rate" --url "http://127.0.0.1:$PORT" \
        --duration-s "${BENCH_CURVE_S:-10}" --results-dir "$OUT" --tag "run$run" \
        --engine-pid "$ENGINE" --database-url "$DB_URL" --winzo-bin "$BIN" \
        --winzo-env bench --quiet ${BENCH_ARGS:-} >>"$OUT/winzo-load.log" || failed=1
    done
  fi
  stop_engine
  # The WebSocket comparison (issue 16): a fresh engine (its memory that of the comparison
  # only) and the two baselines, the same clients against the engine, then the
  # tokio-tungstenite broadcaster, then the Node ws one.
  if has ws-compare; then
    start_engine "run$run-ws"
    "$PLAIN" "$BROADCASTER_PORT" >>"$OUT/broadcaster-run$run.log" 2>&1 &
    BROADCASTER=$!
    node "$NODE_DIR/server.mjs" "$NODE_BROADCASTER_PORT" >>"$OUT/node-broadcaster-run$run.log" 2>&1 &
    NODE_BROADCASTER=$!
    log "run $run: ws-compare (broadcaster pid $BROADCASTER on port $BROADCASTER_PORT, Node broadcaster pid $NODE_BROADCASTER on port $NODE_BROADCASTER_PORT)"
    # shellcheck disable=SC2086
    "$LOAD" ws-compare --url "http://127.0.0.1:$PORT" --duration-s "$DURATION" \
      --results-dir "$OUT" --tag "run$run" --engine-pid "$ENGINE" \
      --broadcaster-url "http://127.0.0.1:$BROADCASTER_PORT" --broadcaster-pid "$BROADCASTER" \
      --node-broadcaster-url "http://127.0.0.1:$NODE_BROADCASTER_PORT" \
      --node-broadcaster-pid "$NODE_BROADCASTER" \
      --subscribers "${BENCH_FANOUT_SUBSCRIBERS:-10000}" \
      --database-url "$DB_URL" --winzo-bin "$BIN" --winzo-env bench --quiet \
      ${BENCH_ARGS:-} >>"$OUT/winzo-load.log" || failed=1
    for p in $BROADCASTER $NODE_BROADCASTER; do
      kill "$p"
      wait "$p" 2>/dev/null || true
    done
    BROADCASTER=""
    NODE_BROADCASTER=""
    stop_engine
  fi
  has bets || continue
  log "run $run: pgbench baseline"
  pgbench -h 127.0.0.1 -p 25432 -U winzo -n -M prepared -f load-tests/pgbench/bet.sql \
    -D bettors=100 -D selections=2000 -c 16 -j 2 -T "$DURATION" "$PGB_DB" \
    >"$OUT/pgbench-run$run.txt" 2>&1 || failed=1
  # Right after, the batched ceiling (issue 16): 100 bets per transaction with the ledger
  # writer's four statements and no triggers, on the same tables of the same database.
  log "run $run: pgbench batched ceiling"
  pgbench -h 127.0.0.1 -p 25432 -U winzo -n -M prepared -f load-tests/pgbench/batch100.sql \
    -D bettors=100 -D selections=2000 -D role=replica -c 16 -j 2 -T "$DURATION" "$PGB_DB" \
    >"$OUT/pgbench-batch-run$run.txt" 2>&1 || failed=1
  # The same batches with every trigger and foreign key of the schema on, as the engine's
  # batches run: what the database's own checks cost, measured beside the ceiling.
  log "run $run: pgbench batches with the database's checks"
  pgbench -h 127.0.0.1 -p 25432 -U winzo -n -M prepared -f load-tests/pgbench/batch100.sql \
    -D bettors=100 -D selections=2000 -D role=origin -c 16 -j 2 -T "$DURATION" "$PGB_DB" \
    >"$OUT/pgbench-checked-run$run.txt" 2>&1 || failed=1
done

trap - EXIT
# A run writes gigabytes of WAL, all archived by the dev profile (PITR): drop the baseline's
# database and keep only the newest 16 archived segments (what `services.sh prune-wal` is
# for; its GNU find pattern matched no segment when this was written, hence the explicit one).
# This also ends point-in-time recovery of the dev database to before the run; set
# BENCH_KEEP_WAL=1 to keep the archive.
psql "$PG/postgres" -qX -c "DROP DATABASE IF EXISTS $PGB_DB WITH (FORCE)" >/dev/null || true
if [ -z "${BENCH_KEEP_WAL:-}" ] && [ -d .data/dev/wal-archive/ ]; then
  find -L .data/dev/wal-archive/ -maxdepth 1 -type f -regextype posix-extended \
    -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort | head -n -16 |
    while read -r seg; do rm -f ".data/dev/wal-archive/$seg"; done
fi
"$LOAD" summarize "$OUT" >"$OUT/SUMMARY.md"
cat "$OUT/SUMMARY.md"
log "summary: $OUT/SUMMARY.md"
exit "$failed"
