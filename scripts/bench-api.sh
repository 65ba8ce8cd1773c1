#!/bin/sh
# Benchmark of the HTTP API of a `twokey serve` process (issue 16): with
# 10,000 requests stored (seeded through the API), wrk against
# GET /v1/requests?scope=waiting and GET /v1/requests/{id} with real API
# tokens (requests/s, p50, p99), on SQLite and PostgreSQL; then a 10-minute
# soak of create/approve/revoke cycles on PostgreSQL with the server's RSS
# sampled every 10 s and its growth after warm-up.
#
#   scripts/bench-api.sh                    # full figures (~13 minutes)
#   scripts/bench-api.sh --quick            # smoke run (1,000 requests, 20 s soak)
#   scripts/bench-api.sh --pg-only --soak-secs 120
#
# PostgreSQL: TWOKEY_TEST_PG (default postgres://postgres@127.0.0.1:5432/postgres);
# each backend gets a fresh database.
set -eu
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
if ! command -v wrk >/dev/null; then
  echo "== installing wrk (Debian)" >&2
  apt-get install -y -q wrk >/dev/null
fi
cargo build --release -q -p twokey -p twokey-bench
TWOKEY_BIN="$target/release/twokey" exec "$target/release/twokey-bench" api "$@"
