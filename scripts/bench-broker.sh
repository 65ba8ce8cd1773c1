#!/bin/sh
# Benchmark of the access broker (issue 2): activation latency, full cycles per
# second with concurrent clients, expiry lag of 10,000 grants ending within one
# minute, and where the time goes; on SQLite and PostgreSQL, no-op provider.
#
#   scripts/bench-broker.sh            # full figures (takes a few minutes)
#   scripts/bench-broker.sh --quick    # smoke run
#   scripts/bench-broker.sh --sqlite-only | --pg-only
#
# PostgreSQL: TWOKEY_TEST_PG (default postgres://postgres@127.0.0.1:5432/postgres);
# each scenario creates a fresh database.
set -eu
cd "$(dirname "$0")/.."
cargo build --release -q -p twokey-bench
exec ./target/release/twokey-bench "$@"
