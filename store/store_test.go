package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/clamdtest"
	"github.com/securetextd/securetextd/internal/pgtest"
)

// testKeys writes a hybrid key file in a temporary directory and loads it.
func testKeys(t testing.TB) *Keyring {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.txt")
	if _, err := WriteKeyFile(path, true); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMain(m *testing.M) { pgtest.Main(m, clamdtest.StopShared) }

// testOptions says where a test's store lives: a new SQLite file in a
// temporary directory, or a new database on the private PostgreSQL server
// when the tests run on PostgreSQL (pgtest.Enabled).
func testOptions(t testing.TB) Options {
	t.Helper()
	if pgtest.Enabled() {
		return Options{Driver: Postgres, DSN: pgtest.Shared(t).NewDatabase(t)}
	}
	return Options{Driver: SQLite, Path: filepath.Join(t.TempDir(), "securetextd.db")}
}

// openTestDB opens a new store (see testOptions), closed at the end of the
// test.
func openTestDB(t testing.TB) *DB {
	t.Helper()
	return openTestStore(t, testOptions(t), testKeys(t))
}

// openTestStore opens the store at opts with keys, closed at the end of
// the test.
func openTestStore(t testing.TB, opts Options, keys *Keyring) *DB {
	t.Helper()
	db, err := OpenWith(context.Background(), opts, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testPart is a part to write into a draft, with its content.
type testPart struct {
	securetextd.Part
	content []byte
}

// commitTest writes parts into a new draft and commits it.
func commitTest(t testing.TB, db *DB, m *securetextd.Message, parts []testPart, phones ...securetextd.Phone) *Receipt {
	t.Helper()
	d := db.NewDraft()
	defer d.Discard()
	for _, p := range parts {
		w, err := d.CreatePart(p.Part)
		if err != nil {
			t.Fatal(err)
		}
		// Write in odd-sized pieces, as a MIME decoder would.
		if _, err := io.CopyBuffer(w, bytes.NewReader(p.content), make([]byte, 3001)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := d.Commit(context.Background(), m, phones)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// drainJobs returns the text jobs due now, opened, and completes them.
func drainJobs(t testing.TB, db *DB) []securetextd.TextJob {
	t.Helper()
	ctx := context.Background()
	var jobs []securetextd.TextJob
	for {
		j, err := db.NextJob(ctx, db.Now())
		if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
			return jobs
		}
		if err != nil {
			t.Fatal(err)
		}
		var tj securetextd.TextJob
		if err := json.Unmarshal(j.Payload, &tj); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, tj)
		if err := db.CompleteJob(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// count returns the number of rows in table.
func count(t testing.TB, db *DB, table string) int {
	t.Helper()
	var n int
	if err := db.read.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantCode fails the test unless err carries code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := securetextd.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	var e *securetextd.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *securetextd.Error", err)
	}
}
