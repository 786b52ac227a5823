-- When content of one of the conversation's messages was first purged,
-- as SQLite's 0016.
ALTER TABLE conversations ADD COLUMN purged BIGINT;
UPDATE conversations SET purged = (
	SELECT min(m.purged) FROM conversation_messages cm JOIN messages m ON m.id = cm.message_id
	WHERE cm.conversation_id = conversations.id)
WHERE EXISTS (
	SELECT 1 FROM conversation_messages cm JOIN messages m ON m.id = cm.message_id
	WHERE cm.conversation_id = conversations.id AND m.purged IS NOT NULL);
