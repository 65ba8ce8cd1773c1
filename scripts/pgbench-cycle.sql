-- One request -> approve -> active cycle as PostgreSQL work, for pgbench
-- (scripts/bench-broker.sh runs it on the same server as twokey-bench and
-- prints twokey's cycles/s as a share of this limit). The schema is
-- twokey's own (migration 0001). Per cycle, as the broker writes it with one
-- change per transaction: create (head + ledger row + request row), approve
-- (head + ledger row + request update), claim (the scheduler's lease
-- UPDATE..RETURNING) and activate (head + ledger row + request update):
-- 4 commits, 3 ledger rows, 1 request insert, 3 request updates, 3 head
-- updates, with rows the size twokey's are. Reads (request by id) as the
-- broker's read before each decision. Each pgbench client has its own head
-- row (bench-broker.sh adds them): the limit is what the database does for
-- these rows and commits, with PostgreSQL's own WAL group commit, without
-- twokey's one-head serialisation (one head row per client would serialise
-- every commit on one fsync, a bound of the design, not of the database).
\set n random(1, 2000000000)
BEGIN;
UPDATE ledger_head SET size = size + 1 WHERE id = :client_id + 2 RETURNING size AS idx \gset
INSERT INTO ledger (idx, time_ms, kind, actor, subject, policy_hash, data, leaf_hash)
  VALUES (:client_id::bigint * 1000000000 + :idx - 1, 1700000000000, 'request.created', 'https://idp.example|u1', 'req-' || :client_id || '-' || :n,
          repeat('a', 64), '{"entitlement":"e1","duration_ms":3600000,"reason":"bench","ticket":null}', repeat('b', 64));
INSERT INTO requests (id, entitlement, requester, state, created_at, next_due, version, doc)
  VALUES ('req-' || :client_id || '-' || :n, 'e1', 'https://idp.example|u1', 'pending', 1700000000000, NULL, 0, repeat('d', 700));
UPDATE ledger_head SET frontier = repeat('f', 720) WHERE id = :client_id + 2;
COMMIT;
SELECT doc FROM requests WHERE id = 'req-' || :client_id || '-' || :n;
BEGIN;
UPDATE ledger_head SET size = size + 1 WHERE id = :client_id + 2 RETURNING size AS idx \gset
INSERT INTO ledger (idx, time_ms, kind, actor, subject, policy_hash, data, leaf_hash)
  VALUES (:client_id::bigint * 1000000000 + :idx - 1, 1700000000001, 'review.approved', 'https://idp.example|bob', 'req-' || :client_id || '-' || :n,
          repeat('a', 64), '{"decision":"approve","comment":""}', repeat('b', 64));
UPDATE requests SET state = 'approved', next_due = 1700000000001, version = 1, doc = repeat('e', 800),
  lease_owner = NULL, lease_until = NULL, attempts = 0, last_error = NULL
  WHERE id = 'req-' || :client_id || '-' || :n AND version = 0;
UPDATE ledger_head SET frontier = repeat('f', 720) WHERE id = :client_id + 2;
COMMIT;
UPDATE requests SET lease_owner = 'bench', lease_until = 1700000030000
  WHERE id = 'req-' || :client_id || '-' || :n AND next_due <= 1700000000002 RETURNING doc;
BEGIN;
UPDATE ledger_head SET size = size + 1 WHERE id = :client_id + 2 RETURNING size AS idx \gset
INSERT INTO ledger (idx, time_ms, kind, actor, subject, policy_hash, data, leaf_hash)
  VALUES (:client_id::bigint * 1000000000 + :idx - 1, 1700000000002, 'grant.activated', 'twokey|system', 'req-' || :client_id || '-' || :n,
          repeat('a', 64), '{"starts_at_ms":1700000000002,"ends_at_ms":1700003600002}', repeat('b', 64));
UPDATE requests SET state = 'active', next_due = 1700003600002, version = 2, doc = repeat('g', 900),
  lease_owner = NULL, lease_until = NULL, attempts = 0, last_error = NULL
  WHERE id = 'req-' || :client_id || '-' || :n AND version = 1;
UPDATE ledger_head SET frontier = repeat('f', 720) WHERE id = :client_id + 2;
COMMIT;
