package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Moving a store to another engine: store copy.
//
// Copy fills an empty store, SQLite or PostgreSQL, with the rows of
// another, as they are: sealed values stay sealed, and nothing is opened,
// so the copy needs no key file. It needs none to stay openable either.
// Every sealed value is bound to its place (place.go), and a place is
// named by ids — a table, a column and a row's key; a part's message,
// index and blob; a data key's id — which the copy keeps unchanged, so
// every seal opens in the copy as it did in the source, with the same key
// file. The data keys themselves are rows (data_keys), copied like the
// rest: the copy seals nothing new, which is also why the destination is
// not opened with OpenWith (that would make a data key of its own) but
// with openSchema, its first half: the store's own migrations, and no
// key.
//
// Tables are copied in copyTables' order, which puts every table after
// those its foreign keys point to, each in primary-key order, in batches
// of a few MiB, each batch one destination transaction. So the
// destination always holds, of each table, the first rows in the source's
// order, and of the tables before it all their rows: cut short (a crash,
// SIGKILL, ^C), the copy finds where it stopped by counting the
// destination's rows, checks that the last of them is the source's, and
// carries on after it. Nothing is copied twice or left out.
//
// At the end each table is read whole on both sides, and its rows counted
// and digested (tableDigest): a copy is good only when every table has the
// same count and digest on both. The audit trail is copied row for row, so
// its hash chain verifies in the copy (securetextd audit verify).
//
// The source is read while its gateway is stopped: a SQLite file that
// another process holds open, or a PostgreSQL database that securetextd
// sessions are connected to, is refused (copy_open.go). Running it again
// after the gateway wrote more would find rows the destination lacks in
// the middle of tables, and the check would refuse the copy.

// copyTable is a table that store copy fills, and its primary key, by
// which it is read in order and a cut-short copy finds where it stopped.
type copyTable struct {
	name string
	key  []string
}

// copyTables are the store's tables in the order store copy fills them: a
// table comes after every table its foreign keys name. A migration that
// adds a table adds a line here (TestCopyTables says so, and says where):
// until then, store copy refuses a store that has the table, rather than
// leave its rows behind.
var copyTables = []copyTable{
	{"data_keys", []string{"id"}},
	{"blobs", []string{"id"}},
	{"chunks", []string{"blob_id", "seq"}},
	{"messages", []string{"id"}},
	{"parts", []string{"message_id", "idx"}},
	{"conversations", []string{"id"}},
	{"links", []string{"token_hash"}},
	{"numbered_links", []string{"id"}},
	{"conversation_messages", []string{"conversation_id", "message_id"}},
	{"senders", []string{"address"}},
	{"jobs", []string{"id"}},
	{"recipients", []string{"phone"}},
	{"sessions", []string{"token_hash"}},
	{"reset_tokens", []string{"token_hash"}},
	{"confirm_tokens", []string{"token_hash"}},
	{"sign_ins", []string{"phone", "at"}},
	{"texts", []string{"job_id"}},
	{"text_ids", []string{"provider_id"}},
	{"revoke_tokens", []string{"token_hash"}},
	{"message_views", []string{"message_id", "conversation_id"}},
	{"audit", []string{"seq"}},
	{"api_keys", []string{"id"}},
	{"api_idempotency", []string{"sender", "key_hash"}},
	{"ops_probe", []string{"id"}},
	{"sweep_log", []string{"seq"}},
	{"limit_strikes", []string{"kind", "key"}},
	{"auth_failures", []string{"kind", "key"}},
	{"holds", []string{"conversation_id"}},
	{"conversation_deletes", []string{"conversation_id"}},
	{"recipient_codes", []string{"phone"}},
	{"recipient_devices", []string{"token_hash", "phone"}},
	{"recipient_checks", []string{"phone"}},
	{"sender_recovery_codes", []string{"address", "code_hash"}},
	{"console_sessions", []string{"token_hash"}},
	{"text_fallbacks", []string{"job_id"}},
	{"conversation_seen", []string{"conversation_id", "phone"}},
}

