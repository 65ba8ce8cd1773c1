// Step-up MFA and `twokey login`, in a real browser against a real OpenID
// Connect provider, with Chromium's virtual authenticator (CDP WebAuthn):
// bob registers a security key and approves alice's request with it; an
// approval without the key's assertion (forged POST), with a made-up one, or
// with a replayed one is refused; bob's CLI (token from `twokey login`
// through the browser) cannot approve that entitlement; bob removes the key.
// Adding and removing the key, and the MFA-confirmed approval, are in the ledger.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startProvider, CLIENT_ID, CLIENT_SECRET } from './oidc.mjs';
import { freePort, startTwokey, OUT, POLICY, BIN, REPO } from './harness.mjs';

const SHOTS = path.join(OUT, 'screenshots');
let op, tk, browser, smtp, slack;
const slackPosts = [];

// A real SMTP server (PyPI aiosmtpd, scripts/setup-smtp.sh) writing a maildir.
async function startSmtp() {
  const py = process.env.TWOKEY_AIOSMTPD_PYTHON || path.join(REPO, '.venv', 'aiosmtpd', 'bin', 'python');
  if (!fs.existsSync(py)) throw new Error(`aiosmtpd not found at ${py}: run scripts/setup-smtp.sh`);
  const port = await freePort();
  const maildir = fs.mkdtempSync(path.join(os.tmpdir(), 'twokey-maildir-'));
  const child = spawn(py, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', path.join(maildir, 'box')],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; ; i++) {
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100) throw new Error('aiosmtpd did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    stop: () => child.kill(),
    mails() {
      const dir = path.join(maildir, 'box', 'new');
      if (!fs.existsSync(dir)) return [];
      return fs.readdirSync(dir).map((f) => {
        const text = fs.readFileSync(path.join(dir, f), 'utf8').replace(/\r\n/g, '\n');
        const cut = text.indexOf('\n\n');
        const head = text.slice(0, cut).replace(/\n[ \t]/g, ' ');
        const h = (name) => (head.split('\n').find((l) => l.toLowerCase().startsWith(name + ':')) || '').slice(name.length + 1).trim();
        return { to: h('to'), subject: h('subject'), body: text.slice(cut + 2).replace(/=\n/g, '').replace(/=3D/g, '=') };
      });
    },
  };
}

