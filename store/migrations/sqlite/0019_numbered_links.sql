-- A link token names its row (issue 15). Links were kept by the SHA-256 of
-- a random token, so each text's link went into its table at a random
-- place: two pages written per message that joins its conversation, a
-- fifth of what it wrote, and again at the checkpoint. A new link's token
-- is its row's id followed by 16 random bytes (newLink); the row, found by
-- the id, keeps the SHA-256 of the whole token, compared in constant time.
-- Rows are appended in id order, onto the table's last page.
--
-- The links sent before stay in links, found by their hash as before,
-- until they expire; new links go here.
CREATE TABLE numbered_links (
	id              INTEGER PRIMARY KEY,
	token_hash      BLOB    NOT NULL CHECK (length(token_hash) = 32),
	conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	created         INTEGER NOT NULL
) STRICT;
