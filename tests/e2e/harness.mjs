// Shared helpers: free ports, starting `twokey serve --config` with an [sso]
// table, waiting for HTTP.
import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const OUT = path.join(REPO, 'test-output');

export function freePort() {
  return new Promise((resolve) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

export async function waitHttp(url, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {}
    if (Date.now() > end) throw new Error(`timeout waiting for ${url}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

// Policy for the e2e runs: SSO identities are matched by groups.
export const POLICY = `
groups = ["eng", "approvers", "admins"]   # groups that come from the SSO groups claim

[admins]
groups = ["admins"]
approvals = 1

[[entitlement]]
name = "e2e"
description = "A file exists while the grant is active"
provider = "exec"
requester_groups = ["eng"]
default_duration = "15m"
max_duration = "1h"
pending_timeout = "1h"
reason_required = true
approval = { count = 1, from = ["approvers"] }

[entitlement.target]
grant = ["sh", "-c", "mkdir -p \\"$TWOKEY_E2E_DIR/grants\\" && touch \\"$TWOKEY_E2E_DIR/grants/$TWOKEY_REQUEST_ID\\""]
revoke = ["sh", "-c", "rm -f \\"$TWOKEY_E2E_DIR/grants/$TWOKEY_REQUEST_ID\\""]
check = ["sh", "-c", "test -e \\"$TWOKEY_E2E_DIR/grants/$TWOKEY_REQUEST_ID\\""]
timeout = "10s"
`;

export const BIN = process.env.TWOKEY_BIN || path.join(REPO, 'target', 'debug', 'twokey');

// Starts twokey with an [sso] table pointing at `issuer`. Returns {url, stop, dir}.
// `host` is the name in public_url (WebAuthn needs a host name such as
// localhost, not an IP address); twokey listens on 127.0.0.1 either way.
export async function startTwokey({ port, issuer, clientId, clientSecret, host = '127.0.0.1', policy = POLICY, extra = '' }) {
  const bin = BIN;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twokey-e2e-'));
  const url = `http://${host}:${port}`;
  fs.writeFileSync(path.join(dir, 'policy.toml'), policy);
  fs.writeFileSync(path.join(dir, 'twokey.toml'), `
listen = "127.0.0.1:${port}"
database = "sqlite://${dir}/twokey.db"
policy = "${dir}/policy.toml"
public_url = "${url}"

[sso]
issuer_url = "${issuer}"
client_id = "${clientId}"
client_secret = "${clientSecret}"
groups_claim = "groups"
scopes = ["groups"]
${extra}
`);
  const child = spawn(bin, ['serve', '--config', path.join(dir, 'twokey.toml')], {
    env: { ...process.env, TWOKEY_E2E_DIR: dir, TWOKEY_LOG: process.env.TWOKEY_LOG || 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitHttp(`http://127.0.0.1:${port}/healthz`);
  return {
    url,
    dir,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}
