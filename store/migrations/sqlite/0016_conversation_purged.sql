-- When content of one of the conversation's messages was first purged.
-- A purged conversation is never continued (Policy.ContinuePerSender):
-- the flag answers that in one row, where asking the conversation's
-- messages grew with every message it held.
ALTER TABLE conversations ADD COLUMN purged INTEGER;
UPDATE conversations SET purged = (
	SELECT min(m.purged) FROM conversation_messages cm JOIN messages m ON m.id = cm.message_id
	WHERE cm.conversation_id = conversations.id)
WHERE EXISTS (
	SELECT 1 FROM conversation_messages cm JOIN messages m ON m.id = cm.message_id
	WHERE cm.conversation_id = conversations.id AND m.purged IS NOT NULL);
