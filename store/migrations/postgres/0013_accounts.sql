-- Accounts that never lock a patient out for good, as SQLite's 0011:
-- confirmed recovery addresses, the chosen language, recent sign-ins.
ALTER TABLE recipients ADD COLUMN recovery_confirmed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN pending_email BYTEA;
ALTER TABLE recipients ADD COLUMN language TEXT NOT NULL DEFAULT '';

CREATE TABLE confirm_tokens (
	token_hash BYTEA  PRIMARY KEY CHECK (length(token_hash) = 32),
	phone      TEXT   NOT NULL REFERENCES recipients (phone) ON DELETE CASCADE,
	created    BIGINT NOT NULL,
	expires    BIGINT NOT NULL
);
CREATE INDEX confirm_tokens_phone ON confirm_tokens (phone);
CREATE INDEX confirm_tokens_expires ON confirm_tokens (expires);

CREATE TABLE sign_ins (
	phone  TEXT   NOT NULL REFERENCES recipients (phone) ON DELETE CASCADE,
	at     BIGINT NOT NULL,
	sealed BYTEA  NOT NULL,
	PRIMARY KEY (phone, at)
);
