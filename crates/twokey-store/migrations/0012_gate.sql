-- Deploy gate (twokey-gate): durable webhook work and recoverable applies.
--
-- A delivery is `working` while a replica holds its lease (renewed while the
-- work runs), `done` once its work and evidence are recorded, `failed` when
-- some of it could not be recorded. A redelivery of a delivery that is not
-- done and whose lease lapsed (its replica died) resumes it; one that is done
-- is a replay. Rows from before this migration count as done.
ALTER TABLE gate_deliveries ADD COLUMN status TEXT NOT NULL DEFAULT 'done';
ALTER TABLE gate_deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE gate_deliveries ADD COLUMN lease_until BIGINT;
ALTER TABLE gate_deliveries ADD COLUMN attempts BIGINT NOT NULL DEFAULT 1;
ALTER TABLE gate_deliveries ADD COLUMN finished_at BIGINT;
-- When the background pass alerted that this delivery was left unfinished.
ALTER TABLE gate_deliveries ADD COLUMN alerted_at BIGINT;

-- A plan in `applying` is claimed by one worker (`claim_owner`) until
-- `claim_until` (renewed with its delivery's lease); a claim that lapsed is
-- an interrupted apply, resolved by the gate's recovery pass.
ALTER TABLE gate_plans ADD COLUMN delivery TEXT;
ALTER TABLE gate_plans ADD COLUMN claim_owner TEXT;
ALTER TABLE gate_plans ADD COLUMN claim_until BIGINT;
