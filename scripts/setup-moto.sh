#!/usr/bin/env bash
# Creates (once) a Python venv with moto server for the AWS provider tests:
#   /work/main/.venv/moto/bin/moto_server -H 127.0.0.1 -p PORT
# Idempotent: an existing venv with moto_server is kept. Override the
# location with MOTO_VENV.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MOTO_VENV:-$root/.venv/moto}"
if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import moto' 2>/dev/null; then
  echo "moto already installed in $venv"
  exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
  echo "python3 venv is missing (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet 'moto[server]'
echo "moto installed in $venv: $("$venv/bin/moto_server" --version 2>/dev/null || echo ok)"
