-- Email recipients (store/email.go). A recipient is a phone number in
-- E.164 form or a lowercased email address, in the same columns as
-- before (conversations.phone, recipients.phone, ...): nothing changes
-- there. What is new is the address a text's notice goes to by email
-- when the text fails for good (the API's fallback_email): sealed for
-- its row, and deleted with its text.
CREATE TABLE text_fallbacks (
	job_id  INTEGER PRIMARY KEY REFERENCES texts (job_id) ON DELETE CASCADE,
	address BLOB    NOT NULL
) STRICT;
