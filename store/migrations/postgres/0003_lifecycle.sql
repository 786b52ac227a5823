-- The information lifecycle, as SQLite's 0003: access expiry, revocation,
-- retention, texts and their delivery reports, first views, and the audit
-- trail.

ALTER TABLE conversations ADD COLUMN revoked BIGINT;
ALTER TABLE conversations ADD COLUMN expired BIGINT;
CREATE INDEX conversations_open ON conversations (last_activity) WHERE revoked IS NULL AND expired IS NULL;

ALTER TABLE messages ADD COLUMN receipt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN purged BIGINT;
CREATE INDEX messages_unpurged ON messages (received) WHERE purged IS NULL;
CREATE INDEX messages_sender ON messages (lower(sender), received);

CREATE TABLE texts (
	job_id          BIGINT PRIMARY KEY,
	conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	message_id      BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	state           TEXT   NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'texted', 'delivered', 'failed')),
	detail          TEXT   NOT NULL DEFAULT '',
	updated         BIGINT NOT NULL
);
CREATE INDEX texts_conversation ON texts (conversation_id);
CREATE INDEX texts_message ON texts (message_id);

CREATE TABLE text_ids (
	provider_id TEXT   PRIMARY KEY,
	job_id      BIGINT NOT NULL REFERENCES texts (job_id) ON DELETE CASCADE
);

CREATE TABLE revoke_tokens (
	token_hash      BYTEA  PRIMARY KEY CHECK (length(token_hash) = 32),
	conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	message_id      BIGINT NOT NULL,
	created         BIGINT NOT NULL
);
CREATE INDEX revoke_tokens_conversation ON revoke_tokens (conversation_id);

CREATE TABLE message_views (
	message_id      BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	first_viewed    BIGINT NOT NULL,
	PRIMARY KEY (message_id, conversation_id)
);

-- The audit trail: append-only, a hash chain (store/audit.go). Appends
-- hold the store's write lock, so that the chain stays one chain when
-- several nodes write.
CREATE TABLE audit (
	seq             BIGINT PRIMARY KEY,
	time            BIGINT NOT NULL,
	event           TEXT   NOT NULL,
	actor           TEXT   NOT NULL,
	conversation_id BIGINT NOT NULL DEFAULT 0,
	message_id      BIGINT NOT NULL DEFAULT 0,
	client          TEXT   NOT NULL DEFAULT '',
	user_agent      TEXT   NOT NULL DEFAULT '',
	detail          TEXT   NOT NULL DEFAULT '',
	prev            BYTEA  NOT NULL CHECK (length(prev) = 32),
	hash            BYTEA  NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_conversation ON audit (conversation_id) WHERE conversation_id != 0;
CREATE INDEX audit_message ON audit (message_id) WHERE message_id != 0;

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the audit trail is append-only';
END;
$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
