// Package store keeps the gateway's state in one SQLite file: the schema and
// its migrations, messages sealed with age and kept as chunked blobs, sender
// accounts, conversations and their link tokens, the recipients' accounts
// with their sessions and password resets, and the transactional outbox
// that notify drains.
//
// Everything a reader could learn content from is sealed before it reaches
// SQLite: bodies and attachments (one age file per part), the manifest of a
// message (subject, names, filenames), recipients' recovery addresses, and
// outbox payloads (which carry link and reset tokens). Each sealed value is
// bound to its place (place.go): moved to another row in plain SQL, it no
// longer opens. Link, session and reset tokens are kept only as SHA-256
// hashes, passwords as argon2id hashes, the REST API's idempotency
// fingerprints as keyed HMACs. A stolen database file, its WAL and its
// backups open nothing without the key file, which lives outside the
// database.
//
// A message and the outbox jobs that notify its recipients are committed in
// one transaction, with synchronous=FULL: when [Draft.Commit] returns, the
// message survives a crash and its texts will be sent. A reply from the
// portal ([DB.SaveReply]) and the email that carries it back are committed
// the same way.
//
// Each public method runs in one transaction. Writes go through a single
// connection (SQLite allows one writer at a time; queueing in Go is cheaper
// than spinning on SQLITE_BUSY), reads through a small pool of read-only
// connections that WAL lets run beside the writer.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" driver

	"github.com/securetextd/securetextd"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// defaultMessageIDHost is DB.MessageIDHost until it is set. The .invalid
// top-level domain is reserved (RFC 2606): it can never be anyone's.
const defaultMessageIDHost = "securetextd.invalid"

// readers is the size of the read-only connection pool.
const readers = 4

// pragmas are the connection settings of every connection, in
// mattn/go-sqlite3's DSN syntax. WAL lets readers run beside the writer;
// synchronous=FULL makes a commit durable before it returns (in WAL mode
// NORMAL would lose the last commits on power loss, after the SMTP client
// was told 250); secure_delete zeroes freed pages so that deleted
// ciphertext does not linger; the busy timeout covers other processes
// (the CLI) writing to the same file. _cache_size bounds each
// connection's page cache at 1 MiB (SQLite's default is 2): a large
// attachment streams through the writer's cache without being read again,
// and the pages the portal reads are few and also in the operating
// system's cache.
const pragmas = "_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on&_synchronous=FULL&_secure_delete=on&_cache_size=-1024"

// readerStatements and writerStatements are how many prepared statements
// a connection keeps (_stmt_cache_size), reset and their bindings cleared,
// for the next query with the same text: the store's queries are
// constants, and preparing them anew was most of SQLite's share of a
// portal page view. The writer keeps more: the multi-row INSERTs of group
// commits (merge.go) are texts of their own, a few for each INSERT.
const (
	readerStatements = 64
	writerStatements = 256
)

