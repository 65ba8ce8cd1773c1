// Shared helpers: free ports, starting `twokey serve --config` with an [sso]
// table, waiting for HTTP.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRoundRobin } from './round-robin.mjs';

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
//
// With TWOKEY_E2E_REPLICAS=2 (and TWOKEY_TEST_PG), `port` is a round-robin
// proxy in front of two `twokey serve` processes on one fresh PostgreSQL
// database, so every step of a browser's session may hit either replica.
export async function startTwokey({ port, issuer, clientId, clientSecret, host = '127.0.0.1', policy = POLICY, extra = '' }) {
  const bin = BIN;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twokey-e2e-'));
  const url = `http://${host}:${port}`;
  const replicas = Number(process.env.TWOKEY_E2E_REPLICAS || '1');
  let database = `sqlite://${dir}/twokey.db`;
  if (replicas > 1) {
    const pg = process.env.TWOKEY_TEST_PG;
    if (!pg) throw new Error('TWOKEY_E2E_REPLICAS needs TWOKEY_TEST_PG (a PostgreSQL admin URL)');
    const name = `tk_e2e_${crypto.randomBytes(6).toString('hex')}`;
    execFileSync('psql', [pg, '-qAtc', `CREATE DATABASE ${name}`]);
    database = pg.replace(/\/[^/]*$/, `/${name}`);
  }
  fs.writeFileSync(path.join(dir, 'policy.toml'), policy);
  const listenPorts = replicas > 1 ? await Promise.all(Array.from({ length: replicas }, () => freePort())) : [port];
  const children = [];
  for (const [i, p] of listenPorts.entries()) {
    const cfg = path.join(dir, `twokey-${i}.toml`);
    fs.writeFileSync(cfg, `
listen = "127.0.0.1:${p}"
database = "${database}"
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
    const child = spawn(bin, ['serve', '--config', cfg], {
      env: { ...process.env, TWOKEY_E2E_DIR: dir, TWOKEY_LOG: process.env.TWOKEY_LOG || 'warn' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(child);
    // One at a time: the first start creates the schema and the ledger key
    // (in the config's directory, shared by both).
    await waitHttp(`http://127.0.0.1:${p}/healthz`);
  }
  const proxy = replicas > 1 ? await startRoundRobin({ port, targets: listenPorts }) : null;
  const stopChild = (child) => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
  return {
    url,
    dir,
    replicas: listenPorts.length,
    hits: () => (proxy ? [...proxy.hits] : null),
    stop: async () => {
      if (proxy) {
        await proxy.stop();
        // Both replicas must have served this browser, or the run proved nothing.
        if (proxy.hits.some((n) => n === 0)) throw new Error(`round-robin: a replica served nothing: ${proxy.hits}`);
      }
      await Promise.all(children.map(stopChild));
    },
  };
}
