-- The first schema. Every time is an INTEGER of unix nanoseconds (UTC).
-- Nothing a reader could learn content from is kept in a plain column:
-- bodies, attachments, subjects, names, filenames and outbox payloads are
-- age files; link tokens are kept as SHA-256 hashes.

-- A blob is one age file (a message part), kept as rows of fixed-size
-- chunks of ciphertext so that no row, and no buffer, holds a whole file.
-- A blob is 'pending' while a draft streams it in, and turns 'committed' in
-- the transaction that commits its message. Pending blobs left behind by a
-- crash or an abandoned session are swept away.
CREATE TABLE blobs (
	id         INTEGER PRIMARY KEY,
	state      TEXT    NOT NULL CHECK (state IN ('pending', 'committed')),
	chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
	size       INTEGER NOT NULL DEFAULT 0, -- ciphertext bytes, set at commit
	created    INTEGER NOT NULL
) STRICT;
CREATE INDEX blobs_pending ON blobs (created) WHERE state = 'pending';

-- Every chunk but a blob's last is exactly chunk_size bytes, so that an
-- offset maps onto a row without a search.
CREATE TABLE chunks (
	blob_id INTEGER NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
	seq     INTEGER NOT NULL,
	data    BLOB    NOT NULL,
	PRIMARY KEY (blob_id, seq)
) STRICT;

CREATE TABLE messages (
	id         INTEGER PRIMARY KEY,
	direction  INTEGER NOT NULL,
	sender     TEXT    NOT NULL, -- the checked address
	received   INTEGER NOT NULL,
	auth       TEXT    NOT NULL,
	size       INTEGER NOT NULL, -- plaintext bytes of all parts
	part_count INTEGER NOT NULL,
	-- A sealed JSON manifest: subject, display name, Message-ID,
	-- References, and each part's filename, content type and Content-ID.
	manifest   BLOB    NOT NULL
) STRICT;

CREATE TABLE parts (
	message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	idx        INTEGER NOT NULL,
	kind       INTEGER NOT NULL,
	size       INTEGER NOT NULL, -- plaintext bytes
	blob_id    INTEGER NOT NULL UNIQUE REFERENCES blobs (id),
	PRIMARY KEY (message_id, idx)
) STRICT;

-- Deleting a part (or its message) shreds its content: each part has its
-- own file key, and secure_delete zeroes the freed pages.
CREATE TRIGGER parts_shred AFTER DELETE ON parts BEGIN
	DELETE FROM blobs WHERE id = OLD.blob_id;
END;

CREATE TABLE conversations (
	id            INTEGER PRIMARY KEY,
	phone         TEXT    NOT NULL, -- E.164
	sender        TEXT    NOT NULL,
	created       INTEGER NOT NULL,
	last_activity INTEGER NOT NULL
) STRICT;
CREATE INDEX conversations_phone ON conversations (phone);

-- A link token opens one conversation. Only its SHA-256 is kept: a stolen
-- database opens nothing.
CREATE TABLE links (
	token_hash      BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
	conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	created         INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX links_conversation ON links (conversation_id);

CREATE TABLE conversation_messages (
	conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	message_id      INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	PRIMARY KEY (conversation_id, message_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX conversation_messages_message ON conversation_messages (message_id);

CREATE TABLE senders (
	address  TEXT    PRIMARY KEY, -- lowercase
	password TEXT    NOT NULL,    -- argon2id, PHC string format
	created  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The transactional outbox: a job is inserted in the transaction that
-- commits the message it is about. Payloads carry link tokens: sealed.
CREATE TABLE jobs (
	id           INTEGER PRIMARY KEY,
	kind         TEXT    NOT NULL,
	payload      BLOB    NOT NULL,
	state        TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT    NOT NULL DEFAULT '',
	created      INTEGER NOT NULL,
	updated      INTEGER NOT NULL
) STRICT;
CREATE INDEX jobs_due ON jobs (next_attempt, id) WHERE state = 'pending';
