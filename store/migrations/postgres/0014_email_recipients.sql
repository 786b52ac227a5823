-- Email recipients, as SQLite's 0011 (store/email.go).
CREATE TABLE text_fallbacks (
	job_id  BIGINT PRIMARY KEY REFERENCES texts (job_id) ON DELETE CASCADE,
	address BYTEA  NOT NULL
);
