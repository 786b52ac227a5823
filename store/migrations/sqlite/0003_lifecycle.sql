-- The information lifecycle: access expiry, revocation, retention, texts
-- and their delivery reports, first views (read receipts), and the audit
-- trail. As before, times are unix nanoseconds and tokens are kept only as
-- SHA-256 hashes; nothing here holds content.

-- A conversation is open until access_expiry has passed since its last
-- message (computed, not stored), or until the sender revokes it.
-- expired records that the sweep logged its expiry (once), and is cleared
-- when a new message renews the conversation.
ALTER TABLE conversations ADD COLUMN revoked INTEGER;
ALTER TABLE conversations ADD COLUMN expired INTEGER;
CREATE INDEX conversations_open ON conversations (last_activity) WHERE revoked IS NULL AND expired IS NULL;

-- receipt is 1 when the sender asked for a read receipt
-- (Disposition-Notification-To). purged is when the retention sweep
-- deleted the message's content: its parts, their sealed chunks and its
-- sealed manifest; the row stays for the audit trail and reports.
ALTER TABLE messages ADD COLUMN receipt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN purged INTEGER;
CREATE INDEX messages_unpurged ON messages (received) WHERE purged IS NULL;
-- The daily limit counts a sender's texts of the last 24 hours.
CREATE INDEX messages_sender ON messages (lower(sender), received);

-- One text per outbox job of kind "text": what became of it.
CREATE TABLE texts (
	job_id          INTEGER PRIMARY KEY,
	conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	message_id      INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	state           TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'texted', 'delivered', 'failed')),
	detail          TEXT    NOT NULL DEFAULT '', -- the provider's status or the reason of a failure
	updated         INTEGER NOT NULL
) STRICT;
CREATE INDEX texts_conversation ON texts (conversation_id);
CREATE INDEX texts_message ON texts (message_id);

-- The provider's ids of each text (one per SMS segment), which its
-- delivery reports quote.
CREATE TABLE text_ids (
	provider_id TEXT    PRIMARY KEY,
	job_id      INTEGER NOT NULL REFERENCES texts (job_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- A revocation token, in the delivery notice mailed to the sender, ends
-- access to one conversation.
CREATE TABLE revoke_tokens (
	token_hash      BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
	conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	message_id      INTEGER NOT NULL,
	created         INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX revoke_tokens_conversation ON revoke_tokens (conversation_id);

-- The first time the recipient of a conversation was shown a message. The
-- key makes the read receipt go once and only once.
CREATE TABLE message_views (
	message_id      INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	first_viewed    INTEGER NOT NULL,
	PRIMARY KEY (message_id, conversation_id)
) STRICT, WITHOUT ROWID;

-- The audit trail: append-only, a hash chain. hash is the SHA-256 of prev
-- (the hash of the row before, 32 zero bytes for the first) and of the
-- row's canonical encoding (see store/audit.go). seq orders the rows and
-- has no gaps. Rows name conversations and messages by id without foreign
-- keys: the trail outlives what it describes.
CREATE TABLE audit (
	seq             INTEGER PRIMARY KEY,
	time            INTEGER NOT NULL,
	event           TEXT    NOT NULL,
	actor           TEXT    NOT NULL,
	conversation_id INTEGER NOT NULL DEFAULT 0,
	message_id      INTEGER NOT NULL DEFAULT 0,
	client          TEXT    NOT NULL DEFAULT '',
	user_agent      TEXT    NOT NULL DEFAULT '',
	detail          TEXT    NOT NULL DEFAULT '',
	prev            BLOB    NOT NULL CHECK (length(prev) = 32),
	hash            BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_conversation ON audit (conversation_id) WHERE conversation_id != 0;
CREATE INDEX audit_message ON audit (message_id) WHERE message_id != 0;

-- The gateway never changes or deletes a row. These triggers keep a bug
-- from doing it; someone who can write the file can drop them, which is
-- what the hash chain is for.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN
	SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN
	SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
