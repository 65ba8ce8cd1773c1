#!/usr/bin/env bash
# Creates (once) a cached Python venv with Prowler, the peer of the posture
# benchmark (scripts/bench-posture.sh), and prints the path of its `prowler`.
# Never called from the test suite: the install takes minutes and ~2 GB.
# Idempotent: an existing venv with a working prowler is kept. Override the
# location with PROWLER_VENV, the version with PROWLER_VERSION.
set -euo pipefail
venv="${PROWLER_VENV:-$HOME/.cache/twokey/venv-prowler}"
version="${PROWLER_VERSION:-5.46.0}"
if [ -x "$venv/bin/prowler" ] && "$venv/bin/python" -c 'import prowler' 2>/dev/null; then
  echo "$venv/bin/prowler"
  exit 0
fi
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --upgrade pip >&2
"$venv/bin/pip" install --quiet "prowler==$version" >&2
echo "$venv/bin/prowler"
