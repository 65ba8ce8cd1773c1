-- Named leases for singleton background work shared by replicas (the
-- reconciler): one row per name, held by one replica until it lapses.
-- Portable SQL only (BIGINT, TEXT).

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    lease_owner TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
