-- The clinician's console, as SQLite's 0011: admin accounts, TOTP and its
-- recovery codes, and console sessions.

ALTER TABLE senders ADD COLUMN admin BIGINT NOT NULL DEFAULT 0;
ALTER TABLE senders ADD COLUMN totp_secret BYTEA;
ALTER TABLE senders ADD COLUMN totp_step BIGINT NOT NULL DEFAULT 0;

CREATE TABLE sender_recovery_codes (
	address   TEXT  NOT NULL REFERENCES senders (address) ON DELETE CASCADE,
	code_hash BYTEA NOT NULL CHECK (length(code_hash) = 32),
	PRIMARY KEY (address, code_hash)
);

CREATE TABLE console_sessions (
	token_hash BYTEA  PRIMARY KEY CHECK (length(token_hash) = 32),
	address    TEXT   NOT NULL REFERENCES senders (address) ON DELETE CASCADE,
	level      BIGINT NOT NULL CHECK (level IN (1, 2)),
	created    BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL
);
CREATE INDEX console_sessions_address ON console_sessions (address);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen);
CREATE INDEX console_sessions_created ON console_sessions (created);

CREATE INDEX messages_direction_received ON messages (direction, received);
