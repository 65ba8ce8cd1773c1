-- GitHub posture (issue 13): the last status of each check per resource, so
-- a re-check knows a regression from a finding that was already known, and
-- the restore proposals that a second person approves.
-- Portable SQL only (BIGINT, TEXT).

CREATE TABLE github_posture_state (
    check_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    status TEXT NOT NULL,
    checked_at BIGINT NOT NULL,
    PRIMARY KEY (check_id, resource)
);

CREATE TABLE github_restores (
    id TEXT PRIMARY KEY,
    resource TEXT NOT NULL,
    state TEXT NOT NULL,
    doc TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX github_restores_resource ON github_restores (resource, state);
