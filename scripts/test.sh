#!/usr/bin/env bash
# `make test`: the test profile's services, a fresh template database with every
# migration applied, then the whole workspace's tests. Extra arguments go to
# `cargo test` (make passes TEST_ARGS), e.g. `scripts/test.sh ledger -- --nocapture`.
#
# Tests create their own databases from winzo_template (see config/test.toml), so
# DATABASE_URL and REDIS_URL from the caller's shell are removed for `cargo test`: a
# dev URL exported in a terminal must never point the tests at the dev database.
#
# Runs are serialized by a lock (.data/test/.make-test.lock): a second `make test`
# waits instead of dropping the template under the first one's feet.
#
# Then the browser tests of the web pages (scripts/browser-test.sh, headless Chromium).
#
# Exit status: cargo test's own (101 on failing tests) when it failed, else the browser
# tests'; make turns any failure into 2.
# The test services stay running afterwards (also under CI=true) so reruns start fast
# and other sessions sharing them are not cut off; `make stop` stops them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PG_BIN="${WINZO_PG_BIN:-/usr/lib/postgresql/15/bin}"
TEMPLATE_URL="postgres://winzo@127.0.0.1:25433/winzo_template"
TEST_REDIS_URL="redis://127.0.0.1:26380"

scripts/services.sh up test
cargo build --bins
scripts/openapi-check.sh target/debug/winzo

exec 8>.data/test/.make-test.lock
if ! flock -n 8; then
  echo "[test] another 'make test' is running here; waiting for it (up to 1 h)..." >&2
  flock -w 3600 8 || { echo "[test] ERROR: gave up waiting for .data/test/.make-test.lock" >&2; exit 1; }
fi

# Per-test databases (t_<uuid>) left by earlier runs: drop those nobody is connected to
# (without FORCE, so a database a running test still uses is left alone).
echo "[test] dropping idle per-test databases from earlier runs" >&2
env -i PATH="$PG_BIN:/usr/bin:/bin" LC_ALL=C PGCONNECT_TIMEOUT=10 \
  "$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p 25433 -U winzo -d postgres \
  -c "SELECT datname FROM pg_database WHERE datname ~ '^t_[0-9a-f]{32}$'" 8>&- |
  # Eight at a time: one DROP DATABASE waits for its checkpoint (seconds each).
  xargs -r -P 8 -I{} env -i PATH="$PG_BIN:/usr/bin:/bin" LC_ALL=C PGCONNECT_TIMEOUT=10 \
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p 25433 -U winzo -d postgres \
    -c 'DROP DATABASE IF EXISTS "{}"' >/dev/null 2>&1 8>&- || true

echo "[test] recreating winzo_template" >&2
env -i PATH="$PG_BIN:/usr/bin:/bin" LC_ALL=C PGCONNECT_TIMEOUT=10 \
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 25433 -U winzo -d postgres \
  -c 'DROP DATABASE IF EXISTS winzo_template WITH (FORCE)' \
  -c 'CREATE DATABASE winzo_template OWNER winzo' 8>&-

echo "[test] migrating winzo_template" >&2
DATABASE_URL="$TEMPLATE_URL" REDIS_URL="$TEST_REDIS_URL" WINZO_ENV=test \
  target/debug/winzo migrate 8>&-

# fd 8 (the lock) is closed for cargo so a process leaked by a test cannot hold it.
cargo_status=0
env -u DATABASE_URL -u REDIS_URL WINZO_ENV=test cargo test --workspace --no-fail-fast "$@" 8>&- || cargo_status=$?

# The web pages in headless Chromium against a real engine on its own database cloned from
# the template (scripts/browser-test.sh). Run after cargo test whatever its outcome; the
# script fails when either does, with cargo's own status first.
browser_status=0
WINZO_TEMPLATE=winzo_template scripts/browser-test.sh 8>&- || browser_status=$?
if [ "$cargo_status" -ne 0 ]; then exit "$cargo_status"; fi
exit "$browser_status"
