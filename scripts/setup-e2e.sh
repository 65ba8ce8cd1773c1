#!/usr/bin/env bash
# Installs what the browser end-to-end tests need: Debian chromium (apt) and
# the npm packages of tests/e2e (oidc-provider, playwright-core) from the
# committed package-lock.json. Idempotent; prints nothing when all is there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  echo "setup-e2e: installing chromium (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  sudo_=""
  if [ "$(id -u)" != 0 ]; then sudo_="sudo"; fi
  $sudo_ apt-get update -qq >/dev/null
  $sudo_ apt-get install -y -qq chromium >/dev/null
fi

cd "$here/tests/e2e"
if [ ! -d node_modules/oidc-provider ] || [ ! -d node_modules/playwright-core ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup-e2e: npm ci in tests/e2e" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# The e2e run delivers notification email to a real SMTP server (aiosmtpd).
bash "$here/scripts/setup-smtp.sh" >&2
