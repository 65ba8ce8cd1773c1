// The HTML report of `twokey posture aws --format html`, looked at in a real
// browser: it renders the summary by severity, each check's reason, each
// resource's status and the remediation; it loads nothing from anywhere (a
// self-contained file for an auditor); a value from AWS that looks like
// markup shows as text. The screenshot is kept in docs/posture-report.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const BIN = process.env.TWOKEY_BIN || path.join(ROOT, 'target/debug/twokey');
let browser, file;

before(async () => {
  // Facts collected from a seeded moto organisation (--save-facts), with one
  // resource name that looks like markup.
  const facts = JSON.parse(fs.readFileSync(path.join(HERE, 'fixtures/posture-facts.json'), 'utf8'));
  facts.accounts[1].scan.ok.iam.ok.users.push({ name: '<img src=x onerror=alert(1)>', arn: 'arn:aws:iam::000000000000:user/<b>x</b>', created_ms: 0, password: null, access_keys: [{ id: 'AKIAEXAMPLE', active: true, created_ms: 0 }] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twokey-report-'));
  const factsFile = path.join(dir, 'facts.json');
  fs.writeFileSync(factsFile, JSON.stringify(facts));
  let html;
  try {
    html = execFileSync(BIN, ['posture', 'aws', '--facts', factsFile, '--format', 'html', '--include-empty-vaults'], { encoding: 'utf8' });
  } catch (e) {
    assert.equal(e.status, 3, `twokey failed: ${e.stderr}`); // 3: checks fail, as seeded
    html = e.stdout;
  }
  file = path.join(dir, 'report.html');
  fs.writeFileSync(file, html);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
});

test('the posture report renders its key content, self-contained, escaped', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const external = [];
  page.on('request', (r) => { if (!r.url().startsWith('file:')) external.push(r.url()); });
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await page.goto(`file://${file}`);
  await page.waitForLoadState('load');

  await assert.doesNotReject(page.getByRole('heading', { name: 'Posture report' }).waitFor());
  // Summary by severity: a row per severity with its failing counts.
  const summary = page.getByRole('table', { name: 'Failing findings by severity' });
  for (const sev of ['critical', 'high', 'medium', 'low']) {
    assert.ok(await summary.getByText(new RegExp(`^${sev}$`, 'i')).isVisible(), `${sev} row`);
  }
  // A failing check, with why it matters, its resources and remediation.
  const scp = page.locator('#check-scp-monitoring_protected');
  assert.ok(await scp.isVisible());
  assert.match(await scp.innerText(), /Why it matters:/);
  assert.match(await scp.innerText(), /FAIL/);
  assert.match(await scp.innerText(), /aws organizations create-policy/);
  assert.match(await scp.innerText(), /resource "aws_organizations_policy"/);
  // Failing checks come before passing ones.
  const ids = await page.locator('section.check').evaluateAll((s) => s.map((x) => x.id));
  assert.ok(ids.length >= 14, `${ids.length} check sections`);
  // Markup from AWS is text, never markup; nothing was fetched; no script ran.
  assert.ok(await page.getByText('<img src=x onerror=alert(1)>').first().isVisible() || (await page.content()).includes('&lt;img src=x onerror=alert(1)&gt;'));
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.locator('script').count(), 0);
  assert.deepEqual(external, []);
  assert.deepEqual(dialogs, []);

  await page.screenshot({ path: path.join(ROOT, 'docs/posture-report.png'), fullPage: false });
  const png = fs.readFileSync(path.join(ROOT, 'docs/posture-report.png'));
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.ok(png.length > 20_000, `screenshot of ${png.length} bytes looks empty`);
  await page.close();
});
