#!/usr/bin/env bash
# Where the CPU goes while the broker runs full cycles on PostgreSQL (issue 16):
# runs `twokey-bench --pg-only`, records the whole machine with perf for 8 s
# of the 32-client cycle phase (system-wide, so PostgreSQL's backends are in
# it too), and prints the share of each program and the top symbols of the
# twokey process and of PostgreSQL. Needs a release twokey-bench (built with
# line tables, as the workspace's release profile does) and perf (Debian
# linux-perf).
#
#   scripts/profile-broker.sh [BENCH_BIN] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="${1:-$target/release/twokey-bench}"
out="${2:-$(mktemp -d)}"
mkdir -p "$out"
[ -x "$bin" ] || { echo "no twokey-bench at $bin (cargo build --release -p twokey -p twokey-bench)" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
"$bin" --pg-only >"$out/bench.txt" 2>&1 &
bench=$!
trap 'kill $bench 2>/dev/null || true' EXIT
# The 8-client line is printed when the 32-client phase (10 s) starts.
for _ in $(seq 1 600); do
  grep -q "(2) full cycles,  8 clients" "$out/bench.txt" 2>/dev/null && break
  kill -0 $bench 2>/dev/null || { cat "$out/bench.txt"; echo "the bench ended early" >&2; exit 1; }
  sleep 0.1
done
sleep 0.5
perf record -q -a -F 999 -g -o "$out/perf.data" -- sleep 8 2>/dev/null
wait $bench || true
trap - EXIT
echo "== bench output"
cat "$out/bench.txt"
echo
echo "== CPU by program, 8 s of the 32-client cycles (all CPUs)"
perf report -i "$out/perf.data" --stdio --no-children -g none --sort comm 2>/dev/null | grep -E '^ +[0-9]' | head -12
echo
echo "== twokey-bench: top symbols (self)"
perf report -i "$out/perf.data" --stdio --no-children --comm twokey-bench,tokio-rt-worker -g none --sort dso,sym 2>/dev/null \
  | grep -E '^ +[0-9]' | head -25
echo
echo "== postgres: top symbols (self)"
perf report -i "$out/perf.data" --stdio --no-children --comm postgres -g none --sort dso,sym 2>/dev/null \
  | grep -E '^ +[0-9]' | head -15
echo
echo "perf data: $out/perf.data"
