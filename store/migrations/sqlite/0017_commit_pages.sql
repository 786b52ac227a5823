-- Fewer b-trees written by each commit of a message (issue 15): a group
-- commit writes at least one page of every table and index its rows go
-- in, and TestSmallCommitWrites names them.

-- The audit trail's indexes by time, conversation and message: no query
-- of the store uses them on SQLite. The partial ones (WHERE conversation_id
-- != 0, message_id != 0) are usable only by a query that repeats that
-- term, and none does; for each query on time, conversation or message,
-- all ordered by seq, SQLite's planner walks the table in seq order
-- instead (EXPLAIN QUERY PLAN: SCAN audit). Every message's rows were
-- still written into all three. PostgreSQL's planner uses them (it
-- proves conversation_id = $1 != 0 from the value): they stay there.
DROP INDEX audit_time;
DROP INDEX audit_conversation;
DROP INDEX audit_message;

-- Parts kept in their primary key's b-tree (WITHOUT ROWID), as links and
-- conversation_messages are: a commit writes one b-tree for its parts
-- where it wrote two (the rows by rowid, and the index of the primary
-- key). Rebuilt and renamed; the trigger goes with the old table and is
-- made again on the new one.
DROP TRIGGER parts_shred;

CREATE TABLE parts_keyed (
	message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	idx        INTEGER NOT NULL,
	kind       INTEGER NOT NULL,
	size       INTEGER NOT NULL, -- plaintext bytes
	blob_id    INTEGER NOT NULL UNIQUE REFERENCES blobs (id),
	PRIMARY KEY (message_id, idx)
) STRICT, WITHOUT ROWID;

INSERT INTO parts_keyed (message_id, idx, kind, size, blob_id)
SELECT message_id, idx, kind, size, blob_id FROM parts;

DROP TABLE parts;
ALTER TABLE parts_keyed RENAME TO parts;

-- Deleting a part (or its message) shreds its content: each part has its
-- own file key, and secure_delete zeroes the freed pages.
CREATE TRIGGER parts_shred AFTER DELETE ON parts BEGIN
	DELETE FROM blobs WHERE id = OLD.blob_id;
END;
