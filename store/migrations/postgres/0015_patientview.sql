-- When the recipient last opened each conversation, as SQLite's 0013.
CREATE TABLE conversation_seen (
	conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	phone           TEXT   NOT NULL,
	seen            BIGINT NOT NULL,
	PRIMARY KEY (conversation_id, phone)
);
