-- The second factor, as SQLite's 0011 (store/factor.go): one-time codes
-- as HMACs, remembered browsers as SHA-256 of their tokens, dates of birth
-- as argon2id.

CREATE TABLE recipient_codes (
	phone   TEXT   PRIMARY KEY,
	mac     BYTEA  NOT NULL CHECK (length(mac) = 32),
	key_id  BIGINT NOT NULL,
	channel TEXT   NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	tries   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE recipient_devices (
	token_hash BYTEA  NOT NULL CHECK (length(token_hash) = 32),
	phone      TEXT   NOT NULL,
	created    BIGINT NOT NULL,
	expires    BIGINT NOT NULL,
	PRIMARY KEY (token_hash, phone)
);
CREATE INDEX recipient_devices_phone ON recipient_devices (phone);

CREATE TABLE recipient_checks (
	phone         TEXT   PRIMARY KEY,
	date_of_birth TEXT   NOT NULL,
	updated       BIGINT NOT NULL
);
