#!/usr/bin/env bash
# Validates the OpenAPI document the engine serves with openapi-spec-validator, the
# ecosystem's validator (installed once into .data/tools/venv from the Python package
# index). Called by scripts/test.sh after the debug build; usable alone:
#   scripts/openapi-check.sh [path/to/winzo]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN="${1:-target/debug/winzo}"
VENV=.data/tools/venv
OUT=.data/tools/openapi.json
mkdir -p .data/tools

if [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
  echo "[openapi] installing openapi-spec-validator into $VENV" >&2
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check openapi-spec-validator
fi

WINZO_ENV=test WINZO__LOG__LEVEL=error "$BIN" openapi > "$OUT"
"$VENV/bin/openapi-spec-validator" "$OUT"
