package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// The store runs on one of two engines: SQLite, a file beside the gateway
// (the default, for one machine), or PostgreSQL, a server that any number
// of gateway nodes share. Every rule — sealing, chunking, the outbox, the
// audit chain, the lifecycle — is written once, in SQL that both engines
// read: "?" placeholders (rewritten to "$1", "$2", … for PostgreSQL by
// rebind), explicit ids (max(id) + 1, taken under the write lock),
// INSERT … ON CONFLICT, RETURNING, and integers for times and flags. What
// differs is in engine: the migrations' DDL, how the schema version is
// kept, and how a write transaction locks.
//
// Write transactions are serialized on both engines, because the store's
// rules assume it: ids are max(id) + 1, the audit chain appends to its
// head, limits count then insert. SQLite serializes them by having one
// writer (BEGIN IMMEDIATE on a single connection). PostgreSQL gets the
// same guarantee across every node from a transaction-scoped advisory lock
// taken first in each write transaction, so that statements after it, at
// READ COMMITTED, see every write committed before; readers are never
// blocked by it. Work that needs no such order — claiming an outbox job —
// uses row locks instead (FOR UPDATE SKIP LOCKED, claim.go), so that it
// does not wait behind commits.

// Engine names, as store.driver takes them.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Options says which engine keeps the store and how to reach it.
type Options struct {
	// Driver is SQLite (the default when empty) or Postgres.
	Driver string
	// Path is the SQLite database file.
	Path string
	// DSN is PostgreSQL's connection URL (libpq's form:
	// "postgres://user@host:5432/db?sslmode=verify-full").
	DSN string
	// MaxConns bounds the connections a PostgreSQL store opens (0: 20).
	MaxConns int

	// pageSize is the page size of a SQLite database this makes (0:
	// pageSize, db.go): the store's tests compare others.
	pageSize int
}

// DefaultMaxConns is the PostgreSQL pool size when Options.MaxConns is 0:
// enough for the portal's readers and the writers of a busy node, few
// enough that a dozen nodes fit in PostgreSQL's default max_connections
// of 100 … with room to spare for operators.
const DefaultMaxConns = 8

// engine holds what differs between SQLite and PostgreSQL.
type engine struct {
	name string
	// migrations is the directory of migrationFS holding the engine's DDL.
	migrations string
	// lock is run first in each write transaction; empty for none.
	lock string
	// readTx are the options of a read transaction (one snapshot).
	readTx *sql.TxOptions
	// skipLocked follows a query that claims rows for update.
	skipLocked string
	// blob is the type of byte strings, for casts.
	blob string
	// failUnless is a statement that fails when the condition %s is
	// false: a check queued with a commit's rows (continueGuard).
	// PostgreSQL divides by zero; SQLite, whose division by zero is NULL,
	// calls a function of the writer's connection that fails
	// (staleHintFunc).
	failUnless string
	// ofPhone is the condition that conversation c is one of phone ?'s
	// (continueGuard). SQLite takes them from a subquery: compared
	// directly, the bound phone weighs in its planning, and it compiles
	// the statement again at every run (TestStatementsStayPrepared).
	// PostgreSQL compares directly: with the subquery, its planner may
	// walk every conversation by id, newest first, for the latest one.
	ofPhone string
}

var (
	sqliteEngine = &engine{
		name:       SQLite,
		migrations: "migrations/sqlite",
		blob:       "BLOB",
		failUnless: "SELECT CASE WHEN %s THEN 1 ELSE " + staleHintFunc + "() END",
		ofPhone:    "c.id IN (SELECT id FROM conversations WHERE phone = ?)",
	}
	postgresEngine = &engine{
		name:       Postgres,
		migrations: "migrations/postgres",
		lock:       fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", writeLockKey),
		readTx:     &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
		skipLocked: " FOR UPDATE SKIP LOCKED",
		blob:       "BYTEA",
		failUnless: "SELECT 1 / (CASE WHEN %s THEN 1 ELSE 0 END)",
		ofPhone:    "c.phone = ?",
	}
)

// writeLockKey is the key of the write lock on PostgreSQL. Any constant
// works, as long as every node uses the same one: it is "stxw" in ASCII.
const writeLockKey = 1937012855

// Engine reports the store's engine: SQLite or Postgres.
func (db *DB) Engine() string { return db.eng.name }

// schemaVersion reads the number of migrations applied, inside tx.
func (e *engine) schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var v int
	if e.name == SQLite {
		err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
		return v, err
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		version INTEGER NOT NULL)`); err != nil {
		return 0, err
	}
	err := tx.QueryRowContext(ctx, "SELECT version FROM schema_version WHERE id = 1").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// setSchemaVersion records that v migrations are applied, inside tx.
func (e *engine) setSchemaVersion(ctx context.Context, tx *sql.Tx, v int) error {
	var err error
	if e.name == SQLite {
		_, err = tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO schema_version (id, version) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET version = excluded.version`, v)
	}
	return err
}

// rebinds caches rebind's results: the store's queries are a few hundred
// constant texts.
var rebinds sync.Map // string → string

// rebind rewrites the "?" placeholders of query into PostgreSQL's "$1",
// "$2", …, leaving alone what is quoted ('…', "…") or commented (-- …).
func rebind(query string) string {
	if q, ok := rebinds.Load(query); ok {
		return q.(string)
	}
	if !strings.Contains(query, "?") {
		rebinds.Store(query, query)
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(query[i+1:], c)
			if end < 0 {
				b.WriteString(query[i:])
				i = len(query)
				continue
			}
			b.WriteString(query[i : i+end+2])
			i += end + 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				end = len(query) - i
			}
			b.WriteString(query[i : i+end])
			i += end - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	q := b.String()
	rebinds.Store(query, q)
	return q
}
