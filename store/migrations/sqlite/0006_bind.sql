-- Every sealed value is bound to its place (store/place.go): the table,
-- column and row it was sealed for are in its additional data, so a value
-- copied into another row in plain SQL no longer opens. Values sealed
-- before this migration are re-sealed with their place by Go code that
-- runs at open (store/bind.go), in short transactions, resumed if cut
-- short; this row says it has not finished. Until it has, the older forms
-- still open; afterwards they are refused.
CREATE TABLE bind_migration (
	id INTEGER PRIMARY KEY CHECK (id = 1)
) STRICT;
INSERT INTO bind_migration (id) VALUES (1);

-- The idempotency fingerprint is kept as an HMAC, under a key derived from
-- data key key_id, of the request's fingerprint and its row (sender and
-- key): a stolen database no longer confirms a guess of a message's
-- content. 0 marks a bare SHA-256 from before, which the migration turns
-- into an HMAC (the SHA-256 is what the HMAC is taken of).
ALTER TABLE api_idempotency ADD COLUMN key_id INTEGER NOT NULL DEFAULT 0;
