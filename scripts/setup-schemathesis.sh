#!/usr/bin/env bash
# Creates (once) a Python venv with schemathesis (PyPI) for the API contract
# check (scripts/api-contract.sh) and prints the path of its `st` command.
# Idempotent: an existing venv with the pinned version is kept. Override the
# location with TWOKEY_SCHEMATHESIS_VENV.
set -euo pipefail
venv="${TWOKEY_SCHEMATHESIS_VENV:-$HOME/.cache/twokey/venv-schemathesis}"
version="4.32.5"
if [ -x "$venv/bin/st" ] && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$version')" 2>/dev/null; then
  echo "$venv/bin/st"
  exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
  echo "python3 venv is missing (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip >&2
"$venv/bin/pip" install --quiet "schemathesis==$version" >&2
echo "$venv/bin/st"