// DB is the gateway's store. It is safe for concurrent use.
type DB struct {
	// Now returns the current time; it stamps every row and decides
	// expiry (sessions, reset tokens). It defaults to time.Now; tests may
	// replace it before use.
	Now func() time.Time

	// MessageIDHost is the right-hand side of the Message-IDs the store
	// makes for replies written on the portal: "<random>@MessageIDHost".
	// It defaults to "securetextd.invalid"; set it to the gateway's public
	// host name before use, so that mail programs see a stable domain.
	MessageIDHost string

	// Scanner, when set, scans every part of every draft for malware as
	// it is sealed (scan.go). ScanFailOpen lets a part the scanner gives
	// no verdict on through, audited; otherwise the draft fails with
	// EUNSCANNED. Set them before use.
	Scanner      securetextd.Scanner
	ScanFailOpen bool

	// Policy runs the information lifecycle: access expiry, retention,
	// notices to senders, limits (see Policy). The zero Policy expires,
	// purges, mails and limits nothing. Set it before use.
	Policy Policy

	path  string // SQLite's file; "" on PostgreSQL
	dsn   string // PostgreSQL's connection URL; "" on SQLite
	eng   *engine
	keys  *Keyring
	write *sql.DB // SQLite: one connection, BEGIN IMMEDIATE
	read  *sql.DB // SQLite: read-only connections; PostgreSQL: write's pool

	// wake is closed, and replaced by a fresh channel, after a commit adds
	// outbox jobs: see Wake.
	wakeMu   sync.Mutex
	wake     chan struct{}
	wakeMail chan struct{} // closed only for jobs that may be mail: WakeMail
	// group joins concurrent message commits into one transaction.
	group committer
	// latests remembers the conversations commits joined, for the next
	// message between the same two (continue.go).
	latests latestSeen
	// data seals small values (envelope.go) and parts' file keys
	// (datakey.go).
	data *dataKeys
	// fileKeys keeps the file keys of parts opened lately (filekeys.go).
	fileKeys fileKeys
	// auths remembers recent sender logins (authcache.go).
	auths authCache
	// hashing bounds concurrent argon2id computations: each takes 7 MiB,
	// and a burst of logins must not take the machine's memory.
	hashing chan struct{}
	// writeTxs counts the write transactions begun (update and group
	// commits), so that tests can show what never takes the writer.
	writeTxs atomic.Int64
	// memo keeps what the write transaction holding the lock has read of
	// ids and the audit chain (txmemo.go).
	memo txMemo
	// writeHeld adds up how long write transactions held the write lock,
	// in nanoseconds: from the lock taken to the commit's return.
	writeHeld atomic.Int64
	// trips counts the round trips to a PostgreSQL server made in
	// transactions (postgres.go).
	trips atomic.Int64
	// space remembers a commit that failed for lack of space (space.go).
	space spaceState
	// node names this process in the sweep log; serving is the lock of
	// a SQLite store's serving process, locks the connections that hold
	// PostgreSQL's sweep locks (node.go, sweep.go).
	node    string
	serving *os.File
	locks   *sql.DB
	// slots remembers the SMS rate's row for a full disk (smsrate.go).
	slots slotMemory
	// nodeLock is this node's lock on its key, which tells other nodes
	// that it lives (liveness.go).
	nodeLock nodeState
	// limitKeys, when set by a test, bounds each kind of shared limit key
	// below its cap (strikes.go, authfailures.go).
	limitKeys int
}

// Open opens the SQLite database at path, creating it (readable by its
// owner only) and its directory if needed, and brings its schema up to
// date. Content is sealed to keys' first identity and opened with any of
// them.
func Open(path string, keys *Keyring) (*DB, error) {
	return OpenWith(context.Background(), Options{Driver: SQLite, Path: path}, keys)
}

