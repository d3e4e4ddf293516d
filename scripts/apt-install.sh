#!/usr/bin/env bash
# Installs Debian packages for the project's scripts (scripts/services.sh, scripts/cluster.sh,
# scripts/bench.sh):
#   scripts/apt-install.sh <package>...
# apt-get update + install --no-install-recommends, as root or through passwordless sudo,
# one at a time per clone (apt has its own lock, but two scripts installing at once would
# fail on it rather than wait).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
die() {
  printf '[apt-install] ERROR: %s\n' "$*" >&2
  exit 1
}
[ $# -ge 1 ] || die "usage: scripts/apt-install.sh <package>..."
command -v apt-get >/dev/null 2>&1 \
  || die "missing packages ($*) and no apt-get here: install them by hand"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "missing packages ($*): run as root or install sudo"
  sudo=(sudo -n)
fi
mkdir -p "$ROOT/.data"
exec 8>"$ROOT/.data/.install.lock"
flock -w 600 8 || die "timed out waiting for $ROOT/.data/.install.lock"
printf '[apt-install] installing: %s (apt-get update + install)\n' "$*" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@"
