-- One history for SQLite and PostgreSQL: only portable types (BIGINT, TEXT)
-- and statements both understand.

CREATE TABLE ledger_head (
    id BIGINT PRIMARY KEY,
    size BIGINT NOT NULL,
    frontier TEXT NOT NULL
);
INSERT INTO ledger_head (id, size, frontier) VALUES (1, 0, '');

CREATE TABLE ledger (
    idx BIGINT PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    leaf_hash TEXT NOT NULL
);
CREATE INDEX ledger_subject ON ledger (subject);

CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    entitlement TEXT NOT NULL,
    requester TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    next_due BIGINT,
    lease_owner TEXT,
    lease_until BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    version BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX requests_due ON requests (next_due);
CREATE INDEX requests_requester ON requests (requester, state);
CREATE INDEX requests_state ON requests (state, entitlement);

CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);

CREATE TABLE policies (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    text TEXT NOT NULL,
    applied_at BIGINT NOT NULL
);

CREATE TABLE proposals (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    version BIGINT NOT NULL,
    doc TEXT NOT NULL
);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    doc TEXT NOT NULL,
    delivered_at BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX alerts_due ON alerts (delivered_at, next_attempt);

CREATE TABLE grant_secrets (
    request_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL
);
