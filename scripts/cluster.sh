#!/usr/bin/env bash
# A local highly available Winzo: etcd, two Patroni-managed Postgres 15 servers (a primary
# and a synchronous standby), a pg_receivewal --synchronous archive, Redis and three
# `winzo serve` nodes, all on loopback, data under .data/cluster/ (git-ignored).
#
#   scripts/cluster.sh up              install what is missing (apt-get), start everything, wait
#   scripts/cluster.sh down            stop everything this script started (by recorded pid)
#   scripts/cluster.sh status          members, roles, lag, archive, nodes
#   scripts/cluster.sh env             print DATABASE_URL (multi-host), REDIS_URL and node URLs
#   scripts/cluster.sh leader          print the member name of the current primary
#   scripts/cluster.sh kill-primary    SIGKILL the primary's Patroni and postmaster (a host dying);
#                                      prints the member killed
#   scripts/cluster.sh start-member <pg1|pg2>   start a member's Patroni again (it rejoins as a
#                                      standby, rewinding with pg_rewind when it has to)
#   scripts/cluster.sh reinit <pg1|pg2>         rebuild a standby from the primary (patronictl)
#   scripts/cluster.sh destroy         down, then delete the cluster's data
#
# make cluster / make cluster-stop call `up` / `down`; make chaos runs the failover drill on
# a second, private cluster (WINZO_CLUSTER_DIR=.data/chaos, other ports).
#
# Ports (WINZO_CLUSTER_PORT_BASE=B, default 25440; WINZO_CLUSTER_HTTP_BASE=H, default 28080):
#   Postgres pg1 B+1, pg2 B+2   Patroni REST pg1 B+11, pg2 B+12   etcd client B+21, peer B+22
#   Redis B+31                  winzo nodes H+1, H+2, H+3 (node ids node-1..node-3)
# Postgres superuser `winzo`, no password needed (trust on loopback only).
#
# Postgres and Patroni refuse to run as root: when this script runs as root they run as the
# OS user `postgres` (WINZO_PG_OS_USER), like scripts/services.sh. Every process started is
# recorded by pid under the cluster folder and stopped by that pid; nothing here uses
# pkill/killall.
#
# Other knobs: WINZO_CLUSTER_DIR (data folder), WINZO_BIN (engine binary, default
# target/debug/winzo, built when missing), WINZO_CLUSTER_NODES (engine nodes, default 3),
# WINZO_CLUSTER_ENV (WINZO_ENV of the nodes, default development), WINZO_CLUSTER_WAIT
# (seconds to wait for each piece, default 90), WINZO_PG_BIN.
set -euo pipefail

PG_MAJOR=15
PGBIN="${WINZO_PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}"
PG_OS_USER="${WINZO_PG_OS_USER:-postgres}"
WAIT_SECS="${WINZO_CLUSTER_WAIT:-90}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
DIR="${WINZO_CLUSTER_DIR:-$ROOT/.data/cluster}"
B="${WINZO_CLUSTER_PORT_BASE:-25440}"
H="${WINZO_CLUSTER_HTTP_BASE:-28080}"
NODES="${WINZO_CLUSTER_NODES:-3}"
NODE_ENV="${WINZO_CLUSTER_ENV:-development}"
# Event ownership by lease between the engine nodes ([cluster] enabled, docs/operations.md
# "Several engine nodes"): on by default; the database failover drill (scripts/chaos.sh)
# measured and asserts the database half alone and turns it off.
LEASES="${WINZO_CLUSTER_LEASES:-true}"
BIN="${WINZO_BIN:-$ROOT/target/debug/winzo}"
CLIENT_PATH="$PGBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DB_NAME=winzo
MEMBERS=(pg1 pg2)
ETCD_PORT=$((B + 21))
ETCD_PEER=$((B + 22))
REDIS_PORT=$((B + 31))
# The Patroni scope (cluster name in etcd) is per folder, so two clusters never mix.
SCOPE="winzo-$(printf '%s' "$DIR" | sha256sum | cut -c1-8)"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() {
  printf '[cluster] ERROR: %s\n' "$*" >&2
  exit 1
}

pg_port() { case "$1" in pg1) echo $((B + 1)) ;; pg2) echo $((B + 2)) ;; *) die "no member $1" ;; esac }
rest_port() { case "$1" in pg1) echo $((B + 11)) ;; pg2) echo $((B + 12)) ;; *) die "no member $1" ;; esac }
node_port() { echo $((H + $1)); }

