-- Deploy gate (twokey-gate): webhook delivery de-duplication, per-project
-- locks, saved plans bound to a head commit, and who pushed each head.
-- Portable SQL only (BIGINT, TEXT).

CREATE TABLE gate_deliveries (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    repo TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE TABLE gate_locks (
    repo TEXT NOT NULL,
    project TEXT NOT NULL,
    workspace TEXT NOT NULL,
    pull BIGINT NOT NULL,
    head_sha TEXT NOT NULL,
    locked_by TEXT NOT NULL,
    locked_at BIGINT NOT NULL,
    PRIMARY KEY (repo, project, workspace)
);

CREATE TABLE gate_plans (
    repo TEXT NOT NULL,
    pull BIGINT NOT NULL,
    project TEXT NOT NULL,
    head_sha TEXT NOT NULL,
    plan_path TEXT NOT NULL,
    plan_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repo, pull, project)
);

CREATE TABLE gate_pushes (
    repo TEXT NOT NULL,
    pull BIGINT NOT NULL,
    head_sha TEXT NOT NULL,
    pusher TEXT NOT NULL,
    pushed_at BIGINT NOT NULL,
    PRIMARY KEY (repo, pull, head_sha)
);
