#!/usr/bin/env bash
# Local Postgres 15 and Redis for the Winzo engine, one private set per profile.
#
#   scripts/services.sh up      <dev|test>   install what is missing, create the cluster,
#                                            start both servers, wait, create the database
#   scripts/services.sh down    <dev|test>   stop what this script started for the profile
#   scripts/services.sh status  <dev|test>   print the state (exit 0 only if both answer)
#   scripts/services.sh env     <dev|test>   print `export DATABASE_URL=... REDIS_URL=...`
#   scripts/services.sh psql    <dev|test> [psql args...]   open psql on the profile's database
#   scripts/services.sh prune-wal <dev|test> [keep]         drop old archived WAL segments
#   scripts/services.sh destroy <dev|test>   down, then delete the profile's data for good
#
# Profiles (fixed; the Makefile, the config files and the tests rely on them):
#   dev   .data/dev/    Postgres 127.0.0.1:25432 (database winzo)           Redis 127.0.0.1:26379
#   test  .data/test/   Postgres 127.0.0.1:25433 (database winzo_template)  Redis 127.0.0.1:26380
#   (ports below the kernel's ephemeral range, so no client socket can hold them; README)
# Superuser `winzo`, no password (trust, loopback only).
#
# Layout of .data/<profile>/:
#   pgdata/        the Postgres cluster (owned by the user Postgres runs as; the unix
#                  socket lives here too)
#   wal-archive/   WAL segments copied by archive_command
#   postgres.log   server log
#   redis/         Redis working dir with redis.pid
#   redis.log      Redis log
# Postgres refuses to run as root, so when this script runs as root the cluster belongs to
# the OS user `postgres` (WINZO_PG_OS_USER). If that user cannot reach .data/<profile>/
# (a 700 home directory above the clone, say) or the path holds characters that cannot be
# written safely into postgresql.conf, pgdata/, wal-archive/ and postgres.log live in
# /var/tmp/winzo-<hash of the repo path>-<profile>/ instead and .data/<profile>/ holds
# symlinks to them. The symlinks are the record: later runs follow them.
#
# Safe to run repeatedly and concurrently (one lock per profile): running servers are
# reused, never started twice; `down` only stops servers whose pid file is in this
# profile's folder. Nothing here uses pkill/killall.
#
# Environment knobs: WINZO_PG_BIN (default /usr/lib/postgresql/15/bin),
# WINZO_SERVICES_WAIT (seconds to wait for a server, default 60),
# WINZO_PG_EXTERNAL_DIR (default /var/tmp), WINZO_WAL_ARCHIVE_KEEP (segments kept by
# `up`; default 256 for dev, 32 for test).
set -euo pipefail

PG_MAJOR=15
PGBIN="${WINZO_PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}"
WAIT_SECS="${WINZO_SERVICES_WAIT:-60}"
PG_OS_USER="${WINZO_PG_OS_USER:-postgres}"
EXTERNAL_PARENT="${WINZO_PG_EXTERNAL_DIR:-/var/tmp}"
CLIENT_PATH="$PGBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

log() { printf '[services %s] %s\n' "${PROFILE:-}" "$*" >&2; }
die() {
  printf '[services %s] ERROR: %s\n' "${PROFILE:-}" "$*" >&2
  exit 1
}

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# True if <pid> is alive and its command line contains <pattern>. A zombie (which a
# container's pid 1 may never reap) has an empty command line, so it counts as gone.
proc_matches() { # <pid> <pattern>
  local cmdline
  [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$2"* ]]
}

# ---------------------------------------------------------------------------------------
# Profile

set_profile() {
  PROFILE="$1"
  case "$PROFILE" in
    dev)
      PG_PORT=25432
      REDIS_PORT=26379
      DB_NAME=winzo
      WAL_KEEP="${WINZO_WAL_ARCHIVE_KEEP:-256}"
      ;;
    test)
      PG_PORT=25433
      REDIS_PORT=26380
      DB_NAME=winzo_template
      WAL_KEEP="${WINZO_WAL_ARCHIVE_KEEP:-32}"
      ;;
    *) die "unknown profile '$PROFILE' (expected dev or test)" ;;
  esac
  DATA="$ROOT/.data/$PROFILE"
  REDIS_DIR="$DATA/redis"
  REDIS_PIDFILE="$REDIS_DIR/redis.pid"
  REDIS_LOG="$DATA/redis.log"
  PG_EXTERNAL_BASE="$EXTERNAL_PARENT/winzo-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)-$PROFILE"
}

