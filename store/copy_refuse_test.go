package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestCopyCatchesTampering changes a row of the destination between the
// copy and its check, and a chunk of a finished copy before the copy is
// run again to check it: both times the check names the table, and the
// copy is not called good.
func TestCopyCatchesTampering(t *testing.T) {
	ctx := t.Context()
	s1 := sqliteOptions(t, "source.db")
	fillStore(t, s1.Path)

	pg := pgOptions(t)
	res, err := runCopy(ctx, t, s1, pg, func(c *copier) {
		c.batchBytes, c.batchRows = copyBatchBytes, copyBatchRows
		c.beforeCheck = func(ctx context.Context) error {
			_, err := c.dst.write.ExecContext(ctx, `UPDATE messages SET sender = 'mallory@evil.example' WHERE id = 1`)
			return err
		}
	})
	if err == nil || !strings.Contains(err.Error(), "differs from its source in messages (source 4 rows") {
		t.Fatalf("copy with a row changed before the check: %v", err)
	}
	for _, tc := range res.Tables {
		if tc.OK() == (tc.Table == "messages") {
			t.Errorf("table %s: %+v", tc.Table, tc)
		}
	}

	s2 := sqliteOptions(t, "copy.db")
	if _, err := Copy(ctx, s1, s2, nil); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", sqliteDSN(s2.Path, readerStatements))
	if err != nil {
		t.Fatal(err)
	}
	// The first chunk, not the last row that a copy run again looks at.
	var blob, seq int64
	var data []byte
	if err := raw.QueryRow(`SELECT blob_id, seq, data FROM chunks ORDER BY blob_id, seq LIMIT 1`).Scan(&blob, &seq, &data); err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if _, err := raw.Exec(`UPDATE chunks SET data = ? WHERE blob_id = ? AND seq = ?`, data, blob, seq); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err = Copy(ctx, s1, s2, nil)
	if err == nil || !strings.Contains(err.Error(), "differs from its source in chunks") || strings.Contains(err.Error(), "messages") {
		t.Fatalf("copy run again over a changed chunk: %v", err)
	}
}

// TestCopyRefuses: a destination holding anything but an unfinished copy
// of the source, a source this copy cannot read whole, and a copy onto
// itself are refused before a row is copied, naming what was found.
func TestCopyRefuses(t *testing.T) {
	s1 := sqliteOptions(t, "source.db")
	fillStore(t, s1.Path)

	// A store that a gateway opened: its own data key, a message.
	used := func(t *testing.T, opts Options) {
		db := openTestStore(t, opts, testKeys(t))
		commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "elsewhere"}, []testPart{{plainPart, []byte("x")}}, patient)
		db.Close()
		gatewayGone(t, opts)
	}
	for _, tc := range []struct {
		name    string
		from    func(t *testing.T) Options
		to      func(t *testing.T) Options
		want    string
		toAfter int // messages in the destination afterwards; -1: no store
	}{
		{"PostgreSQL a gateway used", nil, func(t *testing.T) Options { o := pgOptions(t); used(t, o); return o },
			"already holds data that is not a copy of this source (its row id=1 of data_keys is not the source's): data_keys (1 row), blobs (1 row), chunks (1 row), messages (1 row)", 1},
		{"SQLite a gateway used", nil, func(t *testing.T) Options { o := sqliteOptions(t, "used.db"); used(t, o); return o },
			"already holds data that is not a copy of this source (its row id=1 of data_keys is not the source's)", 1},
		{"another copy", nil, func(t *testing.T) Options {
			o := pgOptions(t)
			other := sqliteOptions(t, "other.db")
			fillStore(t, other.Path)
			if _, err := Copy(t.Context(), other, o, nil); err != nil {
				t.Fatal(err)
			}
			return o
		}, "its row id=1 of data_keys is not the source's", 4},
		{"a database of something else", nil, func(t *testing.T) Options {
			o := pgOptions(t)
			db, err := openPostgres(o.DSN, 1, "test")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE patients (id BIGINT PRIMARY KEY); CREATE TABLE visits (id BIGINT)`); err != nil {
				t.Fatal(err)
			}
			return o
		}, "destination: it is not empty: it holds the tables patients, visits (schema version 0)", -1},
		{"a source with a table the copy does not know", func(t *testing.T) Options {
			o := sqliteOptions(t, "extra.db")
			fillStore(t, o.Path)
			raw, _ := sql.Open("sqlite3", sqliteDSN(o.Path, readerStatements))
			defer raw.Close()
			if _, err := raw.Exec(`CREATE TABLE job_leases (job_id INTEGER PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			return o
		}, nil, "the source has the table job_leases, which this copy does not know", 0},
		{"a source at an older schema", func(t *testing.T) Options {
			o := sqliteOptions(t, "old.db")
			fillStore(t, o.Path)
			raw, _ := sql.Open("sqlite3", sqliteDSN(o.Path, readerStatements))
			defer raw.Close()
			if _, err := raw.Exec(`PRAGMA user_version = 5`); err != nil {
				t.Fatal(err)
			}
			return o
		}, nil, "source: its schema is at version 5, this program's at", -1},
		{"no source", func(t *testing.T) Options { return sqliteOptions(t, "missing.db") }, nil, "missing.db does not exist", -1},
		{"itself", nil, func(*testing.T) Options { return s1 }, "the source and the destination are the same store", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, to := s1, pgOptions(t)
			if tc.from != nil {
				from = tc.from(t)
			}
			if tc.to != nil {
				to = tc.to(t)
			}
			_, statErr := os.Stat(from.Path)
			_, err := Copy(t.Context(), from, to, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Copy: %v\nwant an error saying %q", err, tc.want)
			}
			if from.Path != "" {
				if _, err := os.Stat(from.Path); (err == nil) != (statErr == nil) {
					t.Errorf("the source file was there: %v; now: %v", statErr, err)
				}
			}
			// Nothing was copied.
			if n := messagesIn(t, to); n != tc.toAfter {
				t.Errorf("the destination holds %d messages, want %d", n, tc.toAfter)
			}
		})
	}
}

