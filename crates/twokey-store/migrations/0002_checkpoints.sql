-- Signed ledger checkpoints (C2SP tlog-checkpoint notes) and their
-- publication state. One row per tree size: the primary key is what makes
-- only one replica sign a given size.

CREATE TABLE checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT,
    publish_attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX checkpoints_unpublished ON checkpoints (published_at, size);
