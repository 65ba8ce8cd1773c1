-- Split custody of root secrets (twokey-custody). The server keeps only
-- sealed envelopes (age files, base64): a custodian's share sealed to their
-- key, and a release sealed to the requester's one-time key. Nothing here
-- is readable without a private key the server never sees. Portable SQL only.

-- One row per sealed secret: the current seal generation, and whether it
-- was released since (needs rotation until sealed again).
CREATE TABLE custody_secrets (
    secret_id TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    sealed_at BIGINT NOT NULL,
    sealed_by TEXT NOT NULL,
    needs_rotation BIGINT NOT NULL DEFAULT 0,
    released_at BIGINT,
    released_for TEXT
);

-- The current generation's shares, one per custodian.
CREATE TABLE custody_shares (
    secret_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    share_index BIGINT NOT NULL,
    custodian TEXT NOT NULL,
    recipient TEXT NOT NULL,
    envelope TEXT NOT NULL,
    PRIMARY KEY (secret_id, share_index)
);

-- A custody request's one-time recipient (public key) and the generation
-- it opens; set once by the requester.
CREATE TABLE custody_requests (
    request_id TEXT PRIMARY KEY,
    secret_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    recipient TEXT NOT NULL
);

-- Releases: a custodian's share re-sealed to the request's one-time key.
CREATE TABLE custody_releases (
    request_id TEXT NOT NULL,
    share_index BIGINT NOT NULL,
    custodian TEXT NOT NULL,
    envelope TEXT NOT NULL,
    released_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, share_index)
);
