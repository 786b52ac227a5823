-- SQLite's 0017 drops the audit trail's indexes that its planner never
-- uses (PostgreSQL's does: they stay) and keeps parts in their primary
-- key's b-tree (WITHOUT ROWID; a PostgreSQL table is a heap beside its
-- primary key's index whatever it is declared with). Nothing changes
-- here; the number stays the same on both engines.
SELECT 1;
