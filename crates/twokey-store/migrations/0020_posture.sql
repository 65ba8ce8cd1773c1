-- The current posture of the AWS organisation as `twokey serve` last scanned
-- it (`[posture]`): one row per check and resource. Each scan replaces the
-- rows; the changes between scans (newly failing, fixed) are in the ledger.
-- `evidence` is the JSON the decision rests on. Portable SQL only (BIGINT, TEXT).

CREATE TABLE posture_results (
    check_id TEXT NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    resource TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    evidence TEXT NOT NULL,
    scanned_at BIGINT NOT NULL,
    PRIMARY KEY (check_id, account, region, resource)
);
