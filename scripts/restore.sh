#!/usr/bin/env bash
# shellcheck disable=SC2016  # sh -c '...' _ args: $1 expands in the inner shell on purpose
# Point-in-time recovery into a NEW data folder, started on its own port.
#
#   TARGET_TIME='2026-11-24 22:10:00+00' scripts/restore.sh <profile> [backup] [new_data_dir] [port]
#   make restore TARGET_TIME='...' [PROFILE=dev BACKUP=... RESTORE_DIR=... RESTORE_PORT=...]
#
# backup        a folder name under the profile's backups or a path (default: the newest that
#               started before TARGET_TIME)
# new_data_dir  must not exist or be empty (default .data/<profile>/restore-<timestamp>)
# port          default: the first free port from 55440
# TARGET_TIME   a timestamp with its time zone; empty: replay all archived WAL
#
# Unpacks base.tar.gz and pg_wal.tar.gz, writes recovery.signal and, in
# postgresql.auto.conf (Postgres 12+: there is no recovery.conf), restore_command copying
# from the WAL archive, recovery_target_time, recovery_target_action = 'promote', its own
# port, no unix socket and archive_mode = off (a restored copy never writes into the archive
# it restores from). Starts it, waits until it has promoted (pg_is_in_recovery() false)
# and prints its URL. The original cluster is never touched. Stop the copy with the printed
# pg_ctl command; delete the folder when done.
set -euo pipefail
SCRIPT=restore
# shellcheck source=scripts/pg-ops-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pg-ops-lib.sh"

if [ $# -lt 1 ] || [ $# -gt 4 ]; then
  sed -n '3,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
set_profile "$1"
BACKUP_ARG="${2:-}"
NEW_DIR="${3:-}"
PORT="${4:-}"
TARGET_TIME="${TARGET_TIME:-}"

# Goes into a quoted setting: digits, date and time punctuation and a zone only.
if [ -n "$TARGET_TIME" ] && ! [[ "$TARGET_TIME" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}[T\ ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|\ ?UTC|\ ?[+-][0-9]{2}(:?[0-9]{2})?)$ ]]; then
  die "TARGET_TIME '$TARGET_TIME' is not 'YYYY-MM-DD HH:MM[:SS[.ffffff]]' followed by a zone (+00, Z, UTC)"
fi

locate_archive

# The backup.
# Default: the newest backup that started before TARGET_TIME (the newest of all without one).
if [ -z "$BACKUP_ARG" ]; then
  [ -d "$BACKUP_DIR" ] || die "no backups in $BACKUP_DIR"
  target_s=""
  if [ -n "$TARGET_TIME" ]; then
    target_s="$(date -d "$TARGET_TIME" +%s 2>/dev/null)" \
      || die "cannot read TARGET_TIME '$TARGET_TIME' as a date"
  fi
  while IFS= read -r b; do
    started="$(sed -n 's/^start_time=//p' "$BACKUP_DIR/$b/winzo-backup.info" 2>/dev/null || true)"
    started_s="$(date -d "$started" +%s 2>/dev/null || echo 0)"
    if [ -z "$target_s" ] || [ "$started_s" -lt "$target_s" ]; then BACKUP_ARG="$b"; fi
  done < <(list_backups)
  [ -n "$BACKUP_ARG" ] || die "no complete backup in $BACKUP_DIR started before ${TARGET_TIME:-now}"
fi
if [ -d "$BACKUP_ARG" ]; then BACKUP="$(readlink -f "$BACKUP_ARG")"; else BACKUP="$BACKUP_DIR/$BACKUP_ARG"; fi
if [ ! -f "$BACKUP/base.tar.gz" ] || [ ! -f "$BACKUP/pg_wal.tar.gz" ]; then
  die "$BACKUP is not a complete base backup"
fi

# The new data folder.
if [ -z "$NEW_DIR" ]; then NEW_DIR="$DATA/restore-$(date -u +%Y%m%dT%H%M%SZ)"; fi
if [ -e "$NEW_DIR" ] && [ -n "$(ls -A "$NEW_DIR" 2>/dev/null)" ]; then
  die "$NEW_DIR exists and is not empty: restore into a new folder"
fi
mkdir -p "$NEW_DIR"
if [ "$(id -u)" -eq 0 ]; then chown "$PG_OWNER:" "$NEW_DIR"; fi
chmod 0700 "$NEW_DIR"
NEW_DIR="$(readlink -f "$NEW_DIR")"
as_pg test -w "$NEW_DIR" || die "$PG_OWNER cannot write $NEW_DIR"

# The port.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "$PORT" ]; then
  for p in $(seq 55440 55499); do
    if ! port_busy "$p"; then PORT="$p"; break; fi
  done
  [ -n "$PORT" ] || die "no free port in 55440-55499: pass one"
fi
[[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port '$PORT'"
port_busy "$PORT" && die "port $PORT is in use"

log "restoring $BACKUP into $NEW_DIR (target: ${TARGET_TIME:-end of archived WAL}), port $PORT"
as_pg tar -xzf "$BACKUP/base.tar.gz" -C "$NEW_DIR"
as_pg tar -xzf "$BACKUP/pg_wal.tar.gz" -C "$NEW_DIR/pg_wal"
as_pg rm -f "$NEW_DIR/postmaster.pid" "$NEW_DIR/postmaster.opts"
{
  echo "# BEGIN winzo restore (scripts/restore.sh, $(date -u +%FT%TZ), from $BACKUP)"
  echo "port = $PORT"
  echo "listen_addresses = '127.0.0.1'"
  echo "unix_socket_directories = ''"
  echo "archive_mode = off"
  echo "restore_command = 'cp $WAL_ARCHIVE/%f %p'"
  if [ -n "$TARGET_TIME" ]; then echo "recovery_target_time = '$TARGET_TIME'"; fi
  echo "recovery_target_action = 'promote'"
  echo "# END winzo restore"
} | as_pg sh -c 'cat >> "$1/postgresql.auto.conf"' _ "$NEW_DIR"
as_pg touch "$NEW_DIR/recovery.signal"

LOGFILE="$NEW_DIR/restore.log"
if ! as_pg "$PGBIN/pg_ctl" -D "$NEW_DIR" -l "$LOGFILE" -w -t "$WAIT_SECS" -s start; then
  tail -n 30 "$LOGFILE" >&2 || true
  die "the restored cluster did not start (log: $LOGFILE)"
fi

# Hot standby answers during recovery; promotion is done when pg_is_in_recovery() is false.
deadline=$((SECONDS + WAIT_SECS))
while :; do
  state="$(psql_at "$PORT" postgres -tAc 'SELECT pg_is_in_recovery()' 2>/dev/null || true)"
  [ "$state" = f ] && break
  if ! as_pg "$PGBIN/pg_ctl" -D "$NEW_DIR" status >/dev/null 2>&1; then
    tail -n 30 "$LOGFILE" >&2 || true
    die "the restored cluster stopped during recovery (target after the archived WAL?); log: $LOGFILE"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    tail -n 30 "$LOGFILE" >&2 || true
    die "not promoted after ${WAIT_SECS}s (log: $LOGFILE)"
  fi
  sleep 0.3
done
log "promoted. Stop it with: runuser -u $PG_OWNER -- $PGBIN/pg_ctl -D $NEW_DIR stop"
echo "postgres://$PG_USER@127.0.0.1:$PORT/$PG_DB"
