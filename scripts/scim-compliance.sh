#!/usr/bin/env bash
# SCIM 2.0 compliance: scim2-tester (PyPI) against a running `twokey serve`
# with a [scim] section (SQLite, one provisioning client whose token is given
# by reference, token_env). Prints scim2-tester's checks and
# `scim: N passed, N failed, N skipped`; exits non-zero on any failure.
# Needs TWOKEY_BIN (the debug binary); the venv comes from
# scripts/setup-scim-tester.sh (or SCIM_PYTHON=...).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${TWOKEY_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/twokey/target}/debug/twokey}"
py="${SCIM_PYTHON:-$(bash "$root/scripts/setup-scim-tester.sh")}"
work="$(mktemp -d "${TMPDIR:-/tmp}/twokey-scim-XXXXXX")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
token="scim_$(python3 -c 'import secrets; print(secrets.token_hex(24))')"

cat >"$work/policy.toml" <<'POLICY'
[admins]
groups = ["admins"]
approvals = 1

[[identity]]
name = "bob"
groups = ["admins", "approvers"]
[[identity]]
name = "carol"
groups = ["admins"]
[[identity]]
name = "alice"
groups = ["eng"]

[[entitlement]]
name = "demo"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approval = { count = 1, from = ["approvers"] }
[entitlement.target]
grant = ["true"]
revoke = ["true"]
check = ["false"]
POLICY
cat >"$work/twokey.toml" <<CONF
listen = "127.0.0.1:$port"
database = "sqlite://$work/twokey.db"
policy = "$work/policy.toml"
public_url = "$base"

[reconciler]
enabled = false

[scim]
issuer = "twokey"
link = "user_name"

[[scim.client]]
name = "scim2-tester"
token_env = "TWOKEY_SCIM_TEST_TOKEN"
CONF

TWOKEY_SCIM_TEST_TOKEN="$token" TWOKEY_LOG="${TWOKEY_LOG:-warn}" \
  "$bin" serve --config "$work/twokey.toml" >"$work/server.log" 2>&1 &
server=$!
stop() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 300); do
  curl -fs "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; echo "scim: the server did not start" >&2; exit 1; }
  sleep 0.1
done

# Without the token: refused, as a SCIM error.
code="$(curl -s -o /dev/null -w '%{http_code}' "$base/scim/v2/Users")"
if [ "$code" != 401 ]; then echo "scim: /scim/v2/Users without a token answered $code, not 401" >&2; exit 1; fi

set +e
"$py" "$root/tests/scim/check.py" "$base/scim/v2" "$token"
rc=$?
set -e
if [ "$rc" != 0 ]; then tail -n 40 "$work/server.log" >&2; fi
exit "$rc"
