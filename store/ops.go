package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"
)

// OutboxStats is the state of the outbox, for monitoring.
type OutboxStats struct {
	// Pending counts the jobs not yet done or failed, by kind.
	Pending map[string]int
	// Oldest is when the oldest pending job was created; zero when none is.
	Oldest time.Time
}

// OutboxStats counts the pending jobs and finds the oldest. It reads an
// index, never a payload: a scrape costs a query, not a decryption.
func (db *DB) OutboxStats(ctx context.Context) (*OutboxStats, error) {
	st := &OutboxStats{Pending: make(map[string]int)}
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx,
			`SELECT kind, count(*), min(created) FROM jobs WHERE state = 'pending' GROUP BY kind`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var kind string
			var n int
			var oldest int64
			if err := rows.Scan(&kind, &n, &oldest); err != nil {
				return err
			}
			st.Pending[kind] = n
			if t := fromNanos(oldest); st.Oldest.IsZero() || t.Before(st.Oldest) {
				st.Oldest = t
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: outbox stats: %w", err)
	}
	return st, nil
}

// ProbeWrite shows that the database takes commits, for a readiness
// check: the file must be writable (access(2), which also sees a file
// system remounted read-only), and a write through the connection that
// commits messages, waiting for the write lock as a commit would, must
// commit. Give it a short deadline. On PostgreSQL, a server that takes no
// writes (a standby not yet promoted) is reported as read-only too.
//
// While commits fail for lack of space (StorageFull), the probe fails too,
// and commits only once the file system has room again (space.go): its
// own small write could succeed on a disk that has none left for mail.
// That is SQLite's file system; a PostgreSQL server's disk is out of the
// gateway's sight, and there the probe's own commit decides.
func (db *DB) ProbeWrite(ctx context.Context) error {
	if db.eng.name == SQLite {
		for _, p := range []string{db.path, filepath.Dir(db.path)} {
			if err := syscall.Access(p, 2 /* W_OK */); err != nil {
				return fmt.Errorf("store: the database is read-only: %s: %w", p, err)
			}
		}
		if err := db.checkRoom(); err != nil {
			return err
		}
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO ops_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`,
			nanos(db.Now()))
		return err
	})
	if err != nil {
		var se sqlite3.Error
		if (errors.As(err, &se) && se.Code == sqlite3.ErrReadonly) || pgReadOnly(err) {
			return fmt.Errorf("store: the database is read-only: %w", err)
		}
		return fmt.Errorf("store: probe: %w", err)
	}
	return nil
}

// CheckKeys seals and opens a few bytes with the keyring, to show that the
// key is loaded and works.
func (db *DB) CheckKeys() error {
	sealed, err := db.keys.seal([]byte("probe"))
	if err != nil {
		return fmt.Errorf("store: keys: %w", err)
	}
	if plain, err := db.keys.open(sealed); err != nil || string(plain) != "probe" {
		return fmt.Errorf("store: keys: round trip failed: %v", err)
	}
	return nil
}

// SchemaVersion reports, without changing anything, the schema version of
// the database at path and the version this program brings it to. It is
// for `securetextd doctor`; Open migrates by itself.
func SchemaVersion(path string) (have, want int, err error) {
	names, err := fs.Glob(migrationFS, sqliteEngine.migrations+"/*.sql")
	if err != nil {
		return 0, 0, err
	}
	if _, err := os.Stat(path); err != nil {
		return 0, len(names), fmt.Errorf("store: %w", err)
	}
	db, err := sql.Open("sqlite3", "file:"+uriPath(path)+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return 0, len(names), err
	}
	defer db.Close()
	if err := db.QueryRow("PRAGMA user_version").Scan(&have); err != nil {
		return 0, len(names), fmt.Errorf("store: schema version: %w", err)
	}
	return have, len(names), nil
}

// BackupInfo describes a finished backup.
type BackupInfo struct {
	Pages int   // database pages copied
	Bytes int64 // size of the copy
}

// Backup copies the database at src to a new file dst while the gateway
// keeps running, through SQLite's online backup API: the copy is one
// consistent snapshot, taken in a single step under one read transaction,
// which in WAL mode does not stop writers (they go on appending to the
// WAL; only checkpoints wait). The copy is written beside dst, checked
// with PRAGMA integrity_check, synced and renamed into place, readable by
// its owner only. dst must not exist.
//
// Content stays sealed in the copy: it is useless without the key file,
// which must be backed up too, and kept apart from it.
func Backup(ctx context.Context, src, dst string) (*BackupInfo, error) {
	if _, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("store: backup: %w", err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return nil, fmt.Errorf("store: backup: %s exists; refusing to overwrite it", dst)
	}
	tmp := dst + ".partial"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: backup: %w", err)
	}
	f.Close()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()

	info, err := backupTo(ctx, src, tmp)
	if err != nil {
		return nil, fmt.Errorf("store: backup: %w", err)
	}
	if err := verifyCopy(ctx, tmp); err != nil {
		return nil, fmt.Errorf("store: backup: the copy does not verify: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return nil, fmt.Errorf("store: backup: %w", err)
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		return nil, fmt.Errorf("store: backup: %w", err)
	}
	info.Bytes = fi.Size()
	if err := os.Rename(tmp, dst); err != nil {
		return nil, fmt.Errorf("store: backup: %w", err)
	}
	ok = true
	syncFile(filepath.Dir(dst))
	return info, nil
}

func backupTo(ctx context.Context, src, dst string) (*BackupInfo, error) {
	srcDB, err := sql.Open("sqlite3", "file:"+uriPath(src)+"?_busy_timeout=10000&_query_only=on")
	if err != nil {
		return nil, err
	}
	defer srcDB.Close()
	// journal_mode=DELETE: the copy is one self-contained file.
	dstDB, err := sql.Open("sqlite3", "file:"+uriPath(dst)+"?_journal_mode=DELETE&_synchronous=FULL")
	if err != nil {
		return nil, err
	}
	defer dstDB.Close()

	srcConn, err := srcDB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer srcConn.Close()
	dstConn, err := dstDB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer dstConn.Close()

	info := &BackupInfo{}
	err = dstConn.Raw(func(d any) error {
		return srcConn.Raw(func(s any) error {
			dc, ok1 := d.(*sqlite3.SQLiteConn)
			sc, ok2 := s.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("not an SQLite connection")
			}
			b, err := dc.Backup("main", sc, "main")
			if err != nil {
				return err
			}
			// One step copies every page under one read transaction: a
			// consistent snapshot. Steps of a few pages would restart
			// whenever the gateway commits, and might never finish.
			done, err := b.Step(-1)
			info.Pages = b.PageCount()
			if ferr := b.Finish(); err == nil {
				err = ferr
			}
			if err == nil && !done {
				err = errors.New("backup did not complete")
			}
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	// The copy carries the source's WAL flag in its header; make it a
	// plain rollback-journal file, so that it opens read-only anywhere.
	if _, err := dstConn.ExecContext(ctx, "PRAGMA journal_mode = DELETE"); err != nil {
		return nil, err
	}
	return info, nil
}

// verifyCopy runs PRAGMA integrity_check on the database at path.
func verifyCopy(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", "file:"+uriPath(path)+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	return IntegrityCheck(ctx, db)
}

// IntegrityCheck runs PRAGMA integrity_check on db and returns its findings
// as an error unless it answers "ok".
func IntegrityCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("integrity_check: %v", problems)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