# One lock per profile, so that two `up`s (or an `up` and a `down`) never interleave.
# fd 9 is closed for every server started below, or a daemon would hold the lock forever.
take_lock() {
  mkdir -p "$DATA"
  exec 9>"$DATA/.lock"
  if ! flock -w 900 9; then
    die "another scripts/services.sh holds $DATA/.lock for too long"
  fi
}

# ---------------------------------------------------------------------------------------
# Packages

# scripts/apt-install.sh (shared with scripts/cluster.sh); fd 9 (the profile lock) closed.
apt_install() {
  "$ROOT/scripts/apt-install.sh" "$@" 9>&- || die "installing $* failed"
}

ensure_packages() {
  local want=()
  [ -x "$PGBIN/initdb" ] || want+=("postgresql-$PG_MAJOR")
  command -v redis-server >/dev/null 2>&1 || want+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || want+=(redis-tools)
  if [ "${#want[@]}" -gt 0 ]; then
    apt_install "${want[@]}"
  fi
  [ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb still missing after install (set WINZO_PG_BIN?)"
  for tool in pg_ctl postgres psql pg_isready createdb; do
    [ -x "$PGBIN/$tool" ] || die "$PGBIN/$tool missing: is postgresql-$PG_MAJOR complete?"
  done
  # Debian ships pg_stat_statements inside postgresql-15; other layouts need the contrib package.
  local libdir
  libdir="$("$PGBIN/pg_config" --pkglibdir 2>/dev/null || echo "/usr/lib/postgresql/$PG_MAJOR/lib")"
  if [ ! -f "$libdir/pg_stat_statements.so" ]; then
    apt_install postgresql-contrib
    [ -f "$libdir/pg_stat_statements.so" ] || die "pg_stat_statements.so not found in $libdir"
  fi
  # pg_partman keeps the monthly partitions of audit_log, bets and transactions (migration
  # V45 creates the extension; docs/operations.md "Partitions").
  local sharedir
  sharedir="$("$PGBIN/pg_config" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$PG_MAJOR")"
  if [ ! -f "$sharedir/extension/pg_partman.control" ]; then
    apt_install "postgresql-$PG_MAJOR-partman"
    [ -f "$sharedir/extension/pg_partman.control" ] \
      || die "pg_partman.control not found in $sharedir/extension"
  fi
  command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after install"
  command -v redis-cli >/dev/null 2>&1 || die "redis-cli still missing after install"
}

# ---------------------------------------------------------------------------------------
# Running things as the Postgres OS user

pg_user_setup() {
  if [ "$(id -u)" -eq 0 ]; then
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
      log "creating system user $PG_OS_USER to own the cluster"
      useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$PG_OS_USER"
    fi
    PG_OWNER="$PG_OS_USER"
  else
    PG_OWNER="$(id -un)"
  fi
}

# Runs a command as the cluster owner, from /, with a clean environment (no PG* variables,
# no locale surprises). Never inherits fd 9 (the profile lock).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    if command -v runuser >/dev/null 2>&1; then
      (cd / && exec runuser -u "$PG_OWNER" -- env -i PATH="$CLIENT_PATH" LC_ALL=C "$@") 9>&-
    else
      local cmd
      cmd="$(printf '%q ' env -i PATH="$CLIENT_PATH" LC_ALL=C "$@")"
      (cd / && exec su -s /bin/sh "$PG_OWNER" -c "$cmd") 9>&-
    fi
  else
    (cd / && exec env -i PATH="$CLIENT_PATH" HOME="${HOME:-/}" LC_ALL=C "$@") 9>&-
  fi
}