// OpenWith opens the store that opts describe (see Open for SQLite) and
// brings its schema up to date. A PostgreSQL database must exist; its
// tables are made by the first node that opens it, while the others wait.
func OpenWith(ctx context.Context, opts Options, keys *Keyring) (*DB, error) {
	if keys == nil {
		return nil, errors.New("store: open: no keyring")
	}
	db, err := openSchema(ctx, opts, gatewayApp)
	if err != nil {
		return nil, err
	}
	db.keys = keys
	unbound, err := db.bindPending(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := db.loadDataKeys(ctx, unbound); err != nil {
		db.Close()
		return nil, err
	}
	if db.eng.name == Postgres {
		// The connections that hold the sweeps' locks (sweep.go).
		if db.locks, err = openLocks(opts.DSN); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: open: %w", err)
		}
	}
	if unbound {
		// Migration 0006: bind what was sealed before to its place.
		if err := db.bindAll(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// openSchema opens the store that opts describe and brings its schema up
// to date, without its keys: the migrations seal nothing. OpenWith goes on
// from there; store copy (copy.go) makes its destination so, and no data
// key with it. app names PostgreSQL's sessions (see gatewayApp).
func openSchema(ctx context.Context, opts Options, app string) (*DB, error) {
	db := &DB{
		Now:           time.Now,
		MessageIDHost: defaultMessageIDHost,
		wake:          make(chan struct{}),
		wakeMail:      make(chan struct{}),
		hashing:       make(chan struct{}, runtime.NumCPU()),
		node:          newNodeName(),
		nodeLock:      nodeState{key: newNodeKey()},
	}
	var err error
	switch opts.Driver {
	case SQLite, "":
		db.eng, db.path = sqliteEngine, opts.Path
		db.space.dir = filepath.Dir(opts.Path)
		if db.write, err = openSQLiteWriter(opts.Path, cmp.Or(opts.pageSize, pageSize)); err != nil {
			return nil, err
		}
	case Postgres:
		db.eng, db.dsn = postgresEngine, opts.DSN
		if db.write, err = openPostgresCounted(opts.DSN, opts.MaxConns, app, &db.trips); err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
		db.read = db.write
	default:
		return nil, fmt.Errorf("store: open: no engine %q (want %q or %q)", opts.Driver, SQLite, Postgres)
	}
	if err := db.migrate(ctx); err != nil {
		db.write.Close()
		return nil, err
	}
	if db.read == nil {
		if db.read, err = sql.Open("sqlite3", sqliteDSN(db.path, readerStatements)+"&_query_only=on"); err != nil {
			db.write.Close()
			return nil, fmt.Errorf("store: open: %w", err)
		}
		db.read.SetMaxOpenConns(readers)
		db.read.SetMaxIdleConns(readers)
	}
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	return db, nil
}

// openSQLiteWriter creates the database file at path if need be and
// opens the single connection that writes to it.
func openSQLiteWriter(path string, pageSize int) (*sql.DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("store: open: %q: want the path of a database file", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	// Create the file ourselves so that its mode is 0600: SQLite would
	// use the umask, and it gives the -wal and -shm files the mode of the
	// database file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if fi.Size() == 0 {
		if err := initPageSize(path, pageSize); err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
	}
	tuneMalloc()
	w := sql.OpenDB(newWriterConnector(sqliteDSN(path, writerStatements) + "&_txlock=immediate"))
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	return w, nil
}

// sqliteDSN is the data source name of the database file at path, with
// the store's pragmas, keeping that many prepared statements.
func sqliteDSN(path string, statements int) string {
	return fmt.Sprintf("file:%s?%s&_stmt_cache_size=%d", uriPath(path), pragmas, statements)
}

// uriPath escapes what would end or garble the path part of an SQLite URI
// filename.
func uriPath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// Close closes the database. The last connection to close checkpoints the
// WAL into the database file.
func (db *DB) Close() error {
	var errs []error
	if db.read != nil && db.read != db.write {
		errs = append(errs, db.read.Close())
	}
	errs = append(errs, db.write.Close())
	errs = append(errs, db.closeNode())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Ping checks that the database can still be reached, for health checks.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// migrate applies, in name order, each embedded migration that the
// database has not seen. PRAGMA user_version counts the migrations applied;
// each one runs in its own transaction with the version bump, so that a
// crash leaves the schema at a version, never between two.
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrationFS, db.eng.migrations+"/*.sql")
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	// fs.Glob returns names sorted; "0001_init.sql" is version 1.
	for i, name := range names {
		version := i + 1
		if !strings.HasPrefix(filepath.Base(name), fmt.Sprintf("%04d_", version)) {
			return fmt.Errorf("store: migrate: %s: want a name that starts with %04d_", name, version)
		}
		if err := db.migrateTo(ctx, version, name, len(names)); err != nil {
			return fmt.Errorf("store: migrate %s: %w", name, err)
		}
	}
	return nil
}

func (db *DB) migrateTo(ctx context.Context, version int, name string, latest int) error {
	return db.update(ctx, func(tx *sql.Tx) error {
		// Read the version inside the write transaction: another
		// process may be migrating the same file.
		current, err := db.eng.schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if current > latest {
			return fmt.Errorf("the database is at schema version %d, newer than this program's %d", current, latest)
		}
		if current >= version {
			return nil
		}
		script, err := migrationFS.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(script)); err != nil {
			return err
		}
		return db.eng.setSchemaVersion(ctx, tx, version)
	})
}

// update runs fn in a write transaction and commits it if fn returns nil.
func (db *DB) update(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	db.writeTxs.Add(1)
	defer func() { db.space.note(err, db.Now()) }()
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return storageFull(err)
	}
	defer db.held(time.Now())
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return storageFull(err)
	}
	return storageFull(tx.Commit())
}