database_url() {
  echo "postgres://winzo@127.0.0.1:$(pg_port pg1),127.0.0.1:$(pg_port pg2)/$DB_NAME?target_session_attrs=read-write&connect_timeout=3"
}
redis_url() { echo "redis://127.0.0.1:$REDIS_PORT"; }

# True if <pid> is alive and its command line contains <pattern> (a zombie counts as gone).
proc_matches() { # <pid> <pattern>
  local cmdline
  [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$2"* ]]
}

# Pid recorded in <file> if that process is alive and matches <pattern>.
live_pid() { # <file> <pattern>
  local pid
  [ -f "$1" ] || return 1
  pid="$(tr -dc '0-9' <"$1")"
  proc_matches "$pid" "$2" || return 1
  echo "$pid"
}

wait_for() { # <what> <command...>
  local what="$1" deadline=$((SECONDS + WAIT_SECS))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.3
  done
}

# ---------------------------------------------------------------------------------------
# Packages and the Postgres OS user

apt_install() { "$ROOT/scripts/apt-install.sh" "$@" || die "installing $* failed"; }

ensure_packages() {
  local want=()
  [ -x "$PGBIN/initdb" ] || want+=("postgresql-$PG_MAJOR")
  command -v patroni >/dev/null 2>&1 || want+=(patroni)
  command -v etcd >/dev/null 2>&1 || want+=(etcd-server)
  command -v etcdctl >/dev/null 2>&1 || want+=(etcd-client)
  command -v redis-server >/dev/null 2>&1 || want+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || want+=(redis-tools)
  command -v curl >/dev/null 2>&1 || want+=(curl)
  if [ "${#want[@]}" -gt 0 ]; then apt_install "${want[@]}"; fi
  for tool in initdb pg_ctl postgres psql pg_isready pg_receivewal pg_rewind; do
    [ -x "$PGBIN/$tool" ] || die "$PGBIN/$tool missing: is postgresql-$PG_MAJOR complete?"
  done
  command -v patroni >/dev/null 2>&1 || die "patroni still missing after install"
  command -v etcd >/dev/null 2>&1 || die "etcd still missing after install"
}

pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
      log "creating system user $PG_OS_USER to own the Postgres files"
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_OS_USER"
    fi
    echo "$PG_OS_USER"
  else
    id -un
  fi
}

# Runs a command as the Postgres owner, from /, with a clean environment. Never inherits
# fd 9 (the cluster lock): a daemon started through it would hold the lock forever.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && exec runuser -u "$PG_OS_USER" -- env -i PATH="$CLIENT_PATH" LC_ALL=C.UTF-8 HOME=/tmp "$@") 9>&-
  else
    (cd / && exec env -i PATH="$CLIENT_PATH" LC_ALL=C.UTF-8 HOME="${HOME:-/tmp}" "$@") 9>&-
  fi
}

owned_dir() { # <dir>: a folder the Postgres owner owns (0700)
  mkdir -p "$1"
  if [ "$(id -u)" -eq 0 ]; then chown "$PG_OS_USER:" "$1"; fi
  chmod 0700 "$1"
}

psql_at() { # <port> <db> <args...>
  env -i PATH="$CLIENT_PATH" LC_ALL=C PGCONNECT_TIMEOUT=3 \
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U winzo -d "$2" "${@:3}"
}

# ---------------------------------------------------------------------------------------
# etcd

etcd_healthy() { curl -fsS -m 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }

etcd_up() {
  local pid
  if pid="$(live_pid "$DIR/etcd.pid" etcd)"; then
    log "etcd already running (pid $pid, 127.0.0.1:$ETCD_PORT)"
  else
    mkdir -p "$DIR/etcd"
    chmod 0700 "$DIR/etcd"
    log "starting etcd on 127.0.0.1:$ETCD_PORT (log: $DIR/etcd.log)"
    setsid etcd --name winzo-etcd --data-dir "$DIR/etcd" \
      --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
      --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
      --initial-cluster "winzo-etcd=http://127.0.0.1:$ETCD_PEER" \
      --initial-cluster-state new \
      >>"$DIR/etcd.log" 2>&1 </dev/null 9>&- &
    echo $! >"$DIR/etcd.pid"
  fi
  wait_for etcd etcd_healthy || { tail -n 20 "$DIR/etcd.log" >&2; die "etcd does not answer"; }
}

