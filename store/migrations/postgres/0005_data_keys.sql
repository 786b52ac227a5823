-- Data keys, as SQLite's 0005: small sealed values are encrypted under a
-- random data key, and only the data key is an age file.
CREATE TABLE data_keys (
	id      BIGINT PRIMARY KEY,
	sealed  BYTEA  NOT NULL,
	created BIGINT NOT NULL
);
