#!/usr/bin/env bash
# Installs the IAM evaluation reference the twokey-iam differential tests run
# as an external oracle: npm @cloud-copilot/iam-simulate (AGPL-3.0, so it is
# installed here and run as a separate program, never copied into the repo),
# into $HOME/.cache/twokey/iam-oracle. Idempotent. Prints the install dir.
set -euo pipefail
dir="${TWOKEY_IAM_ORACLE:-$HOME/.cache/twokey/iam-oracle}"
version="0.1.173"
pkg="$dir/node_modules/@cloud-copilot/iam-simulate/package.json"
if [ ! -f "$pkg" ] || ! grep -q "\"version\": \"$version\"" "$pkg"; then
  mkdir -p "$dir"
  ( cd "$dir" && npm install --no-audit --no-fund --no-save --prefix . \
      "@cloud-copilot/iam-simulate@$version" >/dev/null )
fi
echo "$dir"
