#!/bin/sh
# Benchmark of the access broker (issues 2, 16): activation latency, full
# cycles per second with concurrent clients, expiry lag of 10,000 grants
# ending within one minute, and where the time goes; on SQLite and
# PostgreSQL, no-op provider. Then, on the same PostgreSQL, the limit: pgbench
# running scripts/pgbench-cycle.sql (the rows and commits of one cycle) with
# the same client counts, and twokey's cycles/s as a share of it.
#
#   scripts/bench-broker.sh            # full figures (takes a few minutes)
#   scripts/bench-broker.sh --quick    # smoke run
#   scripts/bench-broker.sh --sqlite-only | --pg-only
#
# PostgreSQL: TWOKEY_TEST_PG (default postgres://postgres@127.0.0.1:5432/postgres);
# each scenario creates a fresh database.
set -eu
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
# The same package set as scripts/bench-api.sh, so both reuse one build
# (a different set unifies features differently and rebuilds the AWS SDK).
cargo build --release -q -p twokey -p twokey-bench
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$target/release/twokey-bench" "$@" | tee "$out"

case " $* " in *" --sqlite-only "*) exit 0 ;; esac
if ! command -v pgbench >/dev/null; then
  echo "== installing pgbench (postgresql-client)" >&2
  apt-get install -y -q postgresql-client >/dev/null || { echo "pgbench unavailable: no limit figure" >&2; exit 0; }
fi
pg="${TWOKEY_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
secs=10
case " $* " in *" --quick "*) secs=2 ;; esac
db="twokey_pgbench_$$"
psql -q "$pg" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
dburl="$(printf '%s' "$pg" | sed "s#/[^/]*\$#/$db#")"
psql -q "$dburl" -f crates/twokey-store/migrations/0001_init.sql >/dev/null
psql -q "$dburl" -c "INSERT INTO ledger_head (id, size, frontier) SELECT g, 0, '' FROM generate_series(2, 100) g"
echo
echo "PostgreSQL limit: pgbench -f scripts/pgbench-cycle.sql (4 commits, 3 ledger rows, 1 request insert, 3 updates, 3 head updates per cycle), ${secs} s each"
for c in 8 32; do
  tps=$(pgbench -n -f scripts/pgbench-cycle.sql -c "$c" -j 2 -T "$secs" "$dburl" 2>/dev/null \
        | awk '/^tps = / {print $3; exit}')
  ours=$(awk -v c="$c" '$1 == "postgres" && /full cycles/ && $0 ~ (" " c " clients") {for (i = 1; i <= NF; i++) if ($(i) == "cycles/s") print $(i-1)}' "$out")
  if [ -n "$ours" ] && [ -n "$tps" ]; then
    ratio=$(awk -v a="$ours" -v b="$tps" 'BEGIN {printf "%.0f%%", 100 * a / b}')
  else
    ratio="n/a"
  fi
  printf 'postgres  %2s clients: pgbench limit %8.0f cycles/s; twokey %8s cycles/s = %s of the limit\n' "$c" "${tps:-0}" "${ours:-?}" "$ratio"
done
psql -q "$pg" -c "DROP DATABASE IF EXISTS $db"
