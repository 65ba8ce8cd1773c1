#!/usr/bin/env bash
# Creates (once) a Python venv with scim2-tester (PyPI, "check SCIM RFCs
# server compliance") for scripts/scim-compliance.sh and prints the path of
# its python. Idempotent: an existing venv with the pinned version is kept.
# Override the location with TWOKEY_SCIM_VENV.
set -euo pipefail
venv="${TWOKEY_SCIM_VENV:-$HOME/.cache/twokey/venv-scim}"
version="0.5.2"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import importlib.metadata as m, sys, httpx2; sys.exit(m.version('scim2-tester') != '$version')" 2>/dev/null; then
  echo "$venv/bin/python"
  exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
  echo "python3 venv is missing (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip >&2
# The httpx2 extra: the HTTP engine tests/scim/check.py drives the server with.
"$venv/bin/pip" install --quiet "scim2-tester[httpx2]==$version" >&2
echo "$venv/bin/python"
