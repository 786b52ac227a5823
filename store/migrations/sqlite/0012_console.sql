-- The clinician's console (issue 13): admin accounts, the second factor of
-- a sender account (TOTP) and its recovery codes, and console sessions. As
-- before, times are unix nanoseconds, tokens and recovery codes are kept
-- only as SHA-256 hashes, and the TOTP secret is sealed (place senders,
-- totp_secret, the address), never in clear.

-- admin is 1 for an account that sees every sender's messages.
-- totp_secret is NULL until TOTP is enrolled; totp_step is the last time
-- step (unix time / 30 s) whose code was accepted: a code of that step or
-- an earlier one is refused, so a code seen over a shoulder cannot be
-- replayed within its window.
ALTER TABLE senders ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE senders ADD COLUMN totp_secret BLOB;
ALTER TABLE senders ADD COLUMN totp_step INTEGER NOT NULL DEFAULT 0;

-- Each recovery code works once, in place of a TOTP code.
CREATE TABLE sender_recovery_codes (
	address   TEXT NOT NULL REFERENCES senders (address) ON DELETE CASCADE,
	code_hash BLOB NOT NULL CHECK (length(code_hash) = 32),
	PRIMARY KEY (address, code_hash)
) STRICT, WITHOUT ROWID;

-- A console session is a sign-in in one browser. level 1: the password was
-- right, and a TOTP code (or its enrolment) is still to come; level 2:
-- signed in. It ends when idle too long or too old, at sign-out, or when
-- the password or the second factor changes.
CREATE TABLE console_sessions (
	token_hash BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
	address    TEXT    NOT NULL REFERENCES senders (address) ON DELETE CASCADE,
	level      INTEGER NOT NULL CHECK (level IN (1, 2)),
	created    INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX console_sessions_address ON console_sessions (address);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen);
CREATE INDEX console_sessions_created ON console_sessions (created);

-- The Sent page lists a sender's messages, newest first.
CREATE INDEX messages_direction_received ON messages (direction, received);
