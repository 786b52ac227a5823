-- Which node claimed a job, and which node is writing a pending blob, as
-- SQLite's 0009 (store/liveness.go).
ALTER TABLE jobs ADD COLUMN claim_node BIGINT NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN node BIGINT NOT NULL DEFAULT 0;
