-- The recipient's portal: accounts of phone numbers, browser sessions and
-- password resets. As in 0001, times are unix nanoseconds, tokens are kept
-- only as SHA-256 hashes, passwords as argon2id, and anything personal
-- beyond the phone number is sealed.

-- A recipient is the account of a phone number: one password for every
-- conversation with that number, set on the first visit.
CREATE TABLE recipients (
	phone          TEXT    PRIMARY KEY, -- E.164
	password       TEXT    NOT NULL,    -- argon2id, PHC string format
	recovery_email BLOB,                -- an age file; NULL when none was given
	created        INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A session is a login in one browser, which holds the token in a cookie.
-- It ends when idle too long or too old (the limits are configuration, not
-- schema), at logout, or when the password changes.
CREATE TABLE sessions (
	token_hash BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
	phone      TEXT    NOT NULL REFERENCES recipients (phone) ON DELETE CASCADE,
	created    INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_phone ON sessions (phone);
CREATE INDEX sessions_last_seen ON sessions (last_seen);
CREATE INDEX sessions_created ON sessions (created);

-- A reset token, mailed to the recovery address, lets its holder set a new
-- password once, until it expires.
CREATE TABLE reset_tokens (
	token_hash BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
	phone      TEXT    NOT NULL REFERENCES recipients (phone) ON DELETE CASCADE,
	created    INTEGER NOT NULL,
	expires    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX reset_tokens_phone ON reset_tokens (phone);
CREATE INDEX reset_tokens_expires ON reset_tokens (expires);

-- The inbox lists a phone's conversations, most recent activity first.
DROP INDEX conversations_phone;
CREATE INDEX conversations_phone ON conversations (phone, last_activity);

-- The SMS worker and the mail worker each drain their own kinds of job.
CREATE INDEX jobs_due_kind ON jobs (kind, next_attempt, id) WHERE state = 'pending';