# Clients (psql, pg_isready) run as the caller, over TCP, with a clean environment.
pg_client() {
  env -i PATH="$CLIENT_PATH" LC_ALL=C PGCONNECT_TIMEOUT=5 "$@" 9>&-
}

psql_admin() {
  pg_client "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U winzo "$@"
}

# ---------------------------------------------------------------------------------------
# Where the cluster lives

# Only these characters go into postgresql.conf paths and archive_command unquoted.
path_is_plain() { [[ "$1" =~ ^[A-Za-z0-9._/+-]+$ ]]; }

# Sets PGDATA, WAL_ARCHIVE, PG_LOG, PG_BASE from what exists. Returns 1 if nothing exists.
pg_locate_existing() {
  if [ -L "$DATA/pgdata" ]; then
    PGDATA="$(readlink "$DATA/pgdata")"
    PG_BASE="$(dirname "$PGDATA")"
    PG_EXTERNAL=1
  elif [ -d "$DATA/pgdata" ]; then
    PG_BASE="$DATA"
    PGDATA="$DATA/pgdata"
    PG_EXTERNAL=0
  elif [ -f "$PG_EXTERNAL_BASE/pgdata/PG_VERSION" ]; then
    # .data/ was deleted by hand but the external cluster is still there: find it again.
    PG_BASE="$PG_EXTERNAL_BASE"
    PGDATA="$PG_BASE/pgdata"
    PG_EXTERNAL=1
  else
    return 1
  fi
  WAL_ARCHIVE="$PG_BASE/wal-archive"
  PG_LOG="$PG_BASE/postgres.log"
  return 0
}

# Decides (first `up`) or re-reads the location and makes the directories.
pg_prepare_dirs() {
  if ! pg_locate_existing; then
    PG_EXTERNAL=0
    if ! path_is_plain "$DATA"; then
      log "repo path has characters unsafe for postgresql.conf: cluster goes to $PG_EXTERNAL_BASE"
      PG_EXTERNAL=1
    elif ! as_pg test -x "$DATA"; then
      log "user $PG_OWNER cannot reach $DATA: cluster goes to $PG_EXTERNAL_BASE"
      PG_EXTERNAL=1
    fi
    if [ "$PG_EXTERNAL" -eq 1 ]; then
      PG_BASE="$PG_EXTERNAL_BASE"
    else
      PG_BASE="$DATA"
    fi
    PGDATA="$PG_BASE/pgdata"
    WAL_ARCHIVE="$PG_BASE/wal-archive"
    PG_LOG="$PG_BASE/postgres.log"
  fi

  if [ "$PG_EXTERNAL" -eq 1 ]; then
    path_is_plain "$PG_BASE" || die "external cluster path '$PG_BASE' has unsafe characters"
    if [ ! -d "$PG_BASE" ]; then
      mkdir -p "$(dirname "$PG_BASE")"
      mkdir -m 0755 "$PG_BASE"
      if [ "$(id -u)" -eq 0 ]; then chown "$PG_OWNER:" "$PG_BASE"; fi
    fi
    local owner
    owner="$(stat -c %U "$PG_BASE")"
    [ "$owner" = "$PG_OWNER" ] || [ "$owner" = "$(id -un)" ] \
      || die "$PG_BASE exists but belongs to $owner, not $PG_OWNER: remove it or set WINZO_PG_EXTERNAL_DIR"
    as_pg test -x "$PG_BASE" || die "user $PG_OWNER cannot reach $PG_BASE either"
    # Record the location in the project folder.
    for name in pgdata wal-archive postgres.log; do
      [ -L "$DATA/$name" ] || [ ! -e "$DATA/$name" ] || die "$DATA/$name exists and is not a symlink"
      ln -sfn "$PG_BASE/$name" "$DATA/$name"
    done
  fi

  # The cluster directory itself is made by initdb (see pg_init); archive and log here.
  mkdir -p "$WAL_ARCHIVE"
  touch "$PG_LOG"
  if [ "$(id -u)" -eq 0 ]; then
    chown "$PG_OWNER:" "$WAL_ARCHIVE" "$PG_LOG"
  fi
  chmod 0700 "$WAL_ARCHIVE"
}