# ---------------------------------------------------------------------------------------
# Patroni members

patroni_config() { # <member>
  local m="$1" md="$DIR/$1"
  cat <<EOF
# Written by scripts/cluster.sh on every start; edit the script, not this file.
scope: $SCOPE
namespace: /winzo/
name: $m
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$(rest_port "$m")
  connect_address: 127.0.0.1:$(rest_port "$m")
etcd3:
  hosts: 127.0.0.1:$ETCD_PORT
bootstrap:
  dcs:
    # A dead primary's leader key expires after ttl seconds; the synchronous standby then
    # takes it and promotes. loop_wait + 2 * retry_timeout must stay within ttl.
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    # Patroni keeps synchronous_standby_names pointed at the healthy standby and only ever
    # promotes the member that was synchronous. Not strict: with the standby gone the
    # primary goes on alone (see docs/operations.md, "Synchronous replication").
    synchronous_mode: true
    synchronous_mode_strict: false
    # The archive's slot exists on every member, so pg_receivewal finds it after failover.
    slots:
      winzo_archive:
        type: physical
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
        synchronous_commit: "on"
        max_connections: 200
        max_locks_per_transaction: 256
        wal_compression: lz4
        shared_buffers: 128MB
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
postgresql:
  listen: 127.0.0.1:$(pg_port "$m")
  connect_address: 127.0.0.1:$(pg_port "$m")
  data_dir: $md/pgdata
  bin_dir: $PGBIN
  pgpass: $md/pgpass
  authentication:
    superuser:
      username: winzo
      password: winzo-local
    replication:
      username: winzo
      password: winzo-local
    rewind:
      username: winzo
      password: winzo-local
  parameters:
    unix_socket_directories: '$md'
    log_min_messages: warning
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
EOF
}

member_running() { live_pid "$DIR/$1/patroni.pid" patroni >/dev/null; }

member_start() { # <member>
  local m="$1" md="$DIR/$1" pid
  if pid="$(live_pid "$md/patroni.pid" patroni)"; then
    log "patroni $m already running (pid $pid)"
    return 0
  fi
  owned_dir "$md"
  patroni_config "$m" >"$md/patroni.yml.tmp"
  mv "$md/patroni.yml.tmp" "$md/patroni.yml"
  touch "$md/patroni.log"
  if [ "$(id -u)" -eq 0 ]; then chown "$PG_OS_USER:" "$md/patroni.yml" "$md/patroni.log"; fi
  # Patroni restarts a postmaster it finds dead; a stale pid file pointing at a live
  # non-postgres process would stop it, so it is removed here.
  local stale
  if [ -f "$md/pgdata/postmaster.pid" ]; then
    stale="$(head -n 1 "$md/pgdata/postmaster.pid" | tr -dc '0-9' || true)"
    if [ -n "$stale" ] && ! proc_matches "$stale" postgres; then rm -f "$md/pgdata/postmaster.pid"; fi
  fi
  log "starting patroni $m (Postgres 127.0.0.1:$(pg_port "$m"), REST 127.0.0.1:$(rest_port "$m"), log: $md/patroni.log)"
  # The inner shell starts Patroni in the background and prints its pid; Patroni's output
  # goes to its log so this command substitution returns at once.
  pid="$(as_pg sh -c 'setsid patroni "$1" >>"$2" 2>&1 </dev/null & echo $!' _ "$md/patroni.yml" "$md/patroni.log")"
  echo "$pid" >"$md/patroni.pid"
}

# The member's Patroni REST answer (JSON) or nothing.
member_state() { curl -fsS -m 2 "http://127.0.0.1:$(rest_port "$1")/patroni" 2>/dev/null || true; }

member_role() { # prints primary / replica / nothing
  local s
  s="$(member_state "$1")"
  [ -n "$s" ] || return 0
  if grep -q '"state": *"running"' <<<"$s"; then
    if grep -q '"role": *"\(master\|primary\)"' <<<"$s"; then echo primary; else echo replica; fi
  fi
}