// schemaTables are tables that the migrations keep, and that store copy
// therefore leaves alone, with the reason.
var schemaTables = map[string]string{
	"schema_version": "PostgreSQL's schema version, which the migrations set",
	"bind_migration": "migration 0006's marker, which a source must have cleared (a copy holds nothing sealed the older way)",
	"sms_rate":       "the SMS rate's one row, which migration 0007 makes: when the next text may go, a moment's state that a stopped gateway no longer needs",
}

// CopyProgress reports how far Copy has come, once per batch.
type CopyProgress struct {
	// Stage is "copy" while rows are copied, "check" while they are
	// compared.
	Stage string
	// Table is the table at hand; Done of its Rows rows are copied (or
	// checked) so far, by this run and those before it.
	Table      string
	Done, Rows int64
}

// TableCheck is the final check of one table: its rows were counted and
// digested on both sides.
type TableCheck struct {
	Table string
	// Rows and Digest are the source's; DestRows and DestDigest the
	// destination's. Digest is order-independent (tableDigest).
	Rows, DestRows     int64
	Digest, DestDigest [32]byte
}

// OK reports whether the table is the same on both sides.
func (c TableCheck) OK() bool { return c.Rows == c.DestRows && c.Digest == c.DestDigest }

// CopyResult says what Copy did.
type CopyResult struct {
	// Copied is the number of rows this run copied; Resumed says that it
	// carried on a copy cut short.
	Copied  int64
	Resumed bool
	// Tables holds the check of every table, in copy order.
	Tables []TableCheck
}

// Copy copies the store at from into the store at to, which must be empty
// or hold a copy of from cut short (see the top of this file), and then
// checks every table on both sides. It refuses a destination that holds
// anything else, naming what it found, and a source that a gateway may be
// writing to. A mismatch found by the check is an error, returned with
// the result that shows it. progress, when not nil, is told of each
// batch.
func Copy(ctx context.Context, from, to Options, progress func(CopyProgress)) (*CopyResult, error) {
	c, err := openCopy(ctx, from, to)
	if err != nil {
		return nil, err
	}
	defer c.close()
	c.progress = progress
	return c.run(ctx)
}

// copier is one run of Copy.
type copier struct {
	src, dst *DB
	tables   []*tableState
	progress func(CopyProgress)
	// batchBytes and batchRows bound what one batch reads and commits.
	batchBytes int
	batchRows  int
	// Tests cut a copy short with these: afterBatch runs after each
	// batch commits, duringBatch inside its transaction (an error rolls
	// it back), beforeCheck between the copy and the check.
	afterBatch, duringBatch func(table string) error
	beforeCheck             func(ctx context.Context) error
}

// tableState is a table being copied: its columns, as both sides have
// them, and its row counts.
type tableState struct {
	copyTable
	cols     []column
	src, dst int64
}

const (
	// copyBatchBytes bounds the bytes of one batch: sixteen of the
	// largest rows, chunks of sealed content.
	copyBatchBytes = 16 * chunkSize
	// copyBatchRows bounds the rows of one batch of small rows.
	copyBatchRows = 1000
)

func (c *copier) close() {
	c.src.Close()
	c.dst.Close()
}

