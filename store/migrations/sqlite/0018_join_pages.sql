-- What a message joining its conversation writes (issue 15). Each index
-- keyed by the conversation takes an entry at a random place for each
-- such message: a page written, and again at the checkpoint. Three of
-- them are dropped.
--
-- A phone's conversations were indexed with their last activity, which
-- every join changes, moving the entry. The inbox sorts a phone's few
-- conversations itself; the latest between a phone and a sender is found
-- by id.
DROP INDEX conversations_phone;
CREATE INDEX conversations_phone ON conversations (phone);

-- Links are looked up by their token's hash only, and conversations are
-- never deleted (a purge keeps the row), so no cascade needs this one.
DROP INDEX links_conversation;

-- A conversation's texts are found through its messages
-- (conversation_messages, then texts_message), when it is withdrawn.
DROP INDEX texts_conversation;
