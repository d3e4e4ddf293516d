#!/usr/bin/env bash
# `make chaos`: the database failover drill on a private cluster.
#
# 1. builds the engine and the drill (tests/chaos_db_failover.rs);
# 2. starts a fresh cluster of scripts/cluster.sh in .data/chaos/ on its own ports
#    (Postgres 25541/25542, Patroni 25551/25552, etcd 25561, Redis 25571, nodes 28181-28183),
#    so a `make cluster` running beside it is left alone;
# 3. runs the drill: the primary is killed under a bet load through the three nodes, the
#    checks of docs/operations.md ("The failover drill") run, the failover time is printed;
# 4. stops the cluster (by recorded pids) whatever happened; its data and logs stay in
#    .data/chaos/ for a look (removed at the next run).
# Exit status: the drill's (cargo test's). The output is also kept in .data/chaos-drill.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export WINZO_CLUSTER_DIR="$PWD/.data/chaos"
# The drill is the database's failover: every node serves every event, as when it was
# measured (the engine nodes' leases have their own SIGKILL test, tests/cluster_nodes.rs).
export WINZO_CLUSTER_LEASES=false
export WINZO_CLUSTER_PORT_BASE="${WINZO_CHAOS_PORT_BASE:-25540}"
export WINZO_CLUSTER_HTTP_BASE="${WINZO_CHAOS_HTTP_BASE:-28180}"

cargo build --bins
cargo test -p winzo --test chaos_db_failover --no-run

scripts/cluster.sh destroy
trap 'scripts/cluster.sh down || true' EXIT
scripts/cluster.sh up
eval "$(scripts/cluster.sh env)"

set +e
env -u DATABASE_URL -u REDIS_URL \
  WINZO_CHAOS_DATABASE_URL="$DATABASE_URL" WINZO_CHAOS_REDIS_URL="$REDIS_URL" \
  WINZO_CLUSTER_NODE_URLS="$WINZO_CLUSTER_NODE_URLS" \
  cargo test -p winzo --test chaos_db_failover -- --ignored --nocapture 2>&1 | tee .data/chaos-drill.log
status="${PIPESTATUS[0]}"
set -e
if [ "$status" -ne 0 ]; then
  echo "[chaos] the drill failed; logs: $WINZO_CLUSTER_DIR/{node-*.log,pg*/patroni.log,receivewal.log}" >&2
fi
exit "$status"
