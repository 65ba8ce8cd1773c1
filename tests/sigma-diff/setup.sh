#!/usr/bin/env bash
# Creates the Python environment the pySigma differential test needs:
# a venv at .venv/sigma (the repository ignores /.venv) with pySigma and its
# SQLite backend. Prints the interpreter path to export as TWOKEY_PYSIGMA_PYTHON.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${TWOKEY_SIGMA_VENV:-$root/.venv/sigma}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import sigma.backends.sqlite' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'pysigma>=0.11' 'pysigma-backend-sqlite>=0.2'
fi
echo "$venv/bin/python"
