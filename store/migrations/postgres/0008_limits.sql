-- Limits shared by every node and kept across restarts, as SQLite's 0008:
-- the portal's strike counters (lockouts, reset requests, audit floods)
-- and the AUTH throttle's failures and successes. Keys name people and
-- places in clear, never a password or token; every row expires.

CREATE TABLE limit_strikes (
	kind    TEXT   NOT NULL,
	key     TEXT   NOT NULL,
	times   BYTEA  NOT NULL CHECK (length(times) % 8 = 0),
	until   BIGINT NOT NULL,
	last    BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE INDEX limit_strikes_expires ON limit_strikes (expires);

CREATE TABLE auth_failures (
	kind     TEXT   NOT NULL CHECK (kind IN ('addr', 'account', 'pair')),
	key      TEXT   NOT NULL,
	failures BIGINT NOT NULL,
	last     BIGINT NOT NULL,
	success  BIGINT NOT NULL,
	expires  BIGINT NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE INDEX auth_failures_expires ON auth_failures (expires);
