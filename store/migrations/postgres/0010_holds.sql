-- Legal holds and deferred deletion, as SQLite's 0010 (store/hold.go).
CREATE TABLE holds (
	conversation_id BIGINT PRIMARY KEY REFERENCES conversations (id),
	reason          BYTEA  NOT NULL,
	placed_by       TEXT   NOT NULL,
	placed          BIGINT NOT NULL
);

CREATE TABLE conversation_deletes (
	conversation_id BIGINT PRIMARY KEY REFERENCES conversations (id),
	requested_by    TEXT   NOT NULL,
	requested       BIGINT NOT NULL,
	done            BIGINT
);

ALTER TABLE api_keys ADD COLUMN admin BIGINT NOT NULL DEFAULT 0;
