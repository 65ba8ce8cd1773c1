// Sign-in security against a hostile provider: a small fake OpenID Connect
// provider (node crypto, RS256) that issues the ID token each test asks for,
// so twokey's checks can be seen refusing tampered, expired, wrong-audience
// and wrong-nonce tokens, replayed state, missing CSRF tokens, session
// fixation and open redirects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import { freePort, startTwokey } from './harness.mjs';

const CLIENT = 'twokey-sec';
const SECRET = 'sec-secret-0123456789';
let tk, opServer, issuer;
const op = { mode: 'good', nonce: '', sub: 'alice-sub' };
const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
const b64 = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

function idToken() {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: issuer, sub: op.sub, aud: CLIENT, iat: now, exp: now + 300,
    nonce: op.nonce, preferred_username: 'alice', groups: ['eng'],
  };
  if (op.mode === 'expired') { claims.iat = now - 7200; claims.exp = now - 3600; }
  if (op.mode === 'wrong-aud') claims.aud = 'someone-else';
  if (op.mode === 'wrong-nonce') claims.nonce = 'not-the-nonce';
  if (op.mode === 'wrong-iss') claims.iss = 'http://127.0.0.1:1/evil';
  const head = { alg: 'RS256', kid: 'k1', typ: 'JWT' };
  const input = `${b64(head)}.${b64(claims)}`;
  const sig = crypto.sign('sha256', Buffer.from(input), privateKey).toString('base64url');
  if (op.mode === 'tampered') {
    // Signed for alice, then the subject changed to bob's.
    return `${b64(head)}.${b64({ ...claims, sub: 'bob-sub' })}.${sig}`;
  }
  if (op.mode === 'alg-none') return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
  return `${input}.${sig}`;
}