pg_initialised() { [ -f "$PGDATA/PG_VERSION" ]; }

pg_locale() {
  local all
  all="$(locale -a 2>/dev/null || true)"
  if printf '%s\n' "$all" | grep -qiE '^c\.utf-?8$'; then echo C.UTF-8; else echo C; fi
}

pg_init() {
  if pg_initialised; then
    return 0
  fi
  if [ -e "$PGDATA" ] && [ -n "$(ls -A "$PGDATA" 2>/dev/null)" ]; then
    die "$PGDATA exists but holds no cluster (interrupted init?): run 'scripts/services.sh destroy $PROFILE'"
  fi
  if [ -e "$PGDATA" ]; then rmdir "$PGDATA"; fi
  # initdb into a side directory, then rename: a half-made cluster never looks finished.
  local tmp="$PGDATA.init"
  rm -rf "$tmp"
  if [ "$(id -u)" -eq 0 ]; then
    install -d -m 0700 "$tmp"
    chown "$PG_OWNER:" "$tmp"
  else
    install -d -m 0700 "$tmp"
  fi
  local loc
  loc="$(pg_locale)"
  log "initdb ($PGDATA, locale $loc)"
  if ! as_pg "$PGBIN/initdb" -D "$tmp" -U winzo --auth=trust --encoding=UTF8 \
    --locale="$loc" >"$DATA/initdb.log" 2>&1; then
    cat "$DATA/initdb.log" >&2
    rm -rf "$tmp"
    die "initdb failed (output above, also in $DATA/initdb.log)"
  fi
  mv "$tmp" "$PGDATA"
}

# The settings this project needs, as a marked block at the end of postgresql.conf. The
# block is rewritten on every `up` (paths follow the repo if it moves); any change while
# the server runs triggers a restart.
pg_config_block() {
  local sockdir="$PGDATA"
  # A unix socket path longer than 107 bytes cannot be bound: fall back to TCP only.
  if [ "$(printf '%s' "$sockdir/.s.PGSQL.$PG_PORT" | wc -c)" -gt 100 ]; then
    sockdir=""
  fi
  local a="$WAL_ARCHIVE"
  cat <<EOF
# BEGIN winzo (written by scripts/services.sh; edits inside this block are overwritten)
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sockdir'
max_connections = 200
# Bet batches share-lock each leg's market and event (advisory locks, migration V40).
max_locks_per_transaction = 256
# Full-page images compressed: bet batches touch many index pages after each checkpoint.
wal_compression = lz4
shared_buffers = 256MB
shared_preload_libraries = 'pg_stat_statements'
wal_level = replica
archive_mode = on
# Never overwrites an archived segment; an identical copy counts as done; the .part+mv
# means a crash mid-copy never leaves a truncated segment under its final name.
archive_command = 'if test -f $a/%f; then cmp -s %p $a/%f; else cp %p $a/%f.part && mv $a/%f.part $a/%f; fi'
synchronous_commit = on
fsync = on
EOF
  if [ "$PROFILE" = test ]; then
    echo "log_min_messages = warning"
    # Tests clone a database per test, each WAL-logged in full: archiving them would only
    # fill the disk. The PITR test starts its own archiving cluster.
    echo "archive_mode = off"
  fi
  echo "# END winzo"
}

# Prints "changed" when the block was rewritten.
pg_write_config() {
  local conf="$PGDATA/postgresql.conf" new old
  new="$(pg_config_block)"
  old="$(sed -n '/^# BEGIN winzo/,/^# END winzo/p' "$conf")"
  if [ "$new" = "$old" ]; then
    return 0
  fi
  local tmp="$conf.winzo-tmp"
  {
    sed '/^# BEGIN winzo/,/^# END winzo/d' "$conf"
    printf '%s\n' "$new"
  } >"$tmp"
  if [ "$(id -u)" -eq 0 ]; then chown "$PG_OWNER:" "$tmp"; fi
  chmod 0600 "$tmp"
  mv "$tmp" "$conf"
  echo changed
}

