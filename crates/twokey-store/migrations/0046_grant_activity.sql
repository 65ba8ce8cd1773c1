-- What each grant did: the activity records the guard attributed to a grant
-- (CloudTrail, the PostgreSQL server log, VPC flow logs), bounded per grant,
-- and per grant the counts and the ledger index of its latest digest
-- (`grant.activity`). A totals row is created in the transaction that makes
-- the grant active, so every grant that was active gets a digest when it
-- ends, also one that did nothing. Portable SQL only (BIGINT, TEXT).

CREATE TABLE grant_activity (
    request_id TEXT NOT NULL,
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    action TEXT NOT NULL,
    principal TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    location TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, source, event_id)
);
CREATE INDEX grant_activity_time ON grant_activity (request_id, event_time);

-- `kept`: rows in grant_activity; `overflow`: records beyond the bound,
-- counted only. `digested`: kept + overflow when the latest digest was
-- written (-1: none yet); `digest_index`: that digest's ledger index;
-- `revision`: how many digests were written.
CREATE TABLE grant_activity_totals (
    request_id TEXT PRIMARY KEY,
    kept BIGINT NOT NULL,
    overflow BIGINT NOT NULL,
    digested BIGINT NOT NULL,
    digest_index BIGINT,
    revision BIGINT NOT NULL
);
