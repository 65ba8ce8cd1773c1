-- The directory as an identity provider provisions it over SCIM 2.0
-- (RFC 7643/7644): users, groups and their members. Every row is written
-- only through `Change::directory`, in the same transaction as its ledger
-- entry. Portable SQL only (BIGINT, TEXT).

-- One SCIM User. `user_name_key` is the lower-cased userName (userName is
-- unique and case-insensitive, RFC 7643 section 4.1.1). `identity` is the
-- twokey identity (`issuer|subject`) the user is linked to, NULL while the
-- configured link attribute is absent. `active` is 1 or 0. `doc` is the
-- resource as stored (JSON, without `meta`). A deleted user keeps its row
-- (`deleted_at` set, inactive, userName freed) so the identity it linked
-- stays refused until the directory provisions it again.
CREATE TABLE scim_users (
    id TEXT PRIMARY KEY,
    user_name_key TEXT NOT NULL UNIQUE,
    external_id TEXT,
    identity TEXT,
    active BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT,
    doc TEXT NOT NULL
);
CREATE INDEX scim_users_identity ON scim_users (identity);
CREATE INDEX scim_users_external_id ON scim_users (external_id);

-- One SCIM Group; its members are in `scim_members` (and in `doc`).
CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    external_id TEXT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    doc TEXT NOT NULL
);

-- Group membership, by user id, so a person's groups are one indexed read.
CREATE TABLE scim_members (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_members_user ON scim_members (user_id);
