-- A link token names its row (issue 15). Links were kept by the SHA-256 of
-- a random token, so each text's link went into its index at a random
-- place, for every message that joins its conversation. A new link's
-- token is its row's id followed by 16 random bytes (newLink); the row,
-- found by the id, keeps the SHA-256 of the whole token, compared in
-- constant time. Ids are given by the store (txmemo.go), in order.
--
-- The links sent before stay in links, found by their hash as before,
-- until they expire; new links go here.
CREATE TABLE numbered_links (
	id              BIGINT PRIMARY KEY,
	token_hash      BYTEA  NOT NULL CHECK (length(token_hash) = 32),
	conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	created         BIGINT NOT NULL
);
