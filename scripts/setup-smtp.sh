#!/usr/bin/env bash
# Creates (once) a Python venv with aiosmtpd (PyPI), the local SMTP sink the
# notification tests deliver email to:
#   .venv/aiosmtpd/bin/python -m aiosmtpd -n -l 127.0.0.1:PORT -c ...
# Idempotent. Override the location with AIOSMTPD_VENV; tests read
# TWOKEY_AIOSMTPD_PYTHON (default: the venv's python).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${AIOSMTPD_VENV:-$root/.venv/aiosmtpd}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  echo "aiosmtpd already installed in $venv"
  exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
  echo "python3 venv is missing (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet 'aiosmtpd>=1.4'
echo "aiosmtpd installed in $venv: $("$venv/bin/python" -c 'import aiosmtpd; print(aiosmtpd.__version__)')"
