#!/usr/bin/env bash
# Installs what the Approve-from-Slack test (crates/twokey/tests/slack.rs)
# reads from Slack's own packages on npm, into
# crates/twokey/tests/fixtures/slack/node_modules (gitignored):
#  - @slack/bolt: its `BlockAction` model (dist/types/actions/block-action.d.ts),
#    the shape of the `block_actions` payload the test sends, and its request
#    verifier (dist/receivers/verify-request.js), which the test runs with
#    node on every request it signs, so the test's signing is Slack's scheme
#    and not only twokey's reading of it;
#  - @slack/types: the Block Kit models (`Button`, `ActionsBlock`), checked
#    against the messages twokey posts.
# Neither package ships recorded payload files (checked: @slack/bolt 5.x,
# 1.0; @slack/interactive-messages 1.0, 1.7, 2.0), so the payload is built by
# the test from the published model.
# Idempotent. Prints the node_modules path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/crates/twokey/tests/fixtures/slack"
if [ ! -f "$dir/node_modules/@slack/bolt/package.json" ] \
   || [ ! -f "$dir/node_modules/@slack/types/package.json" ]; then
  mkdir -p "$dir"
  ( cd "$dir" && npm install --no-audit --no-fund --no-save --prefix . \
      @slack/bolt@5.1.0 >/dev/null )
fi
echo "$dir/node_modules"