# Pid of our postmaster if it is alive and really a postgres process, else nothing.
pg_pid() {
  local pidfile="$PGDATA/postmaster.pid" pid
  [ -f "$pidfile" ] || return 1
  pid="$(head -n 1 "$pidfile" 2>/dev/null | tr -dc '0-9')"
  proc_matches "$pid" postgres || return 1
  echo "$pid"
}

pg_ready() {
  pg_client "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U winzo -d postgres -t 3
}

wait_for() { # <command...>: retries until it succeeds or WAIT_SECS pass
  local deadline=$((SECONDS + WAIT_SECS))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep 0.3
  done
}

pg_up() {
  pg_prepare_dirs
  pg_init
  local changed
  changed="$(pg_write_config)"

  local pid
  if pid="$(pg_pid)"; then
    if [ "$changed" = changed ]; then
      log "postgresql.conf changed: restarting Postgres (pid $pid)"
      as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t "$WAIT_SECS" -s -m fast restart \
        || { tail -n 30 "$PG_LOG" >&2; die "Postgres restart failed (log: $PG_LOG)"; }
    else
      log "Postgres already running (pid $pid, port $PG_PORT)"
    fi
  else
    if pg_ready; then
      die "something else answers on 127.0.0.1:$PG_PORT but it is not this profile's cluster ($PGDATA); stop it first (see: ss -ltnp | grep $PG_PORT)"
    fi
    # A postmaster.pid whose pid now belongs to another process (containers reuse pids,
    # or a zombie postmaster nobody reaped) makes Postgres refuse to start. A pid that is
    # simply gone is left to Postgres, which also checks its shared memory is unused.
    local stale=""
    if [ -f "$PGDATA/postmaster.pid" ]; then
      stale="$(head -n 1 "$PGDATA/postmaster.pid" | tr -dc '0-9' || true)"
    fi
    if [ -n "$stale" ] && [ -e "/proc/$stale" ]; then
      log "removing stale $PGDATA/postmaster.pid (pid $stale is not a postmaster)"
      rm -f "$PGDATA/postmaster.pid" "$PGDATA/.s.PGSQL.$PG_PORT.lock"
    fi
    log "starting Postgres on 127.0.0.1:$PG_PORT (log: $DATA/postgres.log)"
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t "$WAIT_SECS" -s start; then
      tail -n 30 "$PG_LOG" >&2
      die "Postgres did not start (last log lines above; full log: $PG_LOG)"
    fi
  fi
  if ! wait_for pg_ready; then
    tail -n 30 "$PG_LOG" >&2
    die "Postgres does not answer on 127.0.0.1:$PG_PORT after ${WAIT_SECS}s (log: $PG_LOG)"
  fi
  # Another cluster answering on our port would be a silent disaster: check it is ours.
  local dd
  dd="$(psql_admin -d postgres -tAc 'SHOW data_directory')" \
    || die "cannot connect as winzo to 127.0.0.1:$PG_PORT"
  if [ "$(cd "$dd" 2>/dev/null && pwd -P || echo "$dd")" != "$(cd "$PGDATA" && pwd -P)" ]; then
    die "the server on port $PG_PORT serves $dd, not $PGDATA"
  fi
}

pg_create_db() {
  local exists
  exists="$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")"
  if [ "$exists" != 1 ]; then
    log "creating database $DB_NAME"
    psql_admin -d postgres -c "CREATE DATABASE \"$DB_NAME\" OWNER winzo"
  fi
}

pg_down() {
  pg_locate_existing || return 0
  pg_initialised || return 0
  local pid
  if pid="$(pg_pid)"; then
    log "stopping Postgres (pid $pid)"
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -t "$WAIT_SECS" -s -m fast stop; then
      log "fast stop timed out; using immediate"
      as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -t "$WAIT_SECS" -s -m immediate stop \
        || die "Postgres (pid $pid) would not stop"
    fi
  else
    log "Postgres not running"
  fi
}