leader() {
  local m
  for m in "${MEMBERS[@]}"; do
    # /primary answers 200 only on the member holding the leader key and running read-write.
    if curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$(rest_port "$m")/primary" 2>/dev/null; then
      echo "$m"
      return 0
    fi
  done
  return 1
}

# A synchronous standby is streaming to the primary.
sync_standby_streaming() {
  local l
  l="$(leader)" || return 1
  [ "$(psql_at "$(pg_port "$l")" postgres -tAc \
    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming'")" -ge 1 ]
}

members_up() {
  local m
  # All members at once: on the first start they race for the initialize key in etcd and
  # the loser clones the winner; on later starts the one that was primary (or synchronous)
  # takes the leader key again, whichever it is.
  for m in "${MEMBERS[@]}"; do member_start "$m"; done
  wait_for "a primary" leader || { tail -n 30 "$DIR/pg1/patroni.log" "$DIR/pg2/patroni.log" >&2; die "no primary after ${WAIT_SECS}s"; }
  wait_for "the synchronous standby" sync_standby_streaming \
    || { tail -n 30 "$DIR/pg2/patroni.log" >&2; die "no synchronous standby after ${WAIT_SECS}s"; }
  local l
  l="$(leader)"
  if [ "$(psql_at "$(pg_port "$l")" postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
    log "creating database $DB_NAME on $l"
    psql_at "$(pg_port "$l")" postgres -c "CREATE DATABASE $DB_NAME OWNER winzo"
  fi
  log "primary $l, synchronous standby streaming ($(psql_at "$(pg_port "$l")" postgres -tAc 'SHOW synchronous_standby_names'))"
}

stop_pid() { # <name> <pidfile> <pattern> [signal]
  local pid deadline
  if pid="$(live_pid "$2" "$3")"; then
    log "stopping $1 (pid $pid)"
    kill -"${4:-TERM}" "$pid" 2>/dev/null || true
    deadline=$((SECONDS + WAIT_SECS))
    while proc_matches "$pid" "$3"; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        log "$1 (pid $pid) still alive after ${WAIT_SECS}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
  fi
  rm -f "$2"
}

# A postmaster left behind by a killed Patroni: stopped through its own pid file.
postmaster_stop() { # <member>
  local pdata="$DIR/$1/pgdata" pid
  [ -f "$pdata/postmaster.pid" ] || return 0
  pid="$(head -n 1 "$pdata/postmaster.pid" | tr -dc '0-9' || true)"
  if proc_matches "$pid" postgres; then
    log "stopping the postmaster of $1 (pid $pid)"
    as_pg "$PGBIN/pg_ctl" -D "$pdata" -w -t "$WAIT_SECS" -s -m fast stop \
      || kill -KILL "$pid" 2>/dev/null || true
  fi
}

kill_primary() {
  local l md ppid pmpid
  l="$(leader)" || die "no primary to kill"
  md="$DIR/$l"
  ppid="$(live_pid "$md/patroni.pid" patroni)" || die "no recorded Patroni pid for $l"
  pmpid="$(head -n 1 "$md/pgdata/postmaster.pid" | tr -dc '0-9')"
  proc_matches "$pmpid" postgres || die "no postmaster for $l"
  # Both at once, like a host losing power: Patroni cannot demote or restart anything, the
  # postmaster's children exit on its death, and the leader key in etcd simply expires.
  kill -KILL "$ppid" "$pmpid"
  rm -f "$md/patroni.pid"
  log "killed $l: patroni pid $ppid and postmaster pid $pmpid (SIGKILL)"
  echo "$l"
}

# ---------------------------------------------------------------------------------------
# The continuous archive: pg_receivewal --synchronous, following the primary

receivewal_up() {
  local pid
  owned_dir "$DIR/wal-stream"
  if pid="$(live_pid "$DIR/wal-stream/receivewal.pid" pg_receivewal)"; then
    log "pg_receivewal already running (pid $pid)"
    return 0
  fi
  local conn
  conn="host=127.0.0.1,127.0.0.1 port=$(pg_port pg1),$(pg_port pg2) user=winzo target_session_attrs=read-write application_name=winzo_archive connect_timeout=3"
  touch "$DIR/receivewal.log"
  if [ "$(id -u)" -eq 0 ]; then chown "$PG_OS_USER:" "$DIR/receivewal.log"; fi
  log "starting pg_receivewal --synchronous into $DIR/wal-stream (log: $DIR/receivewal.log)"
  # Without --no-loop it reconnects after losing the server: through the multi-host
  # string it lands on whichever member is primary, and follows the new timeline.
  pid="$(as_pg sh -c 'setsid "$1/pg_receivewal" -D "$2" -d "$3" --slot winzo_archive --synchronous -v >>"$4" 2>&1 </dev/null & echo $!' \
    _ "$PGBIN" "$DIR/wal-stream" "$conn" "$DIR/receivewal.log")"
  echo "$pid" >"$DIR/wal-stream/receivewal.pid.tmp"
  mv "$DIR/wal-stream/receivewal.pid.tmp" "$DIR/wal-stream/receivewal.pid"
}

# ---------------------------------------------------------------------------------------
# Redis

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

redis_up() {
  mkdir -p "$DIR/redis"
  local pid
  if pid="$(live_pid "$DIR/redis/redis.pid" redis-server)"; then
    log "Redis already running (pid $pid, 127.0.0.1:$REDIS_PORT)"
  else
    redis_ping && die "something else answers on 127.0.0.1:$REDIS_PORT"
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    (cd "$DIR/redis" && exec redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
      --protected-mode yes --dir "$DIR/redis" --pidfile "$DIR/redis/redis.pid" \
      --logfile "$DIR/redis.log" --save "" --appendonly no) 9>&-
  fi
  wait_for redis redis_ping || die "Redis does not answer on $REDIS_PORT"
}

# ---------------------------------------------------------------------------------------
# Engine nodes

# The shared secret the nodes put on requests they forward to each other: made once per
# cluster folder, readable by its owner only.
forward_secret() {
  local f="$DIR/forward-secret"
  if [ ! -s "$f" ]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f")
  fi
  cat "$f"
}

node_ready() { curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$(node_port "$1")/readyz"; }

nodes_up() {
  if [ ! -x "$BIN" ]; then
    log "building $BIN"
    (cd "$ROOT" && cargo build --bins)
  fi
  local i pid url
  url="$(database_url)"
  # The first node applies the migrations (under their advisory lock) before the others.
  env WINZO_ENV="$NODE_ENV" DATABASE_URL="$url" REDIS_URL="$(redis_url)" "$BIN" migrate \
    >>"$DIR/migrate.log" 2>&1 || { tail -n 20 "$DIR/migrate.log" >&2; die "migrations failed"; }
  for ((i = 1; i <= NODES; i++)); do
    if pid="$(live_pid "$DIR/node-$i.pid" "$BIN")"; then
      log "node-$i already running (pid $pid)"
      continue
    fi
    log "starting node-$i on http://127.0.0.1:$(node_port "$i") (log: $DIR/node-$i.log)"
    (
      cd "$ROOT"
      exec env WINZO_ENV="$NODE_ENV" DATABASE_URL="$url" REDIS_URL="$(redis_url)" \
        WINZO__SERVER__HOST=127.0.0.1 WINZO__SERVER__PORT="$(node_port "$i")" \
        WINZO__CLUSTER__NODE_ID="node-$i" \
        WINZO__CLUSTER__ENABLED="$LEASES" WINZO__CLUSTER__FORWARD_SECRET="$(forward_secret)" \
        WINZO__CLUSTER__ADVERTISE_ADDR="http://127.0.0.1:$(node_port "$i")" \
        WINZO__DATABASE__MIGRATE_ON_START=false \
        setsid "$BIN" serve >>"$DIR/node-$i.log" 2>&1 </dev/null
    ) 9>&- &
    echo $! >"$DIR/node-$i.pid"
  done
  for ((i = 1; i <= NODES; i++)); do
    wait_for "node-$i" node_ready "$i" || { tail -n 20 "$DIR/node-$i.log" >&2; die "node-$i not ready"; }
  done
}

# ---------------------------------------------------------------------------------------
# Commands

cmd_up() {
  ensure_packages
  pg_owner >/dev/null
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock -w 120 9 || die "another scripts/cluster.sh (or a process it started) holds $DIR/.lock"
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_OS_USER" -- test -x "$DIR" \
      || die "user $PG_OS_USER cannot reach $DIR: set WINZO_CLUSTER_DIR to a folder it can reach"
  fi
  etcd_up
  members_up
  receivewal_up
  redis_up
  nodes_up
  exec 9>&-
  log "ready"
  cmd_env
}

cmd_down() {
  [ -d "$DIR" ] || { log "nothing to stop (no $DIR)"; return 0; }
  local i m
  for ((i = 1; i <= 9; i++)); do
    [ -f "$DIR/node-$i.pid" ] && stop_pid "node-$i" "$DIR/node-$i.pid" "$BIN"
  done
  stop_pid pg_receivewal "$DIR/wal-stream/receivewal.pid" pg_receivewal
  # Standby first, then the primary: a primary without its standby stops at once.
  local l
  l="$(leader || true)"
  for m in "${MEMBERS[@]}"; do
    [ "$m" = "$l" ] && continue
    stop_pid "patroni $m" "$DIR/$m/patroni.pid" patroni
    postmaster_stop "$m"
  done
  if [ -n "$l" ]; then
    stop_pid "patroni $l" "$DIR/$l/patroni.pid" patroni
    postmaster_stop "$l"
  fi
  stop_pid etcd "$DIR/etcd.pid" etcd
  if live_pid "$DIR/redis/redis.pid" redis-server >/dev/null; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    stop_pid redis "$DIR/redis/redis.pid" redis-server
  fi
}

cmd_status() {
  local m i role lag
  echo "cluster $SCOPE ($DIR)"
  if etcd_healthy 2>/dev/null; then echo "  etcd      running  127.0.0.1:$ETCD_PORT"; else echo "  etcd      down"; fi
  for m in "${MEMBERS[@]}"; do
    role="$(member_role "$m")"
    echo "  $m       ${role:-down}  postgres 127.0.0.1:$(pg_port "$m")  patroni 127.0.0.1:$(rest_port "$m")"
  done
  if l="$(leader)"; then
    psql_at "$(pg_port "$l")" postgres -tAc \
      "SELECT '  replica   ' || application_name || ' ' || state || ' ' || sync_state || ' replay lag ' || coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) || ' bytes' FROM pg_stat_replication" || true
  fi
  if live_pid "$DIR/wal-stream/receivewal.pid" pg_receivewal >/dev/null; then
    lag="$(find "$DIR/wal-stream" -maxdepth 1 -type f -name '0*' 2>/dev/null | wc -l)"
    echo "  archive   pg_receivewal running, $lag files in $DIR/wal-stream"
  else
    echo "  archive   pg_receivewal down"
  fi
  if redis_ping; then echo "  redis     running  127.0.0.1:$REDIS_PORT"; else echo "  redis     down"; fi
  for ((i = 1; i <= NODES; i++)); do
    if node_ready "$i" 2>/dev/null; then role=ready; elif live_pid "$DIR/node-$i.pid" "$BIN" >/dev/null; then role="running, not ready"; else role=down; fi
    echo "  node-$i    $role  http://127.0.0.1:$(node_port "$i")"
  done
}

cmd_env() {
  echo "export DATABASE_URL='$(database_url)'"
  echo "export REDIS_URL=$(redis_url)"
  local i nodes=()
  for ((i = 1; i <= NODES; i++)); do nodes+=("http://127.0.0.1:$(node_port "$i")"); done
  echo "export WINZO_CLUSTER_NODE_URLS=$(
    IFS=,
    echo "${nodes[*]}"
  )"
}

cmd_destroy() {
  cmd_down
  case "$DIR" in
    */.data/*) log "removing $DIR"; rm -rf "$DIR" ;;
    *) die "refusing to remove $DIR (not under a .data folder): remove it by hand" ;;
  esac
}

[ $# -ge 1 ] || { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
case "$1" in
  up) cmd_up ;;
  down | stop) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  leader) leader || die "no primary" ;;
  kill-primary) kill_primary ;;
  start-member)
    [ $# -eq 2 ] || die "usage: scripts/cluster.sh start-member <pg1|pg2>"
    pg_port "$2" >/dev/null
    member_start "$2"
    ;;
  reinit)
    [ $# -eq 2 ] || die "usage: scripts/cluster.sh reinit <pg1|pg2>"
    as_pg patronictl -c "$DIR/$2/patroni.yml" reinit --force --wait "$SCOPE" "$2"
    ;;
  destroy) cmd_destroy ;;
  *) die "unknown command '$1'" ;;
esac
