#!/usr/bin/env bash
# The IAM graph benchmark (issue 14): a generated account (5,000 roles,
# 2,000 customer-managed policies, 200 users, as GetAccountAuthorizationDetails
# JSON), the graph of who can become whom built and the full high-risk list
# answered by twokey-iam and by PMapper (PyPI principalmapper, installed here
# into ~/.cache/twokey/pmapper-venv, never by the test suite) on the same
# files, side by side; then evaluator decisions/s on the differential corpus.
#
# usage: scripts/bench-iam.sh [--pmapper-timeout SECONDS] [--sizes "300 600 1200 5000"]
# PMapper's edge search is quadratic in Python: at each size it runs until
# the timeout (default 900 s) and is reported as not finished past it.
set -euo pipefail
cd "$(dirname "$0")/.."
timeout_s=900
sizes="300 600 1200 5000"
while [ $# -gt 0 ]; do
  case "$1" in
    --pmapper-timeout) timeout_s="$2"; shift 2 ;;
    --sizes) sizes="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
venv="$HOME/.cache/twokey/pmapper-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import principalmapper' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'principalmapper==1.1.5'
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo bench --workspace --bench graph --no-run -q 2>/dev/null || cargo bench --workspace --bench graph --no-run
bench_bin=$(ls -t "$CARGO_TARGET_DIR"/release/deps/graph-* | grep -v '\.d$' | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-7s %-9s %10s %10s %10s %9s %10s %10s %10s\n' roles engine load_s graph_s answer_s edges holders uncond peak_MB
for n in $sizes; do
  policies=$(( n * 2 / 5 )); users=$(( n / 25 )); [ "$users" -lt 10 ] && users=10
  if [ "$n" = 5000 ]; then policies=2000; users=200; fi
  python3 scripts/gen-iam-account.py "$work/$n" --roles "$n" --policies "$policies" --users "$users" >/dev/null
  ours=$(TWOKEY_IAM_BENCH_DIR="$work/$n" "$bench_bin")
  theirs=$(timeout "$timeout_s" "$venv/bin/python" scripts/bench-iam-pmapper.py "$work/$n/auth-details.json" "$work/$n/risks.json" 2>/dev/null || echo '{"timeout": true}')
  python3 - "$n" "$ours" "$theirs" "$timeout_s" <<'PY'
import json, sys
n, ours, theirs, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
def row(name, r):
    unc = r.get("unconditional", r["holders"])
    print(f"{n:<7} {name:<9} {r['load_s']:10.2f} {r['graph_s']:10.2f} {r['answer_s']:10.2f} {r['edges']:9d} {r['holders']:10d} {unc:10d} {r['peak_rss_kb']/1024:10.0f}")
row("twokey", ours)
if theirs.get("timeout"):
    print(f"{n:<7} {'pmapper':<9} did not finish within {t} s")
else:
    row("pmapper", theirs)
    tot = lambda r: r["load_s"] + r["graph_s"] + r["answer_s"]
    print(f"{n:<7} ratio     pmapper/twokey total time {tot(theirs)/tot(ours):.1f}x, peak memory {theirs['peak_rss_kb']/max(ours['peak_rss_kb'],1):.2f}x")
PY
done
echo
echo "evaluator throughput on the differential corpus:"
if [ -d "$HOME/.cache/twokey/iam-oracle" ]; then
  TWOKEY_IAM_ORACLE="$HOME/.cache/twokey/iam-oracle" cargo bench --workspace --bench decisions -q 2>/dev/null | tail -6
else
  cargo bench --workspace --bench decisions -q 2>/dev/null | tail -6
fi
