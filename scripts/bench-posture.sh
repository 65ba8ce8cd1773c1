#!/usr/bin/env bash
# Posture benchmark: twokey posture aws and Prowler side by side on the same
# seeded moto organisation, then twokey alone on a generated organisation of
# 50 accounts in 4 regions. Prints, in one run:
#   1. PASS/FAIL per shared check per resource, both tools (compare.py);
#   2. wall time, CPU time (user+sys) and peak memory of both, and the ratios;
#   3. API calls each made (counted by a proxy in front of moto);
#   4. the 50-account scan: total time, API calls, peak memory.
# Prowler (PyPI) is installed once into ~/.cache/twokey/venv-prowler by
# scripts/setup-prowler.sh; this script is never run by the test suite.
# Env: TWOKEY_BIN (default: target/release/twokey, else target/debug/twokey),
# MEMBERS (side-by-side members, default 2), BIG_MEMBERS (default 50),
# TWOKEY_BEFORE_BIN (optional: an earlier twokey build, measured on the same
# organisation right after this one, for a before/after of a change).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MOTO_VENV="${MOTO_VENV:-$ROOT/.venv/moto}"
MEMBERS="${MEMBERS:-2}"
BIG_MEMBERS="${BIG_MEMBERS:-50}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${TWOKEY_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x "$TARGET/release/twokey" ]; then BIN="$TARGET/release/twokey"; else BIN="$TARGET/debug/twokey"; fi
fi
[ -x "$BIN" ] || { echo "no twokey binary at $BIN (cargo build --workspace, or set TWOKEY_BIN)" >&2; exit 1; }
PROWLER="$(bash scripts/setup-prowler.sh)"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { "$MOTO_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_moto() { # -> sets MOTO_URL and PROXY_URL, COUNTS
  local mp pp
  mp=$(free_port); pp=$(free_port)
  "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$mp" >"$WORK/moto-$mp.log" 2>&1 &
  PIDS+=($!)
  COUNTS="$WORK/counts-$pp.json"
  "$MOTO_VENV/bin/python" scripts/bench/count_proxy.py "$pp" "http://127.0.0.1:$mp" "$COUNTS" &
  PIDS+=($!)
  for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$mp/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
  for _ in $(seq 1 50); do [ -f "$COUNTS" ] && break; sleep 0.1; done
  MOTO_URL="http://127.0.0.1:$mp"; PROXY_URL="http://127.0.0.1:$pp"
}
reset_counts() { curl -fs -X POST "$PROXY_URL/__reset" >/dev/null; }
calls() { "$MOTO_VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"])' "$COUNTS"; }
# measure NAME CMD...: runs CMD with GNU time; appends "NAME wall cpu maxrss_kib" to $WORK/times
measure() {
  local name=$1; shift
  local status=0
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/t" "$@" || status=$?
  # GNU time writes "Command exited with non-zero status N" first when the
  # command fails (twokey exits 3 on failing checks): the figures are the last line.
  read -r wall user sys rss < <(tail -1 "$WORK/t")
  echo "$name $wall $(echo "$user + $sys" | bc) $rss" >>"$WORK/times"
  return 0
}

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
REGIONS=us-east-1,eu-west-1
echo "== side by side: 1 management + $MEMBERS member accounts, regions $REGIONS (moto, loopback)"
echo "twokey: $BIN ($("$BIN" --version 2>/dev/null || echo '?')); Prowler: $("$PROWLER" --version 2>/dev/null | tail -1)"
start_moto
"$MOTO_VENV/bin/python" scripts/bench/seed_org.py "$PROXY_URL" "$MEMBERS" "$REGIONS" >"$WORK/members"
MGMT=$(AWS_ENDPOINT_URL=$PROXY_URL "$MOTO_VENV/bin/python" -c 'import boto3; print(boto3.client("sts").get_caller_identity()["Account"])')

# One unmeasured scan first, so every measured run (twokey's, the earlier
# build's, Prowler's) meets a moto that has already built its per-account,
# per-region backends.
env AWS_ENDPOINT_URL="$PROXY_URL" "$BIN" posture aws --regions "$REGIONS" \
  --include-empty-vaults --format json >/dev/null 2>&1 || true
reset_counts
measure twokey env AWS_ENDPOINT_URL="$PROXY_URL" "$BIN" posture aws --regions "$REGIONS" \
  --include-empty-vaults --format json >"$WORK/twokey.json" 2>"$WORK/twokey.err" || true