// held adds the time since start to what the write lock was held.
func (db *DB) held(start time.Time) { db.writeHeld.Add(int64(time.Since(start))) }

// WriteLockStats reports how many write transactions the store began and
// how long, in all, they held the write lock. On SQLite the lock is the
// one writer connection's; on PostgreSQL it is shared by every node, so
// that the lock's time per message bounds what a cluster can commit:
// BENCHMARKS.md works out how many nodes one database carries from it.
func (db *DB) WriteLockStats() (txs int64, held time.Duration) {
	return db.writeTxs.Load(), time.Duration(db.writeHeld.Load())
}

// beginWrite begins a write transaction, holding the write lock (see
// engine.go) when it returns.
func (db *DB) beginWrite(ctx context.Context) (*sql.Tx, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if db.eng.lock != "" {
		if _, err := tx.ExecContext(ctx, db.eng.lock); err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	return tx, nil
}

// errStorageFull is what a write says when the disk is full: a temporary
// failure that the sender can be told about (SMTP's 452 4.3.1), not a bug.
var errStorageFull = securetextd.Errorf(securetextd.ESTORAGE, "The gateway's storage is full; try again later.")

// storageFull marks err as errStorageFull, keeping it for the log, when
// SQLite, PostgreSQL or the file system ran out of space, and as
// errUnreachable when the database server can't be reached.
func storageFull(err error) error {
	var se sqlite3.Error
	if (errors.As(err, &se) && se.Code == sqlite3.ErrFull) || errors.Is(err, syscall.ENOSPC) || pgDiskFull(err) {
		if !errors.Is(err, errStorageFull) {
			return fmt.Errorf("%w: %w", errStorageFull, err)
		}
	}
	return unreachable(err)
}

// view runs fn in a read transaction, which sees one snapshot of the
// database throughout.
func (db *DB) view(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.read.BeginTx(ctx, db.eng.readTx)
	if err != nil {
		return unreachable(err)
	}
	defer tx.Rollback()
	return unreachable(fn(tx))
}

// wrap adds the store's context to an internal error. An *securetextd.Error
// is meant for the user and is returned as it is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *securetextd.Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// nanos is how times are stored: unix nanoseconds.
func nanos(t time.Time) int64 { return t.UnixNano() }

// fromNanos reads a stored time back, in UTC.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// queryIDs runs a query whose rows are one integer column (ids) and
// returns them all, so that the caller may issue other statements on tx
// afterwards (SQLite cannot while rows are open on the same connection).
func queryIDs(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// initPageSize gives a new, empty database file its page size, then
// turns WAL mode on: once it is on, the page size is fixed. A database
// made before keeps its own.
func initPageSize(path string, size int) error {
	db, err := sql.Open("sqlite3", "file:"+uriPath(path))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(fmt.Sprintf("PRAGMA page_size = %d; PRAGMA journal_mode = WAL", size))
	return err
}

// pageSize is the page size of the databases the store makes, 1 KiB
// rather than SQLite's 4 KiB. What a small message's commit writes is
// mostly pages it changes a little at random places: the conversation it
// joins, that conversation's entries in the indexes keyed by it, its link
// token's. Each costs a whole page in the WAL, and again at the
// checkpoint, so a smaller page writes less. Measured with make bench
// (issue 15), 1 KiB messages to 1,000 phones, each joining its
// conversation: 30.6 KB passed to write system calls per message with 4
// KiB pages, 15.1 KB with 1 KiB, over reused connections; 42.6 and 18.2
// KB with one message per connection. A 1 MiB message costs four times
// the write system calls (a WAL frame is two), at about the same MB/s
// (0.84× smtp-sink either way); the portal's conversation page, within
// the machine's noise. TestPhonesCommitWrites compares the two sizes.
const pageSize = 1024
