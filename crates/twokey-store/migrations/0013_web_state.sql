-- Short-lived state of the web UI's ceremonies, shared by replicas so a
-- browser may reach any of them: OpenID Connect logins in flight (state,
-- nonce, PKCE verifier), WebAuthn registrations and approvals (bound to the
-- session hash and, for approvals, the request id), and `twokey login` codes.
-- Each row is used once: taking it deletes it. `key_hash` is the SHA-256 of
-- the kind and the browser-held value, so a database reader cannot replay a
-- ceremony from the table. Portable SQL only (BIGINT, TEXT).

CREATE TABLE web_state (
    key_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    session_hash TEXT NOT NULL,
    doc TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX web_state_expiry ON web_state (expires_at);
