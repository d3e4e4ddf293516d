#!/usr/bin/env bash
# shellcheck disable=SC2016  # sh -c '...' _ args: $1 expands in the inner shell on purpose
# Takes a compressed base backup of a cluster and applies the retention.
#
#   scripts/backup.sh <profile>        (make backup PROFILE=dev)
#
# 1. pg_basebackup (tar format, gzip, WAL streamed alongside, fast checkpoint) into
#    <backups>/.<timestamp>.partial, renamed to <backups>/<timestamp>/ once complete:
#    base.tar.gz, pg_wal.tar.gz, backup_manifest, backup_label (copied out of base.tar.gz
#    for reading) and winzo-backup.info.
# 2. Retention: keeps the WINZO_BACKUP_KEEP newest complete backups (default 7), deletes the
#    rest, then deletes the archived WAL older than the oldest kept backup's start segment
#    (pg_archivecleanup), so every kept backup can still be rolled forward (PITR).
# Locations and the connection come from the profile or the environment: see
# scripts/pg-ops-lib.sh. Cluster files are touched as the cluster's OS user.
set -euo pipefail
SCRIPT=backup
# shellcheck source=scripts/pg-ops-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pg-ops-lib.sh"

[ $# -eq 1 ] || { sed -n '3,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
set_profile "$1"
KEEP="${WINZO_BACKUP_KEEP:-7}"
[[ "$KEEP" =~ ^[1-9][0-9]*$ ]] || die "WINZO_BACKUP_KEEP must be a whole number >= 1, not '$KEEP'"

locate_archive
prepare_backup_dir
exec 9>"$BACKUP_DIR/.lock"
flock -w 600 9 || die "another backup of $BACKUP_DIR is running"

name="$(date -u +%Y%m%dT%H%M%SZ)"
n=1
while [ -e "$BACKUP_DIR/$name" ]; do name="$(date -u +%Y%m%dT%H%M%SZ)-$n"; n=$((n + 1)); done
partial="$BACKUP_DIR/.$name.partial"
final="$BACKUP_DIR/$name"

log "base backup of $PG_HOST:$PG_PORT into $final"
if ! as_pg "$PGBIN/pg_basebackup" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -w \
  -D "$partial" -Ft -z -X stream -c fast -l "winzo $PROFILE $name" 9>&-; then
  as_pg rm -rf "$partial"
  die "pg_basebackup failed"
fi
as_pg gzip -t "$partial/base.tar.gz" "$partial/pg_wal.tar.gz" || die "backup archives are corrupt"
as_pg sh -c 'tar -xzOf "$1/base.tar.gz" backup_label > "$1/backup_label"' _ "$partial"
start_wal="$(sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\))$/\1/p' "$partial/backup_label")"
start_time="$(sed -n 's/^START TIME: //p' "$partial/backup_label")"
[ -n "$start_wal" ] || die "no START WAL LOCATION in backup_label"
printf 'profile=%s\nport=%s\nstart_wal=%s\nstart_time=%s\narchive=%s\n' \
  "$PROFILE" "$PG_PORT" "$start_wal" "$start_time" "$WAL_ARCHIVE" \
  | as_pg sh -c 'cat > "$1/winzo-backup.info"' _ "$partial"
as_pg mv "$partial" "$final"
log "backup complete: $final (starts at WAL $start_wal, $start_time)"

# Retention: newest KEEP kept; partial folders left by a crash are removed after a day.
mapfile -t all < <(list_backups)
count="${#all[@]}"
if [ "$count" -gt "$KEEP" ]; then
  for ((i = 0; i < count - KEEP; i++)); do
    log "retention: removing backup ${all[$i]}"
    as_pg rm -rf "$BACKUP_DIR/${all[$i]}"
  done
fi
find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -name '.*.partial' -mmin +1440 \
  -exec rm -rf {} + 2>/dev/null || true

oldest="$(list_backups | head -n 1)"
oldest_wal="$(sed -n 's/^start_wal=//p' "$BACKUP_DIR/$oldest/winzo-backup.info")"
[[ "$oldest_wal" =~ ^[0-9A-F]{24}$ ]] || die "bad start_wal in $oldest/winzo-backup.info"
log "retention: removing archived WAL older than $oldest_wal (oldest kept backup $oldest)"
as_pg "$PGBIN/pg_archivecleanup" "$WAL_ARCHIVE" "$oldest_wal" 9>&-
# pg_archivecleanup leaves the small backup history files (<segment>.<offset>.backup).
while IFS= read -r f; do
  if [[ "${f:8:16}" < "${oldest_wal:8:16}" ]]; then as_pg rm -f "$WAL_ARCHIVE/$f"; fi
done < <(find "$WAL_ARCHIVE" -maxdepth 1 -type f -regextype posix-extended \
  -regex '.*/[0-9A-F]{24}\.[0-9A-F]{8}\.backup' -printf '%f\n')
echo "$final"
