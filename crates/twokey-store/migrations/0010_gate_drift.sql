-- Deploy gate (twokey-gate): the scheduled drift check of each project's
-- default branch. A replica claims a project's check with a lease, so
-- several replicas never run the same check at once. Portable SQL only.

CREATE TABLE gate_drift (
    repo TEXT NOT NULL,
    project TEXT NOT NULL,
    workspace TEXT NOT NULL,
    next_run BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_sha TEXT,
    last_result TEXT,
    PRIMARY KEY (repo, project, workspace)
);

-- Saved plan files, so any replica can apply the plan another one made
-- (base64 in TEXT: portable). Bound like gate_plans to the head commit.
CREATE TABLE gate_plan_files (
    repo TEXT NOT NULL,
    pull BIGINT NOT NULL,
    project TEXT NOT NULL,
    head_sha TEXT NOT NULL,
    plan_sha256 TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (repo, pull, project)
);
