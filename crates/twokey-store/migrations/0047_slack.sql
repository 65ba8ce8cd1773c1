-- Approve from Slack. Portable SQL only (BIGINT, TEXT).

-- Interactivity requests already taken, across replicas: the SHA-256 of the
-- verified `X-Slack-Signature` (which covers the timestamp and the body), so
-- the same signed request is refused the second time. A row is kept until
-- its timestamp is out of the accepted window (`expires_at`, Unix ms); after
-- that the window refuses the request anyway.
CREATE TABLE slack_seen (
    signature_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX slack_seen_expiry ON slack_seen (expires_at);

-- Every approver message posted for a request (`chat.postMessage` answers
-- with `channel` and `ts`), so each is updated with `chat.update` once
-- someone acted. One per (request, Slack user): a retried delivery does not
-- post twice. `approver` is the twokey identity (`issuer|subject`) the
-- configured link maps the Slack user to.
CREATE TABLE slack_messages (
    request_id TEXT NOT NULL,
    slack_user TEXT NOT NULL,
    approver TEXT NOT NULL,
    channel TEXT NOT NULL,
    ts TEXT NOT NULL,
    posted_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, slack_user)
);
