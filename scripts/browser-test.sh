#!/usr/bin/env bash
# The browser tests of the web pages (issue 19): the bettor's page and the trading console in
# headless Chromium (Debian's `chromium`, driven by `playwright-core` from tests/browser),
# against a real `winzo serve` with its own fresh database and the test Redis.
#
#   scripts/browser-test.sh            uses the template winzo_template (what `make test` made)
#   WINZO_TEMPLATE=winzo_tpl_x scripts/browser-test.sh    another migrated template
#
# Steps: Chromium and Node installed if missing (apt-get, like scripts/services.sh does for
# Postgres), `npm ci` in tests/browser when its node_modules is missing or older than the
# lock file, a database b_<random> cloned from the template and loaded with the demo data
# (`winzo seed-demo`: the demo bettor and trader, events with prices), `target/debug/winzo
# serve` on a free port, `node --test` over tests/browser/*.test.mjs, then the server is
# stopped by its pid and the database dropped. Screenshots go to tests/browser/screenshots/
# (git-ignored). Exit status: the tests' own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PG_BIN="${WINZO_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_HOST=127.0.0.1
PG_PORT="${WINZO_TEST_PG_PORT:-25433}"
TEMPLATE="${WINZO_TEMPLATE:-winzo_template}"
REDIS_URL_TEST="${WINZO_TEST_REDIS_URL:-redis://127.0.0.1:26380}"
BIN=target/debug/winzo
DIR=tests/browser

log() { echo "[browser-test] $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  log "installing $* with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

[ -x /usr/bin/chromium ] || apt_install chromium
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
[ -x "$BIN" ] || cargo build --bins

if [ ! -d "$DIR/node_modules/playwright-core" ] || [ "$DIR/package-lock.json" -nt "$DIR/node_modules/.package-lock.json" ]; then
  log "npm ci in $DIR"
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

psql_admin() {
  env -i PATH="$PG_BIN:/usr/bin:/bin" LC_ALL=C PGCONNECT_TIMEOUT=10 \
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U winzo -d postgres "$@"
}

DB="b_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
DB_URL="postgres://winzo@$PG_HOST:$PG_PORT/$DB"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
LOG_DIR="$DIR/screenshots"
mkdir -p "$LOG_DIR"
SERVER_LOG="$LOG_DIR/server.log"
server_pid=""

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  psql_admin -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "database $DB from template $TEMPLATE"
psql_admin -c "CREATE DATABASE \"$DB\" TEMPLATE \"$TEMPLATE\""
ENGINE_ENV=(env -u DATABASE_URL -u REDIS_URL WINZO_ENV=test DATABASE_URL="$DB_URL" REDIS_URL="$REDIS_URL_TEST")
"${ENGINE_ENV[@]}" "$BIN" seed-demo >/dev/null

log "winzo serve on 127.0.0.1:$PORT (log: $SERVER_LOG)"
"${ENGINE_ENV[@]}" WINZO__SERVER__HOST=127.0.0.1 WINZO__SERVER__PORT="$PORT" WINZO__LOG__LEVEL=warn \
  "$BIN" serve >"$SERVER_LOG" 2>&1 &
server_pid=$!

for i in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then log "the server exited; its log:"; tail -30 "$SERVER_LOG" >&2; exit 1; fi
  [ "$i" -eq 300 ] && { log "the server was not ready within 30 s"; tail -30 "$SERVER_LOG" >&2; exit 1; }
  sleep 0.1
done

status=0
(cd "$DIR" && WINZO_URL="http://127.0.0.1:$PORT" node --test --test-reporter=spec ./*.test.mjs) || status=$?
exit "$status"
