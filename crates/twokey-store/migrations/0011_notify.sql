-- Outbox delivery per channel: one row for each (outbox row, delivery key)
-- that a channel has taken, written right after that channel accepted it.
-- A retry after one channel failed goes only to the channels without a row
-- here. For alerts the key is the sink; for notifications it is the notice
-- kind and the channel (one ledger entry can make a notice of each kind).
-- Portable SQL only (BIGINT, TEXT).

CREATE TABLE outbox_deliveries (
    outbox_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    delivered_at BIGINT NOT NULL,
    PRIMARY KEY (outbox_id, channel)
);