before(async () => {
  const opPort = await freePort();
  issuer = `http://127.0.0.1:${opPort}`;
  opServer = http.createServer((req, res) => {
    const json = (o) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(o)); };
    const u = new URL(req.url, issuer);
    if (u.pathname === '/.well-known/openid-configuration') {
      return json({
        issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`, userinfo_endpoint: `${issuer}/me`,
        response_types_supported: ['code'], subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if (u.pathname === '/jwks') return json({ keys: [jwk] });
    if (u.pathname === '/token') {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        const p = new URLSearchParams(body);
        if (!p.get('code_verifier')) { res.statusCode = 400; return json({ error: 'invalid_grant' }); }
        json({ access_token: 'at-1', token_type: 'Bearer', expires_in: 300, id_token: idToken() });
      });
      return;
    }
    if (u.pathname === '/me') return json({ sub: op.sub, groups: ['eng'] });
    res.statusCode = 404; res.end();
  });
  await new Promise((r) => opServer.listen(opPort, '127.0.0.1', r));
  tk = await startTwokey({ port: await freePort(), issuer, clientId: CLIENT, clientSecret: SECRET });
});

after(async () => {
  await tk?.stop();
  await new Promise((r) => opServer?.close(r));
});

function cookiesOf(resp) {
  const out = {};
  for (const c of resp.headers.getSetCookie()) {
    const [kv] = c.split(';');
    const i = kv.indexOf('=');
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

// Starts a login; returns the state, nonce and flow cookie.
async function begin(returnTo = '/ui/') {
  const r = await fetch(`${tk.url}/ui/login?return_to=${encodeURIComponent(returnTo)}`, { redirect: 'manual' });
  assert.equal(r.status, 303);
  const loc = new URL(r.headers.get('location'));
  assert.equal(loc.origin, issuer);
  assert.equal(loc.searchParams.get('code_challenge_method'), 'S256', 'PKCE');
  assert.ok(loc.searchParams.get('nonce'));
  const flow = cookiesOf(r).tk_flow;
  assert.ok(flow, 'state is bound to the browser');
  return { state: loc.searchParams.get('state'), nonce: loc.searchParams.get('nonce'), flow };
}

async function finish({ state, nonce, flow }, { mode = 'good', extraCookie = '' } = {}) {
  op.mode = mode;
  op.nonce = nonce;
  const cookie = [flow !== undefined ? `tk_flow=${flow}` : '', extraCookie].filter(Boolean).join('; ');
  return fetch(`${tk.url}/ui/callback?code=c1&state=${encodeURIComponent(state)}`, {
    redirect: 'manual', headers: cookie ? { cookie } : {},
  });
}

async function session() {
  const r = await finish(await begin());
  assert.equal(r.status, 303);
  const sid = cookiesOf(r).tk_session;
  assert.ok(sid);
  return sid;
}

test('a good ID token signs in; the session works', async () => {
  const sid = await session();
  const page = await fetch(`${tk.url}/ui/`, { headers: { cookie: `tk_session=${sid}` } });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /Signed in as <strong>alice<\/strong>/);
});

for (const mode of ['tampered', 'expired', 'wrong-aud', 'wrong-nonce', 'wrong-iss', 'alg-none']) {
  test(`an ID token that is ${mode} is refused`, async () => {
    const r = await finish(await begin(), { mode });
    assert.equal(r.status, 401, await r.text());
    assert.ok(!cookiesOf(r).tk_session, 'no session');
  });
}

test('a state is used once (replay refused)', async () => {
  const flow = await begin();
  assert.equal((await finish(flow)).status, 303);
  const again = await finish(flow);
  assert.equal(again.status, 400);
  assert.ok(!cookiesOf(again).tk_session);
});

test('a state not started in this browser is refused (login CSRF)', async () => {
  const flow = await begin();
  const r = await finish({ ...flow, flow: undefined });
  assert.equal(r.status, 400);
  const forged = await finish({ ...flow, flow: 'attacker' });
  assert.equal(forged.status, 400);
});

test('session fixation: a new session id at login; a planted one never works', async () => {
  const planted = 'attacker-chosen-session-id';
  const r = await finish(await begin(), { extraCookie: `tk_session=${planted}` });
  assert.equal(r.status, 303);
  const sid = cookiesOf(r).tk_session;
  assert.ok(sid && sid !== planted);
  const withPlanted = await fetch(`${tk.url}/ui/`, { redirect: 'manual', headers: { cookie: `tk_session=${planted}` } });
  assert.equal(withPlanted.status, 303);
  assert.match(withPlanted.headers.get('location'), /^\/ui\/login/);
});

test('open redirect: the return URL must be a path on this server', async () => {
  for (const evil of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)']) {
    const r = await finish(await begin(evil));
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/ui/', evil);
  }
  const ok = await finish(await begin('/ui/policy'));
  assert.equal(ok.headers.get('location'), '/ui/policy');
});

test('state-changing forms need the session CSRF token', async () => {
  const sid = await session();
  const headers = { cookie: `tk_session=${sid}`, 'content-type': 'application/x-www-form-urlencoded' };
  const body = 'entitlement=e2e&reason=INC-1&duration=10m';
  const missing = await fetch(`${tk.url}/ui/request`, { method: 'POST', redirect: 'manual', headers, body });
  assert.equal(missing.status, 403);
  const wrong = await fetch(`${tk.url}/ui/request`, { method: 'POST', redirect: 'manual', headers, body: `${body}&csrf=${'0'.repeat(64)}` });
  assert.equal(wrong.status, 403);
  const form = await (await fetch(`${tk.url}/ui/request`, { headers })).text();
  const csrf = form.match(/name="csrf" value="([0-9a-f]+)"/)[1];
  const good = await fetch(`${tk.url}/ui/request`, { method: 'POST', redirect: 'manual', headers, body: `${body}&csrf=${csrf}` });
  assert.equal(good.status, 303);
  assert.match(good.headers.get('location'), /^\/ui\/requests\/req-/);
  // Another session's token does not work either.
  const other = await session();
  const cross = await fetch(`${tk.url}/ui/request`, {
    method: 'POST', redirect: 'manual', headers: { ...headers, cookie: `tk_session=${other}` }, body: `${body}&csrf=${csrf}`,
  });
  assert.equal(cross.status, 403);
});

test('a session cookie is not an API token, and logout ends the session', async () => {
  const sid = await session();
  const api = await fetch(`${tk.url}/v1/whoami`, { headers: { authorization: `Bearer ${sid}` } });
  assert.equal(api.status, 401);
  const cookie = `tk_session=${sid}`;
  const page = await (await fetch(`${tk.url}/ui/`, { headers: { cookie } })).text();
  const csrf = page.match(/name="csrf" value="([0-9a-f]+)"/)[1];
  const out = await fetch(`${tk.url}/ui/logout`, {
    method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${csrf}`,
  });
  assert.equal(out.status, 200);
  const after = await fetch(`${tk.url}/ui/`, { redirect: 'manual', headers: { cookie } });
  assert.equal(after.status, 303);
});

test('pages carry security headers and cookies are HttpOnly + SameSite', async () => {
  const r = await fetch(`${tk.url}/ui/login`, { redirect: 'manual' });
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(r.headers.get('x-frame-options'), 'DENY');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.ok(r.headers.get('referrer-policy'));
  for (const c of r.headers.getSetCookie()) {
    assert.match(c, /HttpOnly/);
    assert.match(c, /SameSite=Lax/);
  }
});
