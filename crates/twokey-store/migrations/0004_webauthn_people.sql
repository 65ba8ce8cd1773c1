-- Web UI: security keys for step-up MFA (WebAuthn) and the directory of
-- people seen through single sign-on (for notifications). Portable SQL only
-- (BIGINT, TEXT).

-- One row per registered credential. `passkey` is the verifier's stored
-- credential (public key, counter) as JSON; adding and removing a row happen
-- in the same transaction as their ledger entry.
CREATE TABLE webauthn_credentials (
    id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX webauthn_credentials_identity ON webauthn_credentials (identity);

-- People as their identity provider last described them: name, email and
-- groups from the ID token (or userinfo) at their latest sign-in.
CREATE TABLE people (
    identity TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,
    groups TEXT NOT NULL,
    seen_at BIGINT NOT NULL
);
