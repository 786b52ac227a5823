-- Several gateway nodes on one database (issue 11): SQLite's 0007.
--
-- Outbox jobs are claimed for a lease (store/claim.go): claims counts the
-- claims of a job, and the latest one is the only one whose outcome is
-- recorded; lease_until (unix nanoseconds, 0 for none) is when the claim
-- runs out and the job, if still pending, may be claimed again.
ALTER TABLE jobs ADD COLUMN claims BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;

-- The SMS rate (sms.rate) of the whole cluster, as a theoretical arrival
-- time (GCRA, store/smsrate.go). One row, updated atomically by every node
-- that takes a slot.
CREATE TABLE sms_rate (
	id  BIGINT PRIMARY KEY CHECK (id = 1),
	tat BIGINT NOT NULL
);
INSERT INTO sms_rate (id, tat) VALUES (1, 0);

-- What the sweeps did, node by node (store/sweep.go): 'start', then 'end'
-- or 'abandoned' (written by the next run when the node went away first),
-- in one order across the nodes (seq, max + 1 under the write lock); run
-- is the seq of the run's 'start'.
CREATE TABLE sweep_log (
	seq   BIGINT PRIMARY KEY,
	sweep TEXT   NOT NULL,
	node  TEXT   NOT NULL,
	event TEXT   NOT NULL CHECK (event IN ('start', 'end', 'abandoned')),
	run   BIGINT NOT NULL,
	at    BIGINT NOT NULL
);
CREATE INDEX sweep_log_sweep ON sweep_log (sweep, seq);