TK_CALLS=$(calls)
if [ -n "${TWOKEY_BEFORE_BIN:-}" ]; then
  reset_counts
  measure before env AWS_ENDPOINT_URL="$PROXY_URL" "$TWOKEY_BEFORE_BIN" posture aws --regions "$REGIONS" \
    --include-empty-vaults --format json >"$WORK/before.json" 2>"$WORK/before.err" || true
  BEFORE_CALLS=$(calls)
fi

# Every Prowler check a twokey check names that this Prowler has (a renamed or
# newer id is left out and listed).
"$PROWLER" aws --list-checks-json 2>/dev/null >"$WORK/prowler-checks.json" || echo '{}' >"$WORK/prowler-checks.json"
PROWLER_CHECKS=$(python3 - "$WORK/twokey.json" "$WORK/prowler-checks.json" <<'PY'
import json, sys
ours = sorted({p for c in json.load(open(sys.argv[1]))["checks"] for p in c.get("prowler", [])})
try:
    have = {c for v in json.load(open(sys.argv[2])).values() for c in (v if isinstance(v, list) else [v])}
except (ValueError, AttributeError):
    have = set()
missing = [c for c in ours if have and c not in have]
if missing:
    print("Prowler lacks: " + ", ".join(missing), file=sys.stderr)
print(" ".join(c for c in ours if not have or c in have))
PY
)
export PROWLER_CHECKS
echo "shared checks ($(wc -w <<<"$PROWLER_CHECKS") Prowler ids): $PROWLER_CHECKS"

reset_counts
measure prowler bash scripts/bench/prowler-all.sh "$PROWLER" "$PROXY_URL" "$WORK/prowler" "$MGMT" "$WORK/members" us-east-1 eu-west-1
PR_CALLS=$(calls)

echo
echo "-- PASS/FAIL per shared check and resource"
python3 scripts/bench/compare.py "$WORK/twokey.json" "$WORK"/prowler/*.ocsf.json
echo
echo "-- time and memory (wall s, CPU s = user+sys, peak RSS MiB; Prowler: one run per account, summed; peak = largest)"
python3 - "$WORK/times" "$TK_CALLS" "$PR_CALLS" "${BEFORE_CALLS:-}" <<'PY'
import sys
rows = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[1])}
tk, pr = rows["twokey"], rows["prowler"]
print(f"{'':8} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} {'API calls':>10}")
print(f"{'twokey':8} {tk[0]:8.2f} {tk[1]:8.2f} {tk[2]/1024:9.1f} {sys.argv[2]:>10}")
print(f"{'Prowler':8} {pr[0]:8.2f} {pr[1]:8.2f} {pr[2]/1024:9.1f} {sys.argv[3]:>10}")
print(f"ratio Prowler/twokey: wall {pr[0]/max(tk[0],1e-3):.1f}x, CPU {pr[1]/max(tk[1],1e-3):.1f}x, peak memory {pr[2]/max(tk[2],1):.1f}x")
if "before" in rows:
    b = rows["before"]
    print(f"{'before':8} {b[0]:8.2f} {b[1]:8.2f} {b[2]/1024:9.1f} {sys.argv[4]:>10}   (TWOKEY_BEFORE_BIN, same organisation)")
    print(f"ratio before/twokey: wall {b[0]/max(tk[0],1e-3):.2f}x; Prowler/before: wall {pr[0]/max(b[0],1e-3):.1f}x")
PY

echo
echo "== twokey alone: 1 management + $BIG_MEMBERS member accounts, 4 regions"
start_moto
BIG_REGIONS=us-east-1,eu-west-1,eu-central-1,ap-southeast-2
"$MOTO_VENV/bin/python" scripts/bench/seed_org.py "$PROXY_URL" "$BIG_MEMBERS" "$BIG_REGIONS" >/dev/null
reset_counts
: >"$WORK/times"
measure big env AWS_ENDPOINT_URL="$PROXY_URL" "$BIN" posture aws --regions "$BIG_REGIONS" \
  --include-empty-vaults --format json >"$WORK/big.json" 2>"$WORK/big.err" || true
python3 - "$WORK/times" "$(calls)" "$WORK/big.json" <<'PY'
import json, sys
wall, cpu, rss = [float(x) for x in open(sys.argv[1]).read().split()[1:]]
s = json.load(open(sys.argv[3]))["summary"]
n = len(json.load(open(sys.argv[3]))["findings"])
print(f"total {wall:.2f} s wall, {cpu:.2f} s CPU, peak {rss/1024:.1f} MiB, {sys.argv[2]} API calls, "
      f"{n} findings ({s['pass']} pass, {s['fail']} fail, {s['error']} error)")
PY
