package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
)

// Rows as store copy moves and compares them: read in key order in
// batches, written with the same columns, and encoded canonically for the
// check, the same way whichever engine they came from.

// colKind is what a column holds, on either engine.
type colKind byte

const (
	colInt  colKind = iota + 1 // INTEGER, BIGINT
	colText                    // TEXT
	colBlob                    // BLOB, BYTEA
	colReal                    // REAL, DOUBLE PRECISION
)

// column is a column of a table being copied.
type column struct {
	name string
	kind colKind
}

// kindOf reads a column's declared type, as SQLite's table_info or
// PostgreSQL's information_schema give it.
func kindOf(typ string) (colKind, bool) {
	switch strings.ToLower(typ) {
	case "integer", "int", "bigint", "smallint":
		return colInt, true
	case "real", "double precision":
		return colReal, true
	case "text":
		return colText, true
	case "blob", "bytea":
		return colBlob, true
	}
	return 0, false
}

// tableNames lists the tables of the store, leaving out SQLite's own.
func (db *DB) tableNames(ctx context.Context) ([]string, error) {
	q := `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	if db.eng.name == SQLite {
		q = `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`
	}
	var names []string
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			names = append(names, n)
		}
		return rows.Err()
	})
	return names, err
}

// columns lists the columns of table, in their order.
func (db *DB) columns(ctx context.Context, table string) ([]column, error) {
	q := `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`
	if db.eng.name == SQLite {
		q = `SELECT name, type FROM pragma_table_info(?) ORDER BY cid`
	}
	var cols []column
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, table)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				return err
			}
			k, ok := kindOf(typ)
			if !ok {
				return fmt.Errorf("column %s.%s is of type %s, which store copy does not know", table, name, typ)
			}
			cols = append(cols, column{name, k})
		}
		return rows.Err()
	})
	return cols, err
}

// ident quotes a table or column name.
func ident(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// list is the quoted names of cols, comma-separated.
func list(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = ident(n)
	}
	return strings.Join(q, ", ")
}

func (t *tableState) colNames() []string {
	n := make([]string, len(t.cols))
	for i, c := range t.cols {
		n[i] = c.name
	}
	return n
}

// keyOf returns the key of a row of t.
func (t *tableState) keyOf(row []any) []any {
	key := make([]any, len(t.key))
	for i, k := range t.key {
		for j, c := range t.cols {
			if c.name == k {
				key[i] = row[j]
			}
		}
	}
	return key
}

// countRows counts the rows of table.
func (db *DB) countRows(ctx context.Context, table string) (int64, error) {
	var n int64
	err := db.view(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, "SELECT count(*) FROM "+ident(table)).Scan(&n)
	})
	return n, err
}

// readBatch reads up to limit rows of t whose key follows after (nil:
// from the first), in key order, in one read transaction; it stops early
// once the rows read hold maxBytes. It returns the rows and their size.
func (db *DB) readBatch(ctx context.Context, t *tableState, after []any, limit, maxBytes int) ([][]any, int, error) {
	q := "SELECT " + list(t.colNames()) + " FROM " + ident(t.name)
	var args []any
	if after != nil {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(t.key)), ", ")
		if len(t.key) == 1 {
			q += " WHERE " + ident(t.key[0]) + " > ?"
		} else {
			q += " WHERE (" + list(t.key) + ") > (" + marks + ")"
		}
		args = append(args, after...)
	}
	q += " ORDER BY " + list(t.key) + " LIMIT ?"
	args = append(args, limit)
	var out [][]any
	size := 0
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for size < maxBytes && rows.Next() {
			row, n, err := scanRow(rows, t.cols)
			if err != nil {
				return err
			}
			out = append(out, row)
			size += n
		}
		return rows.Err()
	})
	return out, size, err
}

// rowAt reads the row at offset n of t, in key order.
func (db *DB) rowAt(ctx context.Context, t *tableState, n int64) ([]any, error) {
	var row []any
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT "+list(t.colNames())+" FROM "+ident(t.name)+
			" ORDER BY "+list(t.key)+" LIMIT 1 OFFSET ?", n)
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return err
			}
			return fmt.Errorf("%s has no row %d", t.name, n)
		}
		row, _, err = scanRow(rows, t.cols)
		return err
	})
	return row, err
}

// rowByKey reads the row of t with key, or nil when there is none.
func (db *DB) rowByKey(ctx context.Context, t *tableState, key []any) ([]any, error) {
	where := make([]string, len(t.key))
	for i, k := range t.key {
		where[i] = ident(k) + " = ?"
	}
	var row []any
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT "+list(t.colNames())+" FROM "+ident(t.name)+
			" WHERE "+strings.Join(where, " AND "), key...)
		if err != nil {
			return err
		}
		defer rows.Close()
		if rows.Next() {
			row, _, err = scanRow(rows, t.cols)
			return err
		}
		return rows.Err()
	})
	return row, err
}

// scanRow reads the current row into values of one Go type per kind of
// column — int64, string, []byte, or nil for NULL — whichever engine it
// came from, and returns them and their size in bytes.
func scanRow(rows *sql.Rows, cols []column) ([]any, int, error) {
	row := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range row {
		ptrs[i] = &row[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, 0, err
	}
	size := 0
	for i, c := range cols {
		v, err := normalize(row[i], c.kind)
		if err != nil {
			return nil, 0, fmt.Errorf("column %s: %w", c.name, err)
		}
		row[i] = v
		switch v := v.(type) {
		case string:
			size += len(v)
		case []byte:
			size += len(v)
		default:
			size += 8
		}
	}
	return row, size, nil
}

// normalize gives v the Go type of its kind.
func normalize(v any, k colKind) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch v := v.(type) {
	case int64:
		if k == colInt {
			return v, nil
		}
	case float64:
		if k == colReal {
			return v, nil
		}
	case float32:
		if k == colReal {
			return float64(v), nil
		}
	case string:
		switch k {
		case colText:
			return v, nil
		case colBlob:
			return []byte(v), nil
		}
	case []byte:
		switch k {
		case colText:
			return string(v), nil
		case colBlob:
			if v == nil {
				v = []byte{} // a nil []byte would be written as NULL
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("a %T where a %s was expected", v, k)
}

func (k colKind) String() string {
	switch k {
	case colInt:
		return "integer"
	case colText:
		return "text"
	case colBlob:
		return "byte string"
	case colReal:
		return "real number"
	}
	return "?"
}

// insertGroup is how many rows one INSERT statement writes, for tables of
// small rows.
const insertGroup = 32

// insertRows writes rows into t, inside tx: insertGroup at a time with
// one statement, the rest one by one. Only two texts of statements are
// made per table, so that prepared statements are reused.
func insertRows(ctx context.Context, tx *sql.Tx, t *tableState, rows [][]any) error {
	values := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
	head := "INSERT INTO " + ident(t.name) + " (" + list(t.colNames()) + ") VALUES "
	if len(rows) >= insertGroup {
		q := head + strings.TrimSuffix(strings.Repeat(values+", ", insertGroup), ", ")
		args := make([]any, 0, insertGroup*len(t.cols))
		for len(rows) >= insertGroup {
			args = args[:0]
			for _, r := range rows[:insertGroup] {
				args = append(args, r...)
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
			rows = rows[insertGroup:]
		}
	}
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, head+values, r...); err != nil {
			return err
		}
	}
	return nil
}

// tableDigest reads every row of t and returns their number and their
// digest: the sum, modulo 2^256, of the SHA-256 of each row's canonical
// encoding (writeRow). A sum does not depend on the order of the rows,
// which the two engines may sort differently (text keys follow the
// database's collation on PostgreSQL, bytes on SQLite); a row missing,
// added or changed changes it. report, when not nil, is told of the rows
// read so far.
func (db *DB) tableDigest(ctx context.Context, t *tableState, batchBytes, batchRows int, report func(int64)) (int64, [32]byte, error) {
	var (
		n     int64
		sum   [32]byte
		after []any
		limit = min(16, batchRows)
		h     = sha256.New()
		d     [32]byte
	)
	for {
		rows, size, err := db.readBatch(ctx, t, after, limit, batchBytes)
		if err != nil {
			return 0, sum, err
		}
		if len(rows) == 0 {
			return n, sum, nil
		}
		for _, r := range rows {
			h.Reset()
			writeRow(h, r)
			addDigest(&sum, h.Sum(d[:0]))
		}
		n += int64(len(rows))
		after = t.keyOf(rows[len(rows)-1])
		limit = nextLimit(limit, len(rows), size, batchBytes, batchRows)
		if report != nil {
			report(n)
		}
	}
}

// addDigest adds d to sum, both 256-bit big-endian numbers, modulo 2^256.
func addDigest(sum *[32]byte, d []byte) {
	carry := uint16(0)
	for i := 31; i >= 0; i-- {
		s := uint16(sum[i]) + uint16(d[i]) + carry
		sum[i], carry = byte(s), s>>8
	}
}

// writeRow writes the canonical encoding of a row to w: per column, in
// order, a tag — 0 NULL, 1 integer, 2 text, 3 byte string, 4 real — then
// an integer's 8 bytes big-endian (a real's IEEE 754 bits), or a string's
// length (uvarint) and bytes.
func writeRow(w io.Writer, row []any) {
	var head [1 + binary.MaxVarintLen64]byte
	for _, v := range row {
		switch v := v.(type) {
		case nil:
			w.Write([]byte{0})
		case int64:
			head[0] = 1
			binary.BigEndian.PutUint64(head[1:], uint64(v))
			w.Write(head[:9])
		case float64:
			head[0] = 4
			binary.BigEndian.PutUint64(head[1:], math.Float64bits(v))
			w.Write(head[:9])
		case string:
			head[0] = 2
			w.Write(binary.AppendUvarint(head[:1], uint64(len(v))))
			io.WriteString(w, v)
		case []byte:
			head[0] = 3
			w.Write(binary.AppendUvarint(head[:1], uint64(len(v))))
			w.Write(v)
		}
	}
}

// encodeRow returns writeRow's encoding of row, appended to b.
func encodeRow(b []byte, row []any) []byte {
	buf := bytes.NewBuffer(b)
	writeRow(buf, row)
	return buf.Bytes()
}