async function waitMail(pred, what) {
  for (let i = 0; i < 150; i++) {
    const hit = smtp.mails().find(pred);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no mail: ${what}; got ${JSON.stringify(smtp.mails().map((m) => [m.to, m.subject]))}`);
}

const MFA_POLICY = POLICY + `
[[entitlement]]
name = "prod-mfa"
description = "Production access; approvers confirm with a security key"
provider = "exec"
requester_groups = ["eng"]
default_duration = "15m"
max_duration = "1h"
pending_timeout = "1h"
reason_required = true
approver_mfa = true
approval = { count = 1, from = ["approvers"] }

[entitlement.target]
grant = ["sh", "-c", "mkdir -p \\"$TWOKEY_E2E_DIR/grants\\" && touch \\"$TWOKEY_E2E_DIR/grants/$TWOKEY_REQUEST_ID\\""]
revoke = ["sh", "-c", "rm -f \\"$TWOKEY_E2E_DIR/grants/$TWOKEY_REQUEST_ID\\""]
check = ["sh", "-c", "test -e \\"$TWOKEY_E2E_DIR/grants/$TWOKEY_REQUEST_ID\\""]
timeout = "10s"

[auditors]            # the approvers read the audit log here (the admins always do)
groups = ["approvers"]
`;

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  const port = await freePort();
  // WebAuthn needs a host name for the relying party: use localhost.
  op = await startProvider({ redirectUris: [`http://localhost:${port}/ui/callback`] });
  smtp = await startSmtp();
  slack = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { try { slackPosts.push(JSON.parse(body)); } catch {} res.end('ok'); });
  });
  await new Promise((r) => slack.listen(0, '127.0.0.1', r));
  tk = await startTwokey({
    port, issuer: op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
    host: 'localhost', policy: MFA_POLICY,
    extra: `
[notifications]
slack_webhook_url = "http://127.0.0.1:${slack.address().port}/services/T0/B0/x"

[notifications.email]
host = "127.0.0.1"
port = ${smtp.port}
from = "twokey <twokey@example.com>"
security = "none"
`,
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  await tk?.stop();
  await op?.close();
  smtp?.stop();
  slack?.close();
});

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function login(who) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${tk.url}/ui/`);
  await page.waitForSelector('input[name=login]');
  await page.fill('input[name=login]', who);
  await page.fill('input[name=password]', 'any');
  await page.click('button[type=submit]');
  for (let i = 0; i < 5 && !page.url().startsWith(tk.url); i++) {
    await page.waitForLoadState();
    if (page.url().startsWith(tk.url)) break;
    const consent = page.locator('button[type=submit]');
    if (await consent.count()) await consent.first().click();
    await page.waitForTimeout(200);
  }
  await page.waitForURL((u) => u.href.startsWith(`${tk.url}/ui/`));
  return { ctx, page };
}

async function virtualKey(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'usb', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

async function request(page, entitlement, reason) {
  await page.goto(`${tk.url}/ui/request`);
  await page.selectOption('#entitlement', entitlement);
  await page.fill('#duration', '30m');
  await page.fill('#reason', reason);
  await page.click('button:has-text("Submit request")');
  await page.waitForURL(/\/ui\/requests\/req-/);
  return page.url().split('/').pop();
}

async function stateOf(page) {
  return (await page.locator('dl.facts .state').first().textContent()).trim();
}

async function waitState(page, want) {
  for (let i = 0; i < 50; i++) {
    await page.reload();
    if (want.includes(await stateOf(page))) return;
    await page.waitForTimeout(200);
  }
  assert.fail(`request never reached ${want}; is ${await stateOf(page)}`);
}

// Runs the twokey CLI; resolves {code, stdout, stderr}.
function cli(args, env) {
  return new Promise((resolve) => {
    const e = { ...process.env, ...env };
    delete e.TWOKEY_TOKEN;
    const child = spawn(BIN, args, { env: e });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('bob approves with his security key; without it nothing is approved, not even from the CLI', async () => {
  // bob signs in first: SSO people are known (with their email claim) from their first sign-in.
  const bob = await login('bob');
  await virtualKey(bob.page);
  const alice = await login('alice');
  const id = await request(alice.page, 'prod-mfa', 'INC-77 step-up e2e');
  assert.equal(await stateOf(alice.page), 'pending');
  await shot(alice.page, 'mfa-01-alice-request-pending');
  const reqUrl = `${tk.url}/ui/requests/${id}`;

  // bob (an eligible approver, address from the SSO email claim) is asked by
  // email and Slack, with the link; alice is never asked to approve her own request.
  const ask = await waitMail((m) => m.to.includes('bob@example.com') && m.subject.includes(id), 'approval request to bob');
  assert.match(ask.subject, /^Approval needed/);
  assert.ok(ask.body.includes(reqUrl), `link in the mail: ${ask.body}`);
  assert.match(ask.body, /security key/);
  for (let i = 0; i < 50 && !slackPosts.some((p) => (p.text || '').includes(reqUrl)); i++) await new Promise((r) => setTimeout(r, 100));
  const post = slackPosts.find((p) => (p.text || '').includes(reqUrl));
  assert.ok(post, `slack got the request: ${JSON.stringify(slackPosts)}`);
  assert.match(post.text, /For: bob/);

  // No key yet: no approve button, a pointer to the keys page.
  await bob.page.goto(reqUrl);
  await bob.page.waitForSelector('#mfa-note');
  assert.match(await bob.page.textContent('#mfa-note'), /Add a security key/);
  assert.equal(await bob.page.locator('button:has-text("Approve")').count(), 0);
  await shot(bob.page, 'mfa-02-bob-request-needs-key');

  // Register a key with the virtual authenticator.
  await bob.page.click('a:has-text("Add a security key")');
  await bob.page.waitForSelector('#no-keys');
  await shot(bob.page, 'mfa-03-bob-keys-empty');
  await bob.page.fill('#key-name', 'virtual key');
  await bob.page.click('button:has-text("Add a security key")');
  await bob.page.waitForSelector('#keys td:has-text("virtual key")');
  await shot(bob.page, 'mfa-04-bob-key-registered');

  // A forged approval without the assertion is refused, as is a made-up one.
  await bob.page.goto(reqUrl);
  const csrf = await bob.page.getAttribute('form[action="/ui/logout"] input[name=csrf]', 'value');
  const forged = await bob.page.request.post(`${reqUrl}/approve`, { form: { csrf, comment: 'no key' }, maxRedirects: 0 });
  assert.equal(forged.status(), 403, 'an approval without the key must be refused');
  assert.match(await forged.text(), /security key/);
  const madeUp = await bob.page.request.post(`${reqUrl}/approve`, {
    form: { csrf, comment: 'fake', ceremony: 'a'.repeat(64), assertion: '{"id":"x"}' }, maxRedirects: 0,
  });
  assert.equal(madeUp.status(), 403, 'a made-up assertion must be refused');

  // bob's CLI: `twokey login` through the browser, whoami works, approve is refused.
  const tokenFile = path.join(tk.dir, 'bob-cli', 'token.json');
  const env = { TWOKEY_TOKEN_FILE: tokenFile, TWOKEY_SERVER: tk.url };
  const e = { ...process.env, ...env };
  delete e.TWOKEY_TOKEN;
  const child = spawn(BIN, ['login', '--no-browser', '--timeout', '60'], { env: e });
  let loginOut = '', loginErr = '';
  const urlPromise = new Promise((resolve) => {
    child.stderr.on('data', (d) => {
      loginErr += d;
      const m = loginErr.match(/(http:\/\/\S+\/ui\/cli-login\?\S+)/);
      if (m) resolve(m[1]);
    });
  });
  child.stdout.on('data', (d) => { loginOut += d; });
  const loginRun = new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout: loginOut, stderr: loginErr })));
  const loginUrl = await urlPromise;
  assert.match(loginUrl, /port=\d+&state=[\w-]+&challenge=[\w-]{43}$/);
  await bob.page.goto(loginUrl);
  await bob.page.waitForSelector('#cli-allow');
  await shot(bob.page, 'mfa-05-bob-cli-login-confirm');
  await bob.page.click('#cli-allow');
  await bob.page.waitForURL(/127\.0\.0\.1:\d+\/callback/);
  await bob.page.waitForSelector('text=Signed in');
  await shot(bob.page, 'mfa-06-bob-cli-login-done');
  const done = await loginRun;
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, /Signed in as bob/);
  assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600, 'token file must be private');
  const who = await cli(['whoami'], env);
  assert.equal(who.code, 0, who.stderr);
  assert.match(who.stdout, /^bob \(/);
  const apiApprove = await cli(['approve', id, '--comment', 'from the cli'], env);
  assert.notEqual(apiApprove.code, 0, 'the CLI must not approve an approver_mfa entitlement');
  assert.match(apiApprove.stderr, /security key/);
  assert.match(apiApprove.stderr, /web UI/);
  assert.match(apiApprove.stderr, /HTTP 403/);

  // The real thing: Approve asks the (virtual) key, and the approval counts.
  await bob.page.goto(reqUrl);
  await bob.page.waitForSelector('button:has-text("Approve with security key")');
  await bob.page.fill('#comment', 'confirmed with my key');
  await shot(bob.page, 'mfa-07-bob-approve-with-key');
  let captured;
  bob.page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith(`/ui/requests/${id}/approve`)) captured = r.postData();
  });
  // The script asks the key, then submits the form: wait for that POST and
  // the page it leads to before looking.
  const approved = bob.page.waitForResponse((r) => r.request().method() === 'POST'
    && r.url().endsWith(`/ui/requests/${id}/approve`));
  await bob.page.click('button:has-text("Approve with security key")');
  const approvedResp = await approved;
  assert.equal(approvedResp.status(), 303, `approval answered ${approvedResp.status()}`);
  // The new page (after the redirect) shows the approval in the timeline.
  await bob.page.waitForSelector('ol.timeline >> text=review.approved');
  await bob.page.waitForLoadState('load');
  await waitState(bob.page, ['active']);
  const timeline = await bob.page.textContent('ol.timeline');
  assert.match(timeline, /review\.approved by bob confirmed with security key/);
  await shot(bob.page, 'mfa-08-bob-approved-with-key');
  assert.ok(captured && captured.includes('assertion='), 'the approval carried an assertion');

  // Replaying that signed answer for another request is refused (single use, bound to the request).
  const id2 = await request(alice.page, 'prod-mfa', 'INC-78 second');
  const replay = Object.fromEntries(new URLSearchParams(captured));
  const replayed = await bob.page.request.post(`${tk.url}/ui/requests/${id2}/approve`, { form: replay, maxRedirects: 0 });
  assert.equal(replayed.status(), 403, 'a replayed assertion must be refused');
  await bob.page.goto(`${tk.url}/ui/requests/${id2}`);
  assert.equal(await stateOf(bob.page), 'pending');

  // alice is told by email that it was approved and is active; never asked to approve.
  await waitMail((m) => m.to.includes('alice@example.com') && m.subject.startsWith('Active') && m.subject.includes(id), 'active mail to alice');
  assert.ok(!smtp.mails().some((m) => m.to.includes('alice@example.com') && m.subject.startsWith('Approval needed')),
    'the requester was asked to approve');

  // alice sees the grant.
  await alice.page.goto(`${tk.url}/ui/`);
  assert.match(await alice.page.textContent('section:has(h2:has-text("My active grants"))'), new RegExp(id));
  await shot(alice.page, 'mfa-09-alice-dashboard-active');

  // bob removes his key; both key events are in the ledger.
  await bob.page.goto(`${tk.url}/ui/keys`);
  await bob.page.click('button:has-text("Remove")');
  await bob.page.waitForSelector('#no-keys');
  await shot(bob.page, 'mfa-10-bob-key-removed');
  await bob.page.goto(`${tk.url}/ui/audit`);
  const audit = await bob.page.textContent('table');
  for (const kind of ['mfa.key_added', 'mfa.key_removed', 'token.issued', 'review.approved']) {
    assert.ok(audit.includes(kind), `audit has ${kind}`);
  }
  assert.match(await bob.page.textContent('[role=status]'), /^(Verified|Consistent):/);
  await shot(bob.page, 'mfa-11-audit-key-events');

  // The policy page shows the setting.
  await bob.page.goto(`${tk.url}/ui/policy`);
  assert.match(await bob.page.textContent('table'), /with security key/);
  await shot(bob.page, 'mfa-12-policy-approver-mfa');

  // CSP allows only this origin's script.
  const resp = await bob.page.request.get(`${tk.url}/ui/keys`);
  assert.match(resp.headers()['content-security-policy'], /script-src 'self'/);
  assert.doesNotMatch(await resp.text(), /<script>/);
  for (const c of [alice, bob]) await c.ctx.close();
});
