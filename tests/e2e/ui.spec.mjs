// End to end in a real browser against a real OpenID Connect provider:
// alice requests, bob approves, alice sees the grant, carol revokes it, and
// alice can neither see an approve button on her own request nor approve it
// with a forged form post.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startProvider, CLIENT_ID, CLIENT_SECRET } from './oidc.mjs';
import { freePort, startTwokey, OUT } from './harness.mjs';

const SHOTS = path.join(OUT, 'screenshots');
let op, tk, browser;

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  const port = await freePort();
  op = await startProvider({ redirectUris: [`http://127.0.0.1:${port}/ui/callback`] });
  tk = await startTwokey({ port, issuer: op.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
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
});

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// Signs `who` in through the provider's login (and consent) pages.
async function login(who) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${tk.url}/ui/`);
  await page.waitForSelector('input[name=login]');
  await shot(page, `${who}-01-provider-login`);
  await page.fill('input[name=login]', who);
  await page.fill('input[name=password]', 'any');
  await page.click('button[type=submit]');
  for (let i = 0; i < 5 && !page.url().startsWith(tk.url); i++) {
    // Consent screen of the provider's dev interactions.
    await page.waitForLoadState();
    if (page.url().startsWith(tk.url)) break;
    const consent = page.locator('button[type=submit]');
    if (await consent.count()) {
      await shot(page, `${who}-02-provider-consent`);
      await consent.first().click();
    }
    await page.waitForTimeout(200);
  }
  await page.waitForURL((u) => u.href.startsWith(`${tk.url}/ui/`));
  return { ctx, page };
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

test('alice requests, bob approves, alice sees the grant, carol revokes', async () => {
  // alice asks for access.
  const alice = await login('alice');
  await alice.page.waitForSelector('h1:has-text("Dashboard")');
  assert.match(await alice.page.textContent('.who'), /alice/);
  await shot(alice.page, 'alice-03-dashboard-empty');
  await alice.page.click('a:has-text("Request access")');
  await alice.page.waitForSelector('select#entitlement');
  await alice.page.fill('#duration', '30m');
  await alice.page.fill('#reason', 'INC-2211 e2e fix');
  await shot(alice.page, 'alice-04-request-form');
  await alice.page.click('button:has-text("Submit request")');
  await alice.page.waitForURL(/\/ui\/requests\/req-/);
  const reqUrl = alice.page.url();
  const id = reqUrl.split('/').pop();
  assert.equal(await stateOf(alice.page), 'pending');
  // No approve or deny button on one's own request.
  assert.equal(await alice.page.locator('button:has-text("Approve")').count(), 0);
  assert.equal(await alice.page.locator('button:has-text("Deny")').count(), 0);
  await alice.page.waitForSelector('#own-request');
  await shot(alice.page, 'alice-05-own-request-no-approve');

  // A forged approval post is refused: with her valid CSRF token (the broker
  // refuses self-approval) and without one (CSRF check).
  const csrf = await alice.page.getAttribute('form[action="/ui/logout"] input[name=csrf]', 'value');
  const forged = await alice.page.request.post(`${tk.url}/ui/requests/${id}/approve`, {
    form: { csrf, comment: 'self' }, maxRedirects: 0,
  });
  assert.equal(forged.status(), 403, 'self-approval must be refused');
  const noCsrf = await alice.page.request.post(`${tk.url}/ui/requests/${id}/approve`, {
    form: { comment: 'x' }, maxRedirects: 0,
  });
  assert.equal(noCsrf.status(), 403, 'a post without CSRF token must be refused');

  // bob approves in a second browser context.
  const bob = await login('bob');
  await bob.page.waitForSelector(`a:has-text("${id}")`);
  await shot(bob.page, 'bob-03-dashboard-waiting');
  await bob.page.click(`a:has-text("${id}")`);
  await bob.page.waitForSelector('button:has-text("Approve")');
  await bob.page.fill('#comment', 'looks right');
  await shot(bob.page, 'bob-04-request-approve');
  await bob.page.click('button:has-text("Approve")');
  await bob.page.waitForURL(reqUrl);
  await waitState(bob.page, ['active']);
  await shot(bob.page, 'bob-05-request-approved');

  // alice sees the active grant with time left.
  await alice.page.goto(`${tk.url}/ui/`);
  const activeSection = alice.page.locator('section:has(h2:has-text("My active grants"))');
  assert.match(await activeSection.textContent(), new RegExp(`${id}[\\s\\S]*active[\\s\\S]*left`));
  await shot(alice.page, 'alice-06-dashboard-active-grant');
  assert.ok(fs.existsSync(path.join(tk.dir, 'grants', id)), 'the provider applied the grant');

  // carol revokes it.
  const carol = await login('carol');
  await carol.page.goto(reqUrl);
  await carol.page.waitForSelector('button:has-text("Revoke now")');
  await shot(carol.page, 'carol-03-request-active');
  await carol.page.click('button:has-text("Revoke now")');
  await carol.page.waitForURL(reqUrl);
  await waitState(carol.page, ['revoked', 'ended', 'expired']);
  await shot(carol.page, 'carol-04-request-revoked');
  assert.ok(!fs.existsSync(path.join(tk.dir, 'grants', id)), 'the provider removed the grant');
  const timeline = await carol.page.textContent('ol.timeline');
  for (const kind of ['request.created', 'review.approved', 'grant.activated']) {
    assert.ok(timeline.includes(kind), `timeline has ${kind}: ${timeline}`);
  }

  // alice's view afterwards, the audit log and the policy.
  await alice.page.goto(`${tk.url}/ui/`);
  await shot(alice.page, 'alice-07-dashboard-after-revoke');
  // The audit log is for the admins and auditors: alice gets a 403, carol reads it.
  const denied = await alice.page.goto(`${tk.url}/ui/audit`);
  assert.equal(denied.status(), 403);
  await carol.page.goto(`${tk.url}/ui/audit`);
  assert.match(await carol.page.textContent('[role=status]'), /^(Verified|Consistent):/);
  await shot(carol.page, 'carol-08-audit-log');
  await alice.page.goto(`${tk.url}/ui/policy`);
  await shot(alice.page, 'alice-09-policy');

  // Security headers on the pages.
  const resp = await alice.page.request.get(`${tk.url}/ui/`);
  assert.match(resp.headers()['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(resp.headers()['x-frame-options'], 'DENY');
  assert.equal(resp.headers()['x-content-type-options'], 'nosniff');

  // Logout ends the session server-side.
  await alice.page.click('button:has-text("Sign out")');
  await alice.page.waitForSelector('h1:has-text("Signed out")');
  await shot(alice.page, 'alice-10-signed-out');
  for (const c of [alice, bob, carol]) await c.ctx.close();
});
