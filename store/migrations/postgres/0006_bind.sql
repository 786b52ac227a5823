-- Every sealed value is bound to its place (store/place.go), as SQLite's
-- 0006. A PostgreSQL store is new with this engine, so nothing here was
-- sealed the older way: bind_migration exists (the store asks it whether
-- a re-sealing is under way) but holds no row.
CREATE TABLE bind_migration (
	id BIGINT PRIMARY KEY CHECK (id = 1)
);

ALTER TABLE api_idempotency ADD COLUMN key_id BIGINT NOT NULL DEFAULT 0;
