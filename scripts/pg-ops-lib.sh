# shellcheck shell=bash
# Shared by scripts/backup.sh and scripts/restore.sh (sourced, not run).
#
# Where things are, for a profile (dev, test: the clusters of scripts/services.sh) or for
# any cluster through environment variables (which always win):
#   WINZO_PG_HOST (127.0.0.1)  WINZO_PG_PORT (dev 25432, test 25433)  WINZO_PG_USER (winzo)
#   WINZO_PG_DB (dev winzo, test winzo_template, else postgres)
#   WINZO_WAL_ARCHIVE  archive folder (default: .data/<profile>/wal-archive, symlink followed,
#                      else wal-archive beside the server's data_directory)
#   WINZO_BACKUP_DIR   base backups (default .data/<profile>/backups)
#   WINZO_PG_OS_USER   the OS user owning the cluster files (postgres when run as root)
#   WINZO_PG_BIN       Postgres binaries (/usr/lib/postgresql/15/bin)
#   WINZO_SERVICES_WAIT seconds to wait for a server (default 120)

PGBIN="${WINZO_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_OS_USER="${WINZO_PG_OS_USER:-postgres}"
# shellcheck disable=SC2034  # used by the scripts that source this file
WAIT_SECS="${WINZO_SERVICES_WAIT:-120}"
CLIENT_PATH="$PGBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

log() { printf '[%s %s] %s\n' "$SCRIPT" "${PROFILE:-}" "$*" >&2; }
die() {
  printf '[%s %s] ERROR: %s\n' "$SCRIPT" "${PROFILE:-}" "$*" >&2
  exit 1
}

# Only these characters go into postgresql.auto.conf and restore_command unquoted.
path_is_plain() { [[ "$1" =~ ^[A-Za-z0-9._/+-]+$ ]]; }

set_profile() {
  PROFILE="$1"
  [[ "$PROFILE" =~ ^[A-Za-z0-9_-]+$ ]] || die "bad profile name '$PROFILE'"
  local port="" db=postgres
  case "$PROFILE" in
    dev) port=25432 db=winzo ;;
    test) port=25433 db=winzo_template ;;
  esac
  PG_HOST="${WINZO_PG_HOST:-127.0.0.1}"
  PG_PORT="${WINZO_PG_PORT:-$port}"
  [ -n "$PG_PORT" ] || die "profile '$PROFILE' has no default port: set WINZO_PG_PORT"
  PG_USER="${WINZO_PG_USER:-winzo}"
  # shellcheck disable=SC2034  # used by restore.sh
  PG_DB="${WINZO_PG_DB:-$db}"
  DATA="$ROOT/.data/$PROFILE"
  BACKUP_DIR="${WINZO_BACKUP_DIR:-$DATA/backups}"
  if [ "$(id -u)" -eq 0 ]; then
    id -u "$PG_OS_USER" >/dev/null 2>&1 || die "OS user $PG_OS_USER does not exist"
    PG_OWNER="$PG_OS_USER"
  else
    PG_OWNER="$(id -un)"
  fi
}

# Runs a command as the cluster owner with a clean environment (Postgres refuses root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && exec runuser -u "$PG_OWNER" -- env -i PATH="$CLIENT_PATH" LC_ALL=C "$@")
  else
    (cd / && exec env -i PATH="$CLIENT_PATH" HOME="${HOME:-/}" LC_ALL=C "$@")
  fi
}

psql_at() { # <port> <db> <psql args...>
  local port="$1" db="$2"
  shift 2
  env -i PATH="$CLIENT_PATH" LC_ALL=C PGCONNECT_TIMEOUT=5 \
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$port" -U "$PG_USER" -d "$db" "$@"
}

# Sets WAL_ARCHIVE (absolute, symlinks resolved).
locate_archive() {
  local a="${WINZO_WAL_ARCHIVE:-}"
  if [ -z "$a" ] && [ -e "$DATA/wal-archive" ]; then
    a="$DATA/wal-archive"
  fi
  if [ -z "$a" ]; then
    local datadir
    datadir="$(psql_at "$PG_PORT" postgres -tAc 'SHOW data_directory' 2>/dev/null || true)"
    [ -n "$datadir" ] || die "cannot find the WAL archive: set WINZO_WAL_ARCHIVE"
    a="$(dirname "$datadir")/wal-archive"
  fi
  WAL_ARCHIVE="$(readlink -f "$a")" || die "WAL archive '$a' not found"
  as_pg test -d "$WAL_ARCHIVE" || die "WAL archive $WAL_ARCHIVE is not a folder $PG_OWNER can read"
  path_is_plain "$WAL_ARCHIVE" || die "WAL archive path '$WAL_ARCHIVE' has unsafe characters"
}

# Makes BACKUP_DIR (owned by the cluster owner, 0700: a backup holds every row).
prepare_backup_dir() {
  mkdir -p "$BACKUP_DIR"
  if [ "$(id -u)" -eq 0 ]; then chown "$PG_OWNER:" "$BACKUP_DIR"; fi
  chmod 0700 "$BACKUP_DIR"
  BACKUP_DIR="$(readlink -f "$BACKUP_DIR")"
  as_pg test -w "$BACKUP_DIR" \
    || die "$PG_OWNER cannot write $BACKUP_DIR (a parent folder closed to it?): set WINZO_BACKUP_DIR"
}

# Completed backups, oldest first (folder names are UTC timestamps; partial ones start with .).
list_backups() {
  find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended \
    -regex '.*/[0-9]{8}T[0-9]{6}Z(-[0-9]+)?' -printf '%f\n' | sort
}
