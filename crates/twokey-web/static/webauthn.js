// twokey: security keys (WebAuthn) for step-up MFA. Served as a static file
// so the CSP can forbid inline script. Two jobs:
//  - the "Add a security key" form on /ui/keys (navigator.credentials.create);
//  - the Approve button of a request that needs a key (navigator.credentials.get):
//    it fetches a challenge bound to this session and request, asks the key,
//    and submits the approval form with the signed answer.
(function () {
  'use strict';

  function toBytes(b64url) {
    var s = b64url.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  async function post(url, body) {
    var r = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    var j = {};
    try { j = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
    return j;
  }

  function say(el, msg, bad) {
    if (!el) return;
    el.textContent = msg;
    el.className = bad ? 'error' : 'muted';
  }

  var reg = document.getElementById('register-key');
  if (reg) {
    reg.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var status = document.getElementById('webauthn-status');
      try {
        say(status, 'Touch your security key…');
        var csrf = reg.getAttribute('data-csrf');
        var start = await post('/ui/keys/register/start', { csrf: csrf, name: reg.elements.name.value });
        var pk = start.options.publicKey;
        pk.challenge = toBytes(pk.challenge);
        pk.user.id = toBytes(pk.user.id);
        (pk.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
        var cred = await navigator.credentials.create({ publicKey: pk });
        var credential = {
          id: cred.id,
          rawId: toB64url(cred.rawId),
          type: cred.type,
          extensions: cred.getClientExtensionResults(),
          response: {
            attestationObject: toB64url(cred.response.attestationObject),
            clientDataJSON: toB64url(cred.response.clientDataJSON),
          },
        };
        await post('/ui/keys/register/finish', { csrf: csrf, ceremony: start.ceremony, credential: credential });
        say(status, 'Key added.');
        window.location.reload();
      } catch (e) {
        say(status, 'The key was not added: ' + e.message, true);
      }
    });
  }

  var approve = document.querySelector('form[data-mfa-request]');
  if (approve) {
    approve.addEventListener('submit', async function (ev) {
      // Deny needs no key; only the Approve button asks for one.
      var submitter = ev.submitter;
      if (!submitter || submitter.value !== 'approve') return;
      if (approve.elements.assertion.value) return;
      ev.preventDefault();
      var status = document.getElementById('webauthn-status');
      try {
        say(status, 'Touch your security key to confirm the approval…');
        var id = approve.getAttribute('data-mfa-request');
        var start = await post('/ui/requests/' + encodeURIComponent(id) + '/mfa', { csrf: approve.elements.csrf.value });
        var pk = start.options.publicKey;
        pk.challenge = toBytes(pk.challenge);
        (pk.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
        var a = await navigator.credentials.get({ publicKey: pk });
        var assertion = {
          id: a.id,
          rawId: toB64url(a.rawId),
          type: a.type,
          extensions: a.getClientExtensionResults(),
          response: {
            authenticatorData: toB64url(a.response.authenticatorData),
            clientDataJSON: toB64url(a.response.clientDataJSON),
            signature: toB64url(a.response.signature),
            userHandle: a.response.userHandle ? toB64url(a.response.userHandle) : null,
          },
        };
        approve.elements.ceremony.value = start.ceremony;
        approve.elements.assertion.value = JSON.stringify(assertion);
        approve.submit();
      } catch (e) {
        say(status, 'Not approved: ' + e.message, true);
      }
    });
  }
})();
