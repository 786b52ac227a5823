-- Several gateway nodes on one database (issue 11), and on SQLite the one
-- process that serves the file.
--
-- Outbox jobs are claimed for a lease (store/claim.go): claims counts the
-- claims of a job, and the latest one is the only one whose outcome is
-- recorded; lease_until (unix nanoseconds, 0 for none) is when the claim
-- runs out and the job, if still pending, may be claimed again.
ALTER TABLE jobs ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;

-- The SMS rate (sms.rate) of the whole cluster, as a theoretical arrival
-- time (GCRA, store/smsrate.go): the next text may go at tat minus one
-- interval, or now if that is past. One row, updated atomically by every
-- node that takes a slot.
CREATE TABLE sms_rate (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	tat INTEGER NOT NULL
) STRICT;
INSERT INTO sms_rate (id, tat) VALUES (1, 0);

-- What the sweeps did, node by node (store/sweep.go): each run of a sweep
-- writes 'start' and then 'end', or the next run writes 'abandoned' for it
-- when its node went away first. seq orders the rows of every node (max +
-- 1 under the write lock), so that two runs of one sweep that overlapped
-- would show in it, whatever the nodes' clocks said; run is the seq of the
-- run's 'start'.
CREATE TABLE sweep_log (
	seq   INTEGER PRIMARY KEY,
	sweep TEXT    NOT NULL,
	node  TEXT    NOT NULL,
	event TEXT    NOT NULL CHECK (event IN ('start', 'end', 'abandoned')),
	run   INTEGER NOT NULL,
	at    INTEGER NOT NULL
) STRICT;
CREATE INDEX sweep_log_sweep ON sweep_log (sweep, seq);
