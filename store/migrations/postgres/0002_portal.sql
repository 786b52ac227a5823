-- The recipient's portal, as SQLite's 0002: accounts of phone numbers,
-- browser sessions and password resets.

CREATE TABLE recipients (
	phone          TEXT   PRIMARY KEY,
	password       TEXT   NOT NULL,
	recovery_email BYTEA,
	created        BIGINT NOT NULL
);

CREATE TABLE sessions (
	token_hash BYTEA  PRIMARY KEY CHECK (length(token_hash) = 32),
	phone      TEXT   NOT NULL REFERENCES recipients (phone) ON DELETE CASCADE,
	created    BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL
);
CREATE INDEX sessions_phone ON sessions (phone);
CREATE INDEX sessions_last_seen ON sessions (last_seen);
CREATE INDEX sessions_created ON sessions (created);

CREATE TABLE reset_tokens (
	token_hash BYTEA  PRIMARY KEY CHECK (length(token_hash) = 32),
	phone      TEXT   NOT NULL REFERENCES recipients (phone) ON DELETE CASCADE,
	created    BIGINT NOT NULL,
	expires    BIGINT NOT NULL
);
CREATE INDEX reset_tokens_phone ON reset_tokens (phone);
CREATE INDEX reset_tokens_expires ON reset_tokens (expires);

DROP INDEX conversations_phone;
CREATE INDEX conversations_phone ON conversations (phone, last_activity);

CREATE INDEX jobs_due_kind ON jobs (kind, next_attempt, id) WHERE state = 'pending';
