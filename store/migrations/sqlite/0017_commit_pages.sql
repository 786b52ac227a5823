-- Fewer b-trees written by each commit of a message (issue 15): a group
-- commit writes at least one page of every table and index its rows go
-- in, and TestSmallCommitWrites names them.

-- The audit trail's index by time: no query of the store uses it on
-- SQLite (for "time >= ? ORDER BY seq", an export's, the planner walks the
-- table in seq order: EXPLAIN QUERY PLAN says SCAN audit), yet every
-- message's rows were written into it. PostgreSQL keeps it. The partial
-- indexes by conversation and by message stay: the queries that read one
-- conversation's or one message's rows (record.go, report.go, apikeys.go)
-- repeat their "!= 0" term, so that the planner can use them, and
-- TestAuditQueriesUseIndexes checks that it does. Without them each
-- message page of the console would read the whole trail.
DROP INDEX audit_time;

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
