#!/usr/bin/env bash
# The ledger writer's insert path, before and after partitioning (docs/operations.md,
# "Partitions"): pgbench commits batches of 100 bets, each with its leg, its stake debit and
# the balance update, as src/db/ledger.rs writes them (four statements per batch), into a
# database migrated up to V44 (before; BENCH_BEFORE=<version> for another) and one migrated
# to the head (after), alternately,
# ROUNDS times each; prints bets/s per round and the medians.
#
#   scripts/bench-ledger-insert.sh [ROUNDS] [SECONDS] [CLIENTS]
#
# BENCH_NO_CHECK=1 disables the deferred placement check in both databases (to measure the
# write path alone); KEEP_DBS=1 keeps the two databases for a closer look.
#
# Needs psql and pgbench on PATH (or WINZO_PG_BIN) and a Postgres reachable as
# PGHOST/PGPORT/PGUSER (defaults: the test services, 127.0.0.1:25433, winzo).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${1:-3}"
SECONDS_PER_ROUND="${2:-20}"
CLIENTS="${3:-2}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-25433}" PGUSER="${PGUSER:-winzo}"
PGBIN="${WINZO_PG_BIN:-/usr/lib/postgresql/15/bin}"
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
PGBENCH="$PGBIN/pgbench"
command -v pgbench >/dev/null 2>&1 && PGBENCH=pgbench
WORK="${BENCH_WORK:-$(mktemp -d)}"
trap 'rm -rf "$WORK"' EXIT

make_db() { # name, last migration version
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
  local f v
  for f in $(ls "$ROOT"/migrations/V*__*.sql | sort -t V -k2 -n); do
    v="$(basename "$f" | sed -E 's/^V([0-9]+)__.*/\1/')"
    [ "$v" -le "$2" ] || break
    "${PSQL[@]}" -d "$1" -1 -f "$f" >/dev/null
  done
  # 50 bettors with plenty of money and one open selection.
  "${PSQL[@]}" -d "$1" >/dev/null <<'SQL'
CREATE TABLE bench_users (n INT PRIMARY KEY, id UUID NOT NULL);
WITH s AS (INSERT INTO sports (name, display_name, slug) VALUES ('b', 'B', 'b') RETURNING id),
     h AS (INSERT INTO teams (sport_id, name, display_name, slug)
           SELECT id, 'H', 'H', 'h' FROM s RETURNING id, sport_id),
     a AS (INSERT INTO teams (sport_id, name, display_name, slug)
           SELECT id, 'A', 'A', 'a' FROM s RETURNING id),
     e AS (INSERT INTO events (sport_id, home_team_id, away_team_id, start_time)
           SELECT h.sport_id, h.id, a.id, now() + interval '1 day' FROM h, a RETURNING id),
     m AS (INSERT INTO markets (event_id, type, name) SELECT id, 'moneyline', 'W' FROM e
           RETURNING id)
INSERT INTO selections (market_id, name, odds) SELECT id, 'H', 2.5 FROM m;
INSERT INTO users (username, email, password_hash)
SELECT 'bench' || g, 'bench' || g || '@example.com', 'x' FROM generate_series(1, 50) g;
INSERT INTO bench_users SELECT substr(username, 6)::int, id FROM users;
INSERT INTO user_balances (user_id, balance) SELECT id, 99999999 FROM users;
SQL
}

cat > "$WORK/batch.sql" <<'SQL'
\set u random(1, 50)
BEGIN;
SELECT set_config('bench.ids', array_agg(gen_random_uuid())::text, true),
       set_config('bench.uid', (SELECT id FROM bench_users WHERE n = :u)::text, true),
       set_config('bench.sel', (SELECT id FROM selections LIMIT 1)::text, true)
FROM generate_series(1, 100);
INSERT INTO bets (id, user_id, type, status, stake, total_odds, potential_win,
                  currency_code, placed_at, idempotency_key, metadata)
SELECT id, current_setting('bench.uid')::uuid, 'single', 'accepted', 1, 2.5, 2.5, 'USD', now(),
       id::text, '{}'
FROM unnest(current_setting('bench.ids')::uuid[]) AS id;
INSERT INTO bet_selections (bet_id, selection_id, odds)
SELECT id, current_setting('bench.sel')::uuid, 2.5
FROM unnest(current_setting('bench.ids')::uuid[]) AS id;
INSERT INTO transactions (user_id, type, amount, currency_code, status, reference,
                          related_bet_id, description, processed_at)
SELECT current_setting('bench.uid')::uuid, 'bet_debit', -1, 'USD', 'completed',
       'bet:' || id::text, id, 'stake', now()
FROM unnest(current_setting('bench.ids')::uuid[]) AS id;
UPDATE user_balances b SET balance = b.balance - 100
FROM (SELECT set_config('winzo.ledger_write', 'on', true)) AS ledger
WHERE b.user_id = current_setting('bench.uid')::uuid;
COMMIT;
SQL

make_db winzo_bench_before "${BENCH_BEFORE:-44}"
make_db winzo_bench_after 999
if [ -n "${BENCH_NO_CHECK:-}" ]; then
  # Isolates the write path itself (keys, partition routing, indexes) from the deferred
  # placement check, in both databases alike.
  for db in winzo_bench_before winzo_bench_after; do
    "${PSQL[@]}" -d "$db" -c "ALTER TABLE bets DISABLE TRIGGER trigger_check_bet_placement"
  done
fi

run() { # db -> bets/s
  "$PGBENCH" -n -f "$WORK/batch.sql" -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_ROUND" "$1" \
    2>/dev/null | awk '/^tps = / { printf "%.0f\n", $3 * 100 }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

: >"$WORK/before"; : >"$WORK/after"
for r in $(seq 1 "$ROUNDS"); do
  b="$(run winzo_bench_before)"; a="$(run winzo_bench_after)"
  echo "round $r: before (V${BENCH_BEFORE:-44}) $b bets/s, after (head) $a bets/s"
  echo "$b" >>"$WORK/before"; echo "$a" >>"$WORK/after"
done
echo "median: before $(median <"$WORK/before") bets/s, after $(median <"$WORK/after") bets/s"
if [ -z "${KEEP_DBS:-}" ]; then
  "${PSQL[@]}" -d postgres -c "DROP DATABASE winzo_bench_before WITH (FORCE)" \
    -c "DROP DATABASE winzo_bench_after WITH (FORCE)"
fi
