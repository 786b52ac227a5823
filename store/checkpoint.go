package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"
)

// walCheckpointBytes is how much the WAL holds before the writer copies
// its pages back into the database file: wal_autocheckpoint, in pages of
// the database's size (SQLite's default is 1,000 pages). A checkpoint
// writes each page the WAL holds once, however many commits wrote it; the
// pages every commit rewrites (the last leaf of each table and index, the
// database header, the conversations being joined) are copied once per
// checkpoint, so that fewer checkpoints copy fewer of them. At 1,000
// pages of 4 KiB a small message cost 7.3 KB of checkpoint copies (issue
// 15's bench, groups of about seven); at 4,000, 4.2 KB. The WAL file,
// which SQLite reuses from its start after a checkpoint rather than
// shrinking it, then stays at about 16 MiB, and recovery after a crash
// reads at most that much.
const walCheckpointBytes = 16 << 20

// walAutocheckpoint is wal_autocheckpoint for a database of pages of
// pageSize bytes.
func walAutocheckpoint(pageSize int) int { return walCheckpointBytes / max(pageSize, 512) }

// writerConnector opens the writer's connection (openSQLiteWriter) with
// the store's pragmas, and sets on it what mattn/go-sqlite3's DSN has no
// key for, on every connection database/sql may open in its place.
type writerConnector struct {
	dsn string
	drv *sqlite3.SQLiteDriver
}

func newWriterConnector(dsn string) writerConnector {
	return writerConnector{dsn: dsn, drv: &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			page, err := pragmaInt(c, "page_size")
			if err != nil {
				return fmt.Errorf("page_size: %w", err)
			}
			if _, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walAutocheckpoint(page)), nil); err != nil {
				return fmt.Errorf("wal_autocheckpoint: %w", err)
			}
			return c.RegisterFunc(staleHintFunc, staleHint, false)
		},
	}}
}

func (c writerConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &sqliteConn{SQLiteConn: conn.(*sqlite3.SQLiteConn)}, nil
}
func (c writerConnector) Driver() driver.Driver { return c.drv }

// pragmaInt reads the integer value of PRAGMA name on c.
func pragmaInt(c *sqlite3.SQLiteConn, name string) (int, error) {
	rows, err := c.Query("PRAGMA "+name, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		return 0, err
	}
	n, ok := v[0].(int64)
	if !ok {
		return 0, fmt.Errorf("%v is not an integer", v[0])
	}
	return int(n), nil
}

// staleHintFunc is the writer's SQL function that fails a queued check
// (engine.failUnless, continueGuard). It is not deterministic, so that
// SQLite never evaluates it ahead of the CASE that calls it.
const staleHintFunc = "securetextd_stale_hint"

// errStaleHint is the error of a check that found what a commit read
// ahead changed (continue.go).
var errStaleHint = errors.New("store: the latest conversation read ahead has changed")

func staleHint() (int64, error) { return 0, errStaleHint }
