-- When the recipient last opened each conversation: the inbox marks a
-- conversation unread while it holds a message received since, and the
-- conversation page marks what is new since the visit before.
CREATE TABLE conversation_seen (
	conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	phone           TEXT    NOT NULL,
	seen            INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, phone)
) STRICT, WITHOUT ROWID;
