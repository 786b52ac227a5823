-- The first schema, for PostgreSQL: the same tables as SQLite's 0001
-- (see migrations/sqlite/0001_init.sql for what each holds and why), in
-- PostgreSQL's types. Every time is a BIGINT of unix nanoseconds (UTC).
-- Ids are given by the store (max(id) + 1 under the write lock, so that a
-- value can be sealed for its row before the row exists): no sequences.

CREATE TABLE blobs (
	id         BIGINT PRIMARY KEY,
	state      TEXT   NOT NULL CHECK (state IN ('pending', 'committed')),
	chunk_size BIGINT NOT NULL CHECK (chunk_size > 0),
	size       BIGINT NOT NULL DEFAULT 0,
	created    BIGINT NOT NULL
);
CREATE INDEX blobs_pending ON blobs (created) WHERE state = 'pending';

-- Sealed chunks are bytea rows of the same size as SQLite's. Their bytes
-- are ciphertext and never compress: storing them uncompressed spares the
-- attempt.
CREATE TABLE chunks (
	blob_id BIGINT NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
	seq     BIGINT NOT NULL,
	data    BYTEA  NOT NULL,
	PRIMARY KEY (blob_id, seq)
);
ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE messages (
	id         BIGINT PRIMARY KEY,
	direction  BIGINT NOT NULL,
	sender     TEXT   NOT NULL,
	received   BIGINT NOT NULL,
	auth       TEXT   NOT NULL,
	size       BIGINT NOT NULL,
	part_count BIGINT NOT NULL,
	manifest   BYTEA  NOT NULL
);

CREATE TABLE parts (
	message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	idx        BIGINT NOT NULL,
	kind       BIGINT NOT NULL,
	size       BIGINT NOT NULL,
	blob_id    BIGINT NOT NULL UNIQUE REFERENCES blobs (id),
	PRIMARY KEY (message_id, idx)
);

-- Deleting a part (or its message) deletes its sealed content.
CREATE FUNCTION parts_shred() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM blobs WHERE id = OLD.blob_id;
	RETURN NULL;
END;
$$;
CREATE TRIGGER parts_shred AFTER DELETE ON parts FOR EACH ROW EXECUTE FUNCTION parts_shred();

CREATE TABLE conversations (
	id            BIGINT PRIMARY KEY,
	phone         TEXT   NOT NULL,
	sender        TEXT   NOT NULL,
	created       BIGINT NOT NULL,
	last_activity BIGINT NOT NULL
);
CREATE INDEX conversations_phone ON conversations (phone);

CREATE TABLE links (
	token_hash      BYTEA  PRIMARY KEY CHECK (length(token_hash) = 32),
	conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	created         BIGINT NOT NULL
);
CREATE INDEX links_conversation ON links (conversation_id);

CREATE TABLE conversation_messages (
	conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	message_id      BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	PRIMARY KEY (conversation_id, message_id)
);
CREATE INDEX conversation_messages_message ON conversation_messages (message_id);

CREATE TABLE senders (
	address  TEXT   PRIMARY KEY,
	password TEXT   NOT NULL,
	created  BIGINT NOT NULL
);

CREATE TABLE jobs (
	id           BIGINT PRIMARY KEY,
	kind         TEXT   NOT NULL,
	payload      BYTEA  NOT NULL,
	state        TEXT   NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
	attempts     BIGINT NOT NULL DEFAULT 0,
	next_attempt BIGINT NOT NULL,
	last_error   TEXT   NOT NULL DEFAULT '',
	created      BIGINT NOT NULL,
	updated      BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (next_attempt, id) WHERE state = 'pending';
