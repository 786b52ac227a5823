-- Operations and the REST API: API keys, idempotent requests, key rotation
-- and the readiness probe. As before, times are unix nanoseconds and
-- secrets are kept only as hashes.

-- An API key lets an integrator's software send as one sender account. The
-- key itself ("stx_" and 43 characters) is shown once; only its SHA-256 is
-- kept. prefix is its first characters, for an operator to tell keys apart.
CREATE TABLE api_keys (
	id        INTEGER PRIMARY KEY,
	key_hash  BLOB    NOT NULL UNIQUE CHECK (length(key_hash) = 32),
	prefix    TEXT    NOT NULL,
	sender    TEXT    NOT NULL REFERENCES senders (address) ON DELETE CASCADE,
	name      TEXT    NOT NULL DEFAULT '',
	created   INTEGER NOT NULL,
	last_used INTEGER,          -- NULL: never; updated at most once a minute
	revoked   INTEGER           -- NULL: live
) STRICT;
CREATE INDEX api_keys_sender ON api_keys (sender);

-- A request sent with an Idempotency-Key: the response it got, kept for a
-- day so that a retry gets the same answer instead of a second message.
-- key_hash is the SHA-256 of the client's key; fingerprint that of the
-- request's content, so that the same key with another body is refused.
CREATE TABLE api_idempotency (
	sender      TEXT    NOT NULL,
	key_hash    BLOB    NOT NULL CHECK (length(key_hash) = 32),
	fingerprint BLOB    NOT NULL CHECK (length(fingerprint) = 32),
	status      INTEGER NOT NULL,
	response    BLOB    NOT NULL, -- the JSON body: ids and states, no content
	created     INTEGER NOT NULL,
	PRIMARY KEY (sender, key_hash)
) STRICT, WITHOUT ROWID;
CREATE INDEX api_idempotency_created ON api_idempotency (created);

-- Key rotation re-wraps a blob's file key without touching its content: the
-- new age header is kept here, and payload_start says where, in the chunk
-- rows, the content (nonce and payload) begins; the old header's bytes in
-- the first chunk are zeroed. A blob never rekeyed has no header here and
-- payload_start 0: the chunks hold the whole age file.
ALTER TABLE blobs ADD COLUMN header BLOB;
ALTER TABLE blobs ADD COLUMN payload_start INTEGER NOT NULL DEFAULT 0;

-- The readiness probe writes its one row, to show that commits go through.
CREATE TABLE ops_probe (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	at INTEGER NOT NULL
) STRICT;
