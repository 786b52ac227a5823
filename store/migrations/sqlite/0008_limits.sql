-- Limits that every node of a cluster shares and that outlive a restart
-- (store/strikes.go, store/authfailures.go): the portal's lockouts, its
-- reset-request and audit-flood limits, and the AUTH throttle's failure
-- counts with the logins it has seen succeed. Until now they lived in each
-- process's memory.
--
-- Keys name who is counted, in clear, as elsewhere in the schema: phone
-- numbers, client addresses (an IPv4 address or an IPv6 /64), sender
-- account names as typed at AUTH. Never a password, a token or content.
-- Times are unix nanoseconds. Every row says when it stops counting
-- anything (expires): the writes and the daemon's sweep delete it then, and
-- the writes keep each kind of key under a cap (see the Go), so that a
-- flood of distinct keys cannot grow the tables without bound.

-- Strikes against a key (wrong passwords, reset requests, audit events
-- without content) in a sliding window; Max of them within the window lock
-- the key for one window. times holds the strikes still within the window,
-- oldest first, each an 8-byte big-endian number: at most Max - 1 of them,
-- since the Max-th locks the key and clears them.
CREATE TABLE limit_strikes (
	kind    TEXT    NOT NULL,  -- 'login', 'reset', 'audit'
	key     TEXT    NOT NULL,  -- 'phone:+12125550100', 'addr:192.0.2.1', …
	times   BLOB    NOT NULL CHECK (length(times) % 8 = 0),
	until   INTEGER NOT NULL,  -- locked until then; 0: never locked
	last    INTEGER NOT NULL,  -- the last strike
	expires INTEGER NOT NULL,  -- the row counts nothing from then on
	PRIMARY KEY (kind, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX limit_strikes_expires ON limit_strikes (expires);

-- The AUTH throttle's failed logins, per client address, per account and
-- per (client, account) pair ("192.0.2.1/32 jane@clinic.example"); a
-- pair's last success gives its client a password check of its own when
-- the account's checks are busy. A failure counts until window has passed
-- since the last one.
CREATE TABLE auth_failures (
	kind     TEXT    NOT NULL CHECK (kind IN ('addr', 'account', 'pair')),
	key      TEXT    NOT NULL,
	failures INTEGER NOT NULL,
	last     INTEGER NOT NULL,  -- the last failure; 0: none
	success  INTEGER NOT NULL,  -- pairs: the last success; 0: none
	expires  INTEGER NOT NULL,
	PRIMARY KEY (kind, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX auth_failures_expires ON auth_failures (expires);
