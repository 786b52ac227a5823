package store

import (
	"strings"
	"testing"
)

// TestProbeWriteReadOnly: the readiness probe commits on a database that
// takes writes, and says "read-only" of one that refuses them: on SQLite
// a connection that may not write (what SQLite answers for a file it
// cannot write), on PostgreSQL a server that runs every transaction read
// only, as a standby does until it is promoted.
func TestProbeWriteReadOnly(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	if err := db.ProbeWrite(ctx); err != nil {
		t.Fatalf("ProbeWrite on a writable database: %v", err)
	}
	if db.Engine() == Postgres {
		tamper(t, db, `DO $$ BEGIN
			EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database());
		END $$`)
		// The setting holds for new sessions: let the pool's idle ones go,
		// as a failover ends them.
		db.write.SetMaxIdleConns(0)
		db.write.SetMaxIdleConns(DefaultMaxConns)
	} else {
		if _, err := db.write.ExecContext(ctx, `PRAGMA query_only = 1`); err != nil {
			t.Fatal(err)
		}
	}
	err := db.ProbeWrite(ctx)
	if err == nil || !strings.Contains(err.Error(), "the database is read-only") {
		t.Fatalf("ProbeWrite on a read-only database = %v; want it to say read-only", err)
	}
	t.Log(err)
}