// run copies what the destination lacks, then checks every table.
func (c *copier) run(ctx context.Context) (*CopyResult, error) {
	res := &CopyResult{}
	for _, t := range c.tables {
		var err error
		if t.src, err = c.src.countRows(ctx, t.name); err != nil {
			return nil, fmt.Errorf("store copy: source: %w", err)
		}
		if t.dst, err = c.dst.countRows(ctx, t.name); err != nil {
			return nil, fmt.Errorf("store copy: destination: %w", err)
		}
	}
	for _, t := range c.tables {
		res.Resumed = res.Resumed || t.dst > 0
	}
	first, after, err := c.resumeAt(ctx)
	if err != nil {
		return nil, err
	}
	// A new SQLite file has migration 0006's marker, which OpenWith would
	// clear at once, having nothing to bind; what is copied is bound.
	if err := c.dst.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM bind_migration`)
		return err
	}); err != nil {
		return nil, fmt.Errorf("store copy: destination: %w", err)
	}
	for i := first; i < len(c.tables); i++ {
		n, err := c.copyTable(ctx, c.tables[i], after)
		res.Copied += n
		if err != nil {
			return res, err
		}
		after = nil
	}
	if c.beforeCheck != nil {
		if err := c.beforeCheck(ctx); err != nil {
			return res, err
		}
	}
	if res.Tables, err = c.check(ctx); err != nil {
		return res, err
	}
	var bad []string
	for _, t := range res.Tables {
		if !t.OK() {
			bad = append(bad, fmt.Sprintf("%s (source %s, digest %s; destination %s, digest %s)",
				t.Table, rowCount(t.Rows), short(t.Digest), rowCount(t.DestRows), short(t.DestDigest)))
		}
	}
	if len(bad) > 0 {
		return res, fmt.Errorf("store copy: the copy differs from its source in %s: it is not good; copy into an empty database again", strings.Join(bad, ", "))
	}
	return res, nil
}

// short is the first 8 bytes of a digest, in hex: enough to tell two apart.
func short(d [32]byte) string { return hex.EncodeToString(d[:8]) }

// resumeAt finds where the copy stopped: every table before first is
// complete, and of table first the destination holds the rows up to the
// key after (nil: none). It refuses a destination whose rows are not such
// a prefix of the source's, naming the tables that hold rows.
func (c *copier) resumeAt(ctx context.Context) (first int, after []any, err error) {
	var found []string
	for _, t := range c.tables {
		if t.dst > 0 {
			found = append(found, fmt.Sprintf("%s (%s)", t.name, rowCount(t.dst)))
		}
	}
	if len(found) == 0 {
		return 0, nil, nil
	}
	first = -1
	why := ""
	for i, t := range c.tables {
		switch {
		case t.dst > t.src:
			why = fmt.Sprintf("it has %s in %s, the source %d", rowCount(t.dst), t.name, t.src)
		case first >= 0 && t.dst > 0:
			why = fmt.Sprintf("it has rows in %s but not every row of %s, which a copy fills first", t.name, c.tables[first].name)
		case t.dst > 0:
			last, _, same, err := c.destHas(ctx, t, t.dst-1)
			if err != nil {
				return 0, nil, err
			}
			if !same {
				why = fmt.Sprintf("its row %s of %s is not the source's", keyString(t.key, last), t.name)
				break
			}
			if t.dst == t.src {
				break
			}
			// The rows of a table cut short are the first of the
			// source's: the one after the last is not there yet.
			next, has, _, err := c.destHas(ctx, t, t.dst)
			if err != nil {
				return 0, nil, err
			}
			if has {
				why = fmt.Sprintf("it has row %s of %s, but not all the rows before it", keyString(t.key, next), t.name)
			}
			after = last
		}
		if why != "" {
			return 0, nil, fmt.Errorf("store copy: the destination already holds data that is not a copy of this source "+
				"(%s): %s; copy into an empty database (a new PostgreSQL database, or a new SQLite file)",
				why, strings.Join(found, ", "))
		}
		if first < 0 && t.dst < t.src {
			first = i
		}
	}
	if first < 0 {
		// Everything was copied: the run before was cut short while it
		// checked, or this is a check of a finished copy.
		first = len(c.tables)
	}
	return first, after, nil
}

// destHas reads the source's row at offset n of t (in key order), and
// reports its key, whether the destination has a row with that key, and
// whether that row is the same.
func (c *copier) destHas(ctx context.Context, t *tableState, n int64) (key []any, has, same bool, err error) {
	row, err := c.src.rowAt(ctx, t, n)
	if err != nil {
		return nil, false, false, fmt.Errorf("store copy: source: %w", err)
	}
	key = t.keyOf(row)
	theirs, err := c.dst.rowByKey(ctx, t, key)
	if err != nil {
		return nil, false, false, fmt.Errorf("store copy: destination: %w", err)
	}
	return key, theirs != nil, theirs != nil && slices.Equal(encodeRow(nil, row), encodeRow(nil, theirs)), nil
}

// copyTable copies the rows of t after the key after (nil: all), batch by
// batch, and returns how many it copied.
func (c *copier) copyTable(ctx context.Context, t *tableState, after []any) (int64, error) {
	var copied int64
	limit := min(16, c.batchRows) // grows to batchRows while the rows are small
	for {
		rows, size, err := c.src.readBatch(ctx, t, after, limit, c.batchBytes)
		if err != nil {
			return copied, fmt.Errorf("store copy: read %s: %w", t.name, err)
		}
		if len(rows) == 0 {
			return copied, nil
		}
		if err := c.dst.update(ctx, func(tx *sql.Tx) error {
			if err := insertRows(ctx, tx, t, rows); err != nil {
				return err
			}
			if c.duringBatch != nil {
				return c.duringBatch(t.name)
			}
			return nil
		}); err != nil {
			return copied, fmt.Errorf("store copy: write %s: %w", t.name, err)
		}
		after = t.keyOf(rows[len(rows)-1])
		copied += int64(len(rows))
		t.dst += int64(len(rows))
		if c.progress != nil {
			c.progress(CopyProgress{Stage: "copy", Table: t.name, Done: t.dst, Rows: t.src})
		}
		if c.afterBatch != nil {
			if err := c.afterBatch(t.name); err != nil {
				return copied, err
			}
		}
		limit = nextLimit(limit, len(rows), size, c.batchBytes, c.batchRows)
	}
}

// nextLimit is the row limit of the next batch, given what the last one
// read: as many rows as fit in batchBytes at the size seen, within 1 to
// batchRows, growing at most fourfold.
func nextLimit(limit, rows, size, batchBytes, batchRows int) int {
	per := max(size/max(rows, 1), 1)
	return max(1, min(batchBytes/per, batchRows, limit*4))
}

// check counts and digests every table on both sides, the two at once.
func (c *copier) check(ctx context.Context) ([]TableCheck, error) {
	var out []TableCheck
	for _, t := range c.tables {
		tc := TableCheck{Table: t.name}
		done := make(chan error, 1)
		go func() {
			var err error
			tc.DestRows, tc.DestDigest, err = c.dst.tableDigest(ctx, t, c.batchBytes, c.batchRows, nil)
			done <- err
		}()
		var report func(int64)
		if c.progress != nil {
			report = func(n int64) { c.progress(CopyProgress{Stage: "check", Table: t.name, Done: n, Rows: t.src}) }
		}
		var err error
		tc.Rows, tc.Digest, err = c.src.tableDigest(ctx, t, c.batchBytes, c.batchRows, report)
		if derr := <-done; derr != nil {
			return nil, fmt.Errorf("store copy: check %s in the destination: %w", t.name, derr)
		}
		if err != nil {
			return nil, fmt.Errorf("store copy: check %s in the source: %w", t.name, err)
		}
		out = append(out, tc)
	}
	return out, nil
}

// keyString shows a row's key for a message: "id=3", or
// "(blob_id, seq)=(4, 0)"; byte strings in hex, cut short.
func keyString(names []string, key []any) string {
	vals := make([]string, len(key))
	for i, v := range key {
		switch v := v.(type) {
		case []byte:
			vals[i] = hex.EncodeToString(v[:min(len(v), 8)])
			if len(v) > 8 {
				vals[i] += "…"
			}
		case string:
			vals[i] = fmt.Sprintf("%q", v)
		default:
			vals[i] = fmt.Sprint(v)
		}
	}
	if len(names) == 1 {
		return names[0] + "=" + vals[0]
	}
	return "(" + strings.Join(names, ", ") + ")=(" + strings.Join(vals, ", ") + ")"
}

// rowCount says "1 row" or "n rows".
func rowCount(n int64) string { return fmt.Sprintf("%d %s", n, plural(n, "row", "rows")) }

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