// gatewayGone waits until PostgreSQL has ended the sessions of a gateway
// that closed its connections to the database at opts: a server process
// ends a moment after its client has gone.
func gatewayGone(t *testing.T, opts Options) {
	t.Helper()
	if opts.Driver != Postgres {
		return
	}
	db, err := openRaw(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(10 * time.Second); db.notRunning(t.Context()) != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(db.notRunning(t.Context()))
		}
	}
}

// messagesIn counts the messages of the store at opts without changing
// it: -1 when it holds no store.
func messagesIn(t *testing.T, opts Options) int {
	t.Helper()
	db, err := openRaw(opts)
	if err != nil {
		return -1
	}
	defer db.Close()
	tables, err := db.tableNames(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tables, "messages") {
		return -1
	}
	n, err := db.countRows(t.Context(), "messages")
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// TestCopyRefusesRunningGateway: a SQLite file that another process holds
// open, and a PostgreSQL database that a gateway is connected to, are
// refused as sources (and the database as a destination); once the
// process is gone, the same copy goes through.
func TestCopyRefusesRunningGateway(t *testing.T) {
	ctx := t.Context()
	s1 := sqliteOptions(t, "source.db")
	fx := fillStore(t, s1.Path)

	child := helperProcess(t, map[string]string{"hold": s1.Path})
	_, err := Copy(ctx, s1, pgOptions(t), nil)
	if want := fmt.Sprintf("source.db is open in process %d: stop the gateway", child.cmd.Process.Pid); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("copy of a file held open: %v\nwant %q", err, want)
	}
	child.stop(t)
	pg := pgOptions(t)
	if _, err := Copy(ctx, s1, pg, nil); err != nil {
		t.Fatalf("once the process is gone: %v", err)
	}

	gw := openTestStore(t, pg, fx.keys) // a gateway node on the copy
	if _, err := gw.CountMessages(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = Copy(ctx, pg, sqliteOptions(t, "back.db"), nil)
	if err == nil || !strings.Contains(err.Error(), "source: ") || !strings.Contains(err.Error(), "securetextd session") ||
		!strings.Contains(err.Error(), "connected to the database (from 127.0.0.1): stop every gateway node") {
		t.Fatalf("copy of a database a gateway uses: %v", err)
	}
	other := sqliteOptions(t, "other.db")
	fillStore(t, other.Path)
	_, err = Copy(ctx, other, pg, nil)
	if err == nil || !strings.Contains(err.Error(), "destination: ") || !strings.Contains(err.Error(), "securetextd session") {
		t.Fatalf("copy into a database a gateway uses: %v", err)
	}
}

// TestCopyTables holds copyTables to the schema the migrations make, on
// both engines: every table is copied or named in schemaTables, each by
// its primary key, after the tables its foreign keys name.
func TestCopyTables(t *testing.T) {
	for _, opts := range []Options{sqliteOptions(t, "fresh.db"), pgOptions(t)} {
		t.Run(opts.Driver, func(t *testing.T) {
			ctx := t.Context()
			db, err := openSchema(ctx, opts, "test")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			names, err := db.tableNames(ctx)
			if err != nil {
				t.Fatal(err)
			}
			order := map[string]int{}
			for i, tb := range copyTables {
				order[tb.name] = i
				if !slices.Contains(names, tb.name) {
					t.Errorf("copyTables names %s, which the migrations do not make", tb.name)
				}
			}
			for _, n := range names {
				if _, ok := order[n]; !ok && schemaTables[n] == "" {
					t.Errorf("the migrations make the table %s, which store copy does not know: add a line for it to copyTables "+
						"(store/copy.go), after the tables its foreign keys name, with its primary key", n)
				}
			}
			for i, tb := range copyTables {
				if !slices.Contains(names, tb.name) {
					continue
				}
				pk, fks := keysOf(t, db, tb.name)
				if !slices.Equal(pk, tb.key) {
					t.Errorf("copyTables reads %s by %v; its primary key is %v", tb.name, tb.key, pk)
				}
				for _, ref := range fks {
					if j, ok := order[ref]; !ok || j >= i {
						t.Errorf("%s has a foreign key to %s, which copyTables must list before it", tb.name, ref)
					}
				}
			}
		})
	}
}

// keysOf returns the primary key of table and the tables its foreign keys
// name.
func keysOf(t *testing.T, db *DB, table string) (pk, fks []string) {
	t.Helper()
	pkQ := `SELECT k.column_name FROM information_schema.table_constraints c
		JOIN information_schema.key_column_usage k
			ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema AND k.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND c.table_name = ? AND c.constraint_type = 'PRIMARY KEY'
		ORDER BY k.ordinal_position`
	fkQ := `SELECT DISTINCT u.table_name FROM information_schema.table_constraints c
		JOIN information_schema.constraint_column_usage u
			ON u.constraint_name = c.constraint_name AND u.constraint_schema = c.constraint_schema
		WHERE c.table_schema = current_schema() AND c.table_name = ? AND c.constraint_type = 'FOREIGN KEY'`
	if db.eng.name == SQLite {
		pkQ = `SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`
		fkQ = `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)`
	}
	read := func(q string) []string {
		rows, err := db.read.QueryContext(t.Context(), q, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}
	return read(pkQ), read(fkQ)
}

// TestCopyRowEncoding writes the same awkward values into a table on each
// engine, through store copy's own insert, and reads them back: both
// engines give the same Go values, the same canonical encoding and the
// same digest, so a check never differs for want of agreeing on a type.
func TestCopyRowEncoding(t *testing.T) {
	ctx := t.Context()
	rows := [][]any{ // in key order, as they are read back
		{int64(-9223372036854775808), "ünï\u00a0code ✓", []byte{}, -0.25, int64(0)},
		{int64(1), "plain", []byte{0, 1, 2}, 1.5, nil},
		{int64(9223372036854775807), "", []byte("x"), 1e300, int64(7)},
	}
	var encodings [][]byte
	var sums [][32]byte
	for _, opts := range []Options{sqliteOptions(t, "enc.db"), pgOptions(t)} {
		ddl := `CREATE TABLE enc (id INTEGER PRIMARY KEY, t TEXT NOT NULL, b BLOB NOT NULL, r REAL NOT NULL, n INTEGER) STRICT`
		if opts.Driver == Postgres {
			ddl = `CREATE TABLE enc (id BIGINT PRIMARY KEY, t TEXT NOT NULL, b BYTEA NOT NULL, r DOUBLE PRECISION NOT NULL, n BIGINT)`
		}
		db, err := openSchema(ctx, opts, "test")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.write.ExecContext(ctx, ddl); err != nil {
			t.Fatal(err)
		}
		cols, err := db.columns(ctx, "enc")
		if err != nil {
			t.Fatal(err)
		}
		ts := &tableState{copyTable: copyTable{"enc", []string{"id"}}, cols: cols}
		if err := db.update(ctx, func(tx *sql.Tx) error { return insertRows(ctx, tx, ts, rows) }); err != nil {
			t.Fatal(err)
		}
		back, _, err := db.readBatch(ctx, ts, nil, 10, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		var enc []byte
		for _, r := range back {
			enc = encodeRow(enc, r)
		}
		encodings = append(encodings, enc)
		_, sum, err := db.tableDigest(ctx, ts, 1, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
		var want []byte
		for _, r := range rows {
			want = encodeRow(want, r)
		}
		if !bytes.Equal(enc, want) {
			t.Errorf("%s: the rows read back encode otherwise than the rows written:\n%v", opts.Driver, back)
		}
	}
	if !bytes.Equal(encodings[0], encodings[1]) || sums[0] != sums[1] {
		t.Error("SQLite and PostgreSQL encode the same rows differently")
	}
}
