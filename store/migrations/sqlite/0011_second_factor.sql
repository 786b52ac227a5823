-- The second factor (store/factor.go): one-time codes, remembered
-- browsers, and the date of birth a sender chose for a recipient. No row
-- refers to recipients: a code is sent and a browser remembered on a first
-- visit, before the account exists, and a date of birth arrives with a
-- message, before anyone opened its link.

-- The live one-time code of a phone number, at most one: a new code
-- replaces it, a right answer or its last wrong try deletes it. Kept only
-- as an HMAC under a key derived from data key key_id, since six digits
-- hashed plainly would be read back from a copy of the database in a
-- million guesses.
CREATE TABLE recipient_codes (
	phone   TEXT    PRIMARY KEY, -- E.164
	mac     BLOB    NOT NULL CHECK (length(mac) = 32),
	key_id  INTEGER NOT NULL,
	channel TEXT    NOT NULL,    -- "sms"; later "email"
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL,
	tries   INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

-- A browser that proved it is the patient's: it holds a random token in a
-- cookie, kept here as its SHA-256, for each number it proved. Until
-- expires, that number asks it for no code.
CREATE TABLE recipient_devices (
	token_hash BLOB    NOT NULL CHECK (length(token_hash) = 32),
	phone      TEXT    NOT NULL,
	created    INTEGER NOT NULL,
	expires    INTEGER NOT NULL,
	PRIMARY KEY (token_hash, phone)
) STRICT, WITHOUT ROWID;
CREATE INDEX recipient_devices_phone ON recipient_devices (phone);

-- The date of birth a sender gave for a phone number, as argon2id of
-- "YYYY-MM-DD" (PHC string). The latest given counts.
CREATE TABLE recipient_checks (
	phone         TEXT    PRIMARY KEY,
	date_of_birth TEXT    NOT NULL,
	updated       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
