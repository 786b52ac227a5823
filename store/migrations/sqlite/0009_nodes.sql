-- Which node claimed a job, and which node is writing a pending blob: its
-- node key (store/liveness.go). On PostgreSQL a node that is gone no
-- longer holds its key's lock, and another node frees its claims and
-- deletes its unfinished uploads at once. 0: no node (SQLite's one
-- process frees all of them at its start).
ALTER TABLE jobs ADD COLUMN claim_node INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN node INTEGER NOT NULL DEFAULT 0;
