-- Operations and the REST API, as SQLite's 0004: API keys, idempotent
-- requests, key rotation and the readiness probe.

CREATE TABLE api_keys (
	id        BIGINT PRIMARY KEY,
	key_hash  BYTEA  NOT NULL UNIQUE CHECK (length(key_hash) = 32),
	prefix    TEXT   NOT NULL,
	sender    TEXT   NOT NULL REFERENCES senders (address) ON DELETE CASCADE,
	name      TEXT   NOT NULL DEFAULT '',
	created   BIGINT NOT NULL,
	last_used BIGINT,
	revoked   BIGINT
);
CREATE INDEX api_keys_sender ON api_keys (sender);

CREATE TABLE api_idempotency (
	sender      TEXT   NOT NULL,
	key_hash    BYTEA  NOT NULL CHECK (length(key_hash) = 32),
	fingerprint BYTEA  NOT NULL CHECK (length(fingerprint) = 32),
	status      BIGINT NOT NULL,
	response    BYTEA  NOT NULL,
	created     BIGINT NOT NULL,
	PRIMARY KEY (sender, key_hash)
);
CREATE INDEX api_idempotency_created ON api_idempotency (created);

ALTER TABLE blobs ADD COLUMN header BYTEA;
ALTER TABLE blobs ADD COLUMN payload_start BIGINT NOT NULL DEFAULT 0;

CREATE TABLE ops_probe (
	id BIGINT PRIMARY KEY CHECK (id = 1),
	at BIGINT NOT NULL
);
