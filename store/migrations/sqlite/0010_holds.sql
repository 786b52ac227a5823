-- Legal holds and deferred deletion (store/hold.go). As before, times are
-- unix nanoseconds.

-- A conversation under legal hold is never purged: not by the retention
-- sweep, not by a sender's delete. reason is the operator's free text (a
-- matter, a subpoena, often a patient's name), sealed for its place
-- (holds.reason.<conversation id>) and never written to the audit trail or
-- a log; placed_by is who placed it. Removing the hold deletes the row.
-- No ON DELETE: a held conversation's row cannot go either.
CREATE TABLE holds (
	conversation_id INTEGER PRIMARY KEY REFERENCES conversations (id),
	reason          BLOB    NOT NULL,
	placed_by       TEXT    NOT NULL,
	placed          INTEGER NOT NULL
) STRICT;

-- A delete of a conversation: requested, and done (its content purged)
-- at once, or deferred while the conversation is held (done NULL) and
-- done when the hold is removed. The row stays once done: the
-- conversation is deleted, and a message it shared with another
-- conversation is purged once none of them still needs it.
CREATE TABLE conversation_deletes (
	conversation_id INTEGER PRIMARY KEY REFERENCES conversations (id),
	requested_by    TEXT    NOT NULL,
	requested       INTEGER NOT NULL,
	done            INTEGER
) STRICT;

-- An admin key places and removes holds through the REST API; it cannot
-- send. sender is the account accountable for it.
ALTER TABLE api_keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
