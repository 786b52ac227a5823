-- Accounts that never lock a patient out for good (issue 12, part 1).
--
-- A recovery address is used for password resets only once its owner has
-- confirmed it, by opening a link mailed to it. Until then the address
-- waits in pending_email (sealed, like recovery_email), and the address in
-- force, if any, stays in force. recovery_confirmed is when the address in
-- recovery_email was confirmed; 0: never (an address kept from before this
-- migration was never confirmed, so it is not used for resets until it is).
--
-- An operator's `recipient reset` clears the password to '' (the next link
-- visit sets it up again, as on a first visit): NOT NULL stays true, and
-- no argon2id hash is ever ''.
ALTER TABLE recipients ADD COLUMN recovery_confirmed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN pending_email BLOB; -- sealed; NULL when none waits
ALTER TABLE recipients ADD COLUMN language TEXT NOT NULL DEFAULT ''; -- a BCP 47 tag the patient chose; '': none

-- A confirmation token, mailed to pending_email, confirms that address
-- once, until it expires. As every token, only its SHA-256 is kept.
CREATE TABLE confirm_tokens (
	token_hash BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
	phone      TEXT    NOT NULL REFERENCES recipients (phone) ON DELETE CASCADE,
	created    INTEGER NOT NULL,
	expires    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX confirm_tokens_phone ON confirm_tokens (phone);
CREATE INDEX confirm_tokens_expires ON confirm_tokens (expires);

-- The latest sign-ins of an account, for its account page: when, and,
-- sealed, the device (from the User-Agent, summarized) and the network
-- the browser came from. A few per account are kept.
CREATE TABLE sign_ins (
	phone  TEXT    NOT NULL REFERENCES recipients (phone) ON DELETE CASCADE,
	at     INTEGER NOT NULL,
	sealed BLOB    NOT NULL,
	PRIMARY KEY (phone, at)
) STRICT, WITHOUT ROWID;
