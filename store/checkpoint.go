package store

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/mattn/go-sqlite3"
)

// walAutocheckpoint is how many pages the WAL holds before the writer
// copies them back into the database file (SQLite's default is 1,000).
// A checkpoint writes each page the WAL holds once, however many commits
// wrote it; the pages every commit rewrites (the last leaf of each table
// and index, the database header) are copied once per checkpoint, so
// that fewer checkpoints copy fewer of them. At 1,000 pages a small
// message cost 7.3 KB of checkpoint copies (issue 15's bench, groups of
// about seven); at 4,000, 4.2 KB. The WAL file, which SQLite reuses from
// its start after a checkpoint rather than shrinking it, then stays at
// about 16 MiB, and recovery after a crash reads at most that much.
const walAutocheckpoint = 4000

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
			if _, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walAutocheckpoint), nil); err != nil {
				return fmt.Errorf("wal_autocheckpoint: %w", err)
			}
			return nil
		},
	}}
}

func (c writerConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c writerConnector) Driver() driver.Driver                        { return c.drv }