# Keeps the newest <keep> archived segments (WAL names sort in time order). The archive
# is for demonstrating PITR/backups locally; nothing reads old segments.
prune_wal() {
  local keep="$1"
  pg_locate_existing || return 0
  [ -d "$WAL_ARCHIVE" ] || return 0
  local files n i
  mapfile -t files < <(find "$WAL_ARCHIVE" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort)
  n="${#files[@]}"
  if [ "$n" -gt "$keep" ]; then
    log "pruning $((n - keep)) archived WAL segments (keeping $keep)"
    for ((i = 0; i < n - keep; i++)); do
      rm -f "$WAL_ARCHIVE/${files[$i]}"
    done
  fi
  # Leftover partial copies from an interrupted archive_command older than a day.
  find "$WAL_ARCHIVE" -maxdepth 1 -type f -name '*.part' -mmin +1440 -delete 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# Redis

redis_cli() { env -i PATH="$CLIENT_PATH" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@" 9>&-; }

redis_ping() { [ "$(redis_cli ping 2>/dev/null)" = PONG ]; }
redis_silent() { ! redis_ping; }
redis_gone() { ! proc_matches "$1" redis-server; }

# Pid of our redis-server if alive and really redis, else nothing.
redis_pid() {
  [ -f "$REDIS_PIDFILE" ] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$REDIS_PIDFILE")"
  proc_matches "$pid" redis-server || return 1
  echo "$pid"
}

# True if the Redis answering on our port was started with our pid file path.
redis_is_ours() {
  local pidfile
  pidfile="$(redis_cli config get pidfile 2>/dev/null | sed -n 2p || true)"
  [ "$pidfile" = "$REDIS_PIDFILE" ]
}

# Rewrites a lost pid file from the server's own answer.
redis_restore_pidfile() {
  local pid
  pid="$(redis_cli info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p' || true)"
  if [ -n "$pid" ]; then echo "$pid" >"$REDIS_PIDFILE"; fi
}

redis_up() {
  mkdir -p "$REDIS_DIR"
  local pid
  if pid="$(redis_pid)"; then
    log "Redis already running (pid $pid, port $REDIS_PORT)"
  elif redis_ping; then
    redis_is_ours \
      || die "something else answers on 127.0.0.1:$REDIS_PORT (not this profile's Redis); stop it first (see: ss -ltnp | grep $REDIS_PORT)"
    log "Redis answers on $REDIS_PORT with this profile's pid file path but the file is gone; reusing it"
    redis_restore_pidfile
  else
    rm -f "$REDIS_PIDFILE"
    log "starting Redis on 127.0.0.1:$REDIS_PORT (log: $REDIS_LOG)"
    # Sessions and pub/sub only: no persistence needed (Redis holds no money state).
    (cd "$REDIS_DIR" && exec redis-server \
      --daemonize yes \
      --bind 127.0.0.1 \
      --port "$REDIS_PORT" \
      --protected-mode yes \
      --dir "$REDIS_DIR" \
      --pidfile "$REDIS_PIDFILE" \
      --logfile "$REDIS_LOG" \
      --save "" \
      --appendonly no) 9>&- \
      || { tail -n 20 "$REDIS_LOG" >&2 2>/dev/null; die "redis-server failed to start"; }
  fi
  if ! wait_for redis_ping; then
    tail -n 20 "$REDIS_LOG" >&2 2>/dev/null || true
    die "Redis does not answer on 127.0.0.1:$REDIS_PORT after ${WAIT_SECS}s (log: $REDIS_LOG)"
  fi
}

redis_down() {
  local pid
  if ! pid="$(redis_pid)"; then
    if redis_ping && redis_is_ours; then
      log "stopping Redis (pid file missing, but it was started for this profile)"
      redis_cli shutdown nosave >/dev/null 2>&1 || true
      wait_for redis_silent || die "Redis on $REDIS_PORT would not stop"
    else
      log "Redis not running"
    fi
    rm -f "$REDIS_PIDFILE"
    return 0
  fi
  log "stopping Redis (pid $pid)"
  redis_cli shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for redis_gone "$pid"; then
    log "Redis (pid $pid) still alive; sending SIGTERM"
    kill -TERM "$pid" 2>/dev/null || true
    wait_for redis_gone "$pid" || die "Redis (pid $pid) would not stop"
  fi
  rm -f "$REDIS_PIDFILE"
}

# ---------------------------------------------------------------------------------------
# Commands

cmd_up() {
  take_lock
  ensure_packages
  pg_user_setup
  pg_up
  pg_create_db
  prune_wal "$WAL_KEEP"
  redis_up
  log "ready: DATABASE_URL=postgres://winzo@127.0.0.1:$PG_PORT/$DB_NAME REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
}

cmd_down() {
  if [ ! -d "$DATA" ] && [ ! -d "$PG_EXTERNAL_BASE" ]; then
    log "nothing to stop (no $DATA)"
    return 0
  fi
  take_lock
  if [ -x "$PGBIN/pg_ctl" ]; then
    pg_user_setup
    pg_down
  fi
  if command -v redis-cli >/dev/null 2>&1; then
    redis_down
  fi
}

cmd_status() {
  local ok=0 pid
  echo "profile $PROFILE ($DATA)"
  if [ -x "$PGBIN/pg_ctl" ] && pg_locate_existing && pg_initialised; then
    local where="$PGDATA"
    [ "$PG_EXTERNAL" -eq 1 ] && where="$PGDATA (symlinked from $DATA/pgdata)"
    if pid="$(pg_pid)" && pg_ready; then
      echo "  postgres  running  pid $pid  127.0.0.1:$PG_PORT  data $where"
      if [ "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" 2>/dev/null || true)" = 1 ]; then
        echo "            database $DB_NAME exists"
      else
        echo "            database $DB_NAME missing"
        ok=1
      fi
    elif pid="$(pg_pid)"; then
      echo "  postgres  starting/not answering  pid $pid  127.0.0.1:$PG_PORT  data $where"
      ok=1
    else
      echo "  postgres  stopped  data $where"
      ok=1
    fi
    if [ -d "$WAL_ARCHIVE" ]; then
      echo "            wal-archive $(du -sh "$WAL_ARCHIVE" 2>/dev/null | cut -f1)"
    fi
  else
    echo "  postgres  not initialised"
    ok=1
  fi
  if command -v redis-cli >/dev/null 2>&1 && pid="$(redis_pid)" && redis_ping; then
    echo "  redis     running  pid $pid  127.0.0.1:$REDIS_PORT"
  elif command -v redis-cli >/dev/null 2>&1 && redis_ping; then
    echo "  redis     answers on 127.0.0.1:$REDIS_PORT but pid file missing"
  else
    echo "  redis     stopped"
    ok=1
  fi
  return "$ok"
}

cmd_destroy() {
  cmd_down
  exec 9>&-
  if pg_locate_existing && [ "$PG_EXTERNAL" -eq 1 ]; then
    case "$PG_BASE" in
      */winzo-*-"$PROFILE") log "removing $PG_BASE"; rm -rf "$PG_BASE" ;;
      *) die "refusing to remove unexpected path $PG_BASE" ;;
    esac
  fi
  log "removing $DATA"
  rm -rf "$DATA"
}

cmd_env() {
  echo "export DATABASE_URL=postgres://winzo@127.0.0.1:$PG_PORT/$DB_NAME"
  echo "export REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
}

[ $# -ge 2 ] || usage
command="$1"
set_profile "$2"
shift 2
case "$command" in
  up) cmd_up ;;
  down | stop) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  psql) exec env -u PGOPTIONS "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U winzo -d "$DB_NAME" "$@" ;;
  prune-wal)
    take_lock
    prune_wal "${1:-$WAL_KEEP}"
    ;;
  destroy) cmd_destroy ;;
  *) usage ;;
esac
