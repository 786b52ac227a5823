package store

import (
	"bytes"
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// Key rotation. What the key file's identity seals directly is small: the
// data keys (envelope.go). Everything else rests on a data key: small
// values are sealed under one, and every message part is an age file (a
// header that wraps the file's random file key, then the content encrypted
// with that file key) whose header wraps the file key with one, for the
// part's place (datakey.go). (Values from before data keys, sealed to the
// identity, were sealed anew under a data key by migration 0006, bind.go.)
//
// A rotation puts a new identity first in the key file. The next Open (the
// gateway restarting, or this rekey) makes a new data key sealed to it,
// which seals everything from then on. Rekey then moves the rest onto the
// new identity and the new data key, and never decrypts content:
//
//   - every age file in a BLOB column (the data keys) gets a new header
//     that wraps its file key to the first identity; a data key's place is
//     in its content, which is not touched;
//   - every message part gets a new header that wraps its file key with the
//     newest data key, for the same place as before (its message, index
//     and blob): a rekey keeps every binding.
//
// Small values sealed under an older data key stay under it, bound as they
// were: that key is now sealed to the new identity, like the others.
//
// age v1.3.2 gives most of that through its public API: ExtractHeader
// detaches a header, DecryptHeader unwraps the file key, and a Recipient's
// Wrap makes the new recipient stanza; newHeader (header.go) writes the
// header. Every header rekey makes is checked with age's own DecryptHeader,
// under the new identity or data key alone, before it is stored: a mistake
// here fails the rekey, it cannot lose a file.
//
// A blob (the chunk rows of one message part) keeps its header in
// blobs.header and, in payload_start, where its content starts in the
// chunks (0 since the commit writes the header there; past the old
// header's bytes, zeroed, for a blob whose header was in its first chunk),
// so that the old key opens nothing once the rows are rewritten. The
// content's offsets in the chunks never move, so a download in progress
// while its blob is rekeyed carries on. Small values that are age files
// (found in any BLOB column of any table, whatever a later migration adds)
// get the new header in place of the old.
//
// Each blob, and each batch of values, is its own short transaction, and
// what is already current is skipped: a rekey can run beside the gateway,
// and one cut short by a crash is resumed by running it again.

// RekeyStats counts what a rekey did.
type RekeyStats struct {
	Blobs   int // message parts re-wrapped
	Values  int // small sealed values re-wrapped
	Current int // parts already wrapped by the newest data key, values already sealed to the newest identity
}

// rekeyBatch is how many small values one transaction re-wraps.
const rekeyBatch = 100

// Rekey re-wraps the file key of every message part with the newest data
// key, and that of every other age file (the data keys among them) to the
// keyring's first identity, the newest one. After it has run to the end,
// with the gateway already sealing to that identity (restarted after the
// key file changed, so that it seals with the data key made for it), the
// older identities can be removed from the key file. progress, if not nil,
// is called after each blob or batch.
//
// Memory stays bounded: one blob's first chunk, or one batch of small
// values, at a time.
func (db *DB) Rekey(ctx context.Context, progress func(RekeyStats)) (RekeyStats, error) {
	var st RekeyStats
	report := func() {
		if progress != nil {
			progress(st)
		}
	}
	var last int64
	for {
		var ids []int64
		err := db.view(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx,
				`SELECT id FROM blobs WHERE state = 'committed' AND id > ? ORDER BY id LIMIT ?`, last, rekeyBatch)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return rows.Err()
		})
		if err != nil {
			return st, fmt.Errorf("store: rekey: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			done, err := db.rekeyBlob(ctx, id)
			if err != nil {
				return st, fmt.Errorf("store: rekey blob %d: %w", id, err)
			}
			if done {
				st.Blobs++
			} else {
				st.Current++
			}
			last = id
			report()
		}
	}

	cols, err := db.sealedColumns(ctx)
	if err != nil {
		return st, fmt.Errorf("store: rekey: %w", err)
	}
	for _, c := range cols {
		if err := db.rekeyColumn(ctx, c, &st, report); err != nil {
			return st, fmt.Errorf("store: rekey %s.%s: %w", c.table, c.column, err)
		}
	}
	return st, nil
}

// rewrap returns header re-made for the keyring's first identity, or nil
// when header already opens with it.
func (k *Keyring) rewrap(header []byte) ([]byte, error) {
	if _, err := age.DecryptHeader(header, k.identities[0]); err == nil {
		return nil, nil
	}
	fileKey, err := age.DecryptHeader(header, k.identities...)
	if err != nil {
		return nil, fmt.Errorf("no identity of the key file opens it: %w", err)
	}
	h, err := newHeader(fileKey, k.recipient)
	if err != nil {
		return nil, err
	}
	got, err := age.DecryptHeader(h, k.identities[0])
	if err != nil || !bytes.Equal(got, fileKey) {
		return nil, fmt.Errorf("the new header does not open with the new identity: %v", err)
	}
	return h, nil
}

// rewrapPart returns the header of the part at p re-made for the newest
// data key, or nil when the newest data key wraps it already. The old
// header may be wrapped by any data key of the database, for p.
func (db *DB) rewrapPart(header []byte, p partPlace) ([]byte, error) {
	newest := db.data.recipient
	if dataKeyOf(header) == newest.id {
		_, err := age.DecryptHeader(header, db.data.part(p))
		return nil, err
	}
	fileKey, err := age.DecryptHeader(header, db.data.part(p))
	if err != nil {
		return nil, fmt.Errorf("no data key opens it: %w", err)
	}
	return db.partHeader(fileKey, p)
}

// partHeader writes the header of the part at p, its file key wrapped by
// the newest data key, and checks it with age's own parser.
func (db *DB) partHeader(fileKey []byte, p partPlace) ([]byte, error) {
	newest := db.data.recipient
	h, err := newHeader(fileKey, newest.at(p))
	if err != nil {
		return nil, err
	}
	only := &dataKeys{aeads: map[uint32]cipher.AEAD{newest.id: newest.aead}}
	got, err := age.DecryptHeader(h, only.part(p))
	if err != nil || !bytes.Equal(got, fileKey) || dataKeyOf(h) != newest.id {
		return nil, fmt.Errorf("the new header does not open with the newest data key: %v", err)
	}
	return h, nil
}

// rekeyBlob re-wraps one blob's header, in a transaction of its own. It
// reports false when the newest data key wrapped it already.
func (db *DB) rekeyBlob(ctx context.Context, id int64) (bool, error) {
	c, err := db.headerChange(ctx, id, db.rewrapPart)
	if err != nil || c == nil {
		return false, err
	}
	return true, db.update(ctx, func(tx *sql.Tx) error { return c.apply(ctx, tx) })
}

// errBadHeader is what headerChange says of a blob whose first chunk does
// not start with an age header in canonical form.
var errBadHeader = errors.New("its header is not a canonical age header")

// A headerChange replaces the header of one blob.
type headerChange struct {
	blob     int64
	old, new []byte
	oldStart int64
	inChunks bool // the old header is at the start of the first chunk
}

// headerChange gives the header of blob id, the part at p, to rewrap, and
// returns the change that stores the header rewrap returns in place of the
// old, or nil when it returns nil or the blob is gone. A header still in
// the blob's first chunk (a blob written before migration 0006 and never
// rekeyed) moves to blobs.header, its bytes in the chunk zeroed and
// payload_start set past them, so that the content's offsets do not move.
func (db *DB) headerChange(ctx context.Context, id int64, rewrap func(header []byte, p partPlace) ([]byte, error)) (*headerChange, error) {
	r := &chunkReader{ctx: ctx, db: db.read, blob: id}
	p := partPlace{blob: id}
	err := db.read.QueryRowContext(ctx, `
		SELECT b.chunk_size, b.size, b.header, b.payload_start, p.message_id, p.idx
		FROM blobs b JOIN parts p ON p.blob_id = b.id WHERE b.id = ?`, id).
		Scan(&r.chunkSize, &r.size, &r.header, &r.start, &p.message, &p.index)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	c := &headerChange{blob: id, old: r.header, oldStart: r.start, inChunks: r.header == nil}
	if c.inChunks {
		if c.old, err = age.ExtractHeader(io.NewSectionReader(r, 0, r.size)); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadHeader, err)
		}
		first := make([]byte, len(c.old))
		if _, err := r.ReadAt(first, 0); err != nil || !bytes.Equal(first, c.old) {
			return nil, fmt.Errorf("%w (%v)", errBadHeader, err)
		}
	}
	if c.new, err = rewrap(c.old, p); err != nil || c.new == nil {
		return nil, err
	}
	return c, nil
}

// apply makes the change in tx, unless the blob was deleted meanwhile. A
// blob whose header changed meanwhile is an error.
func (c *headerChange) apply(ctx context.Context, tx *sql.Tx) error {
	var header []byte
	var start int64
	err := tx.QueryRowContext(ctx,
		`SELECT header, payload_start FROM blobs WHERE id = ?`, c.blob).Scan(&header, &start)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if (header == nil) != c.inChunks || start != c.oldStart || (!c.inChunks && !bytes.Equal(header, c.old)) {
		return fmt.Errorf("blob %d changed while its header was being replaced; try again", c.blob)
	}
	newStart := c.oldStart
	if c.inChunks {
		n := len(c.old)
		newStart = int64(n)
		var first []byte
		if err := tx.QueryRowContext(ctx,
			`SELECT data FROM chunks WHERE blob_id = ? AND seq = 0`, c.blob).Scan(&first); err != nil {
			return fmt.Errorf("blob %d, first chunk: %w", c.blob, err)
		}
		if len(first) < n || !bytes.Equal(first[:n], c.old) {
			return fmt.Errorf("the first chunk of blob %d changed while its header was being replaced; try again", c.blob)
		}
		clear(first[:n])
		if _, err := tx.ExecContext(ctx,
			`UPDATE chunks SET data = ? WHERE blob_id = ? AND seq = 0`, first, c.blob); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx,
		`UPDATE blobs SET header = ?, payload_start = ? WHERE id = ?`, c.new, newStart, c.blob)
	return err
}

// sealedColumn is a BLOB column that may hold age files, and how its
// table's rows are named.
type sealedColumn struct {
	table, column string
	key           []string // "rowid", or the primary key's columns
}

// sealedColumns lists every BLOB column of every table but the blobs'
// own, which rekeyBlob handles: wherever a migration put sealed values.
func (db *DB) sealedColumns(ctx context.Context) ([]sealedColumn, error) {
	if db.eng.name == Postgres {
		return db.pgSealedColumns(ctx)
	}
	var cols []sealedColumn
	err := db.view(ctx, func(tx *sql.Tx) error {
		var tables []string
		rows, err := tx.QueryContext(ctx,
			`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT IN ('blobs', 'chunks') ORDER BY name`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return err
			}
			tables = append(tables, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, t := range tables {
			var blobCols, pk []string
			pkPos := map[string]int{}
			rows, err := tx.QueryContext(ctx, `SELECT name, type, pk FROM pragma_table_info(?)`, t)
			if err != nil {
				return err
			}
			for rows.Next() {
				var name, typ string
				var pos int
				if err := rows.Scan(&name, &typ, &pos); err != nil {
					rows.Close()
					return err
				}
				if strings.EqualFold(typ, "BLOB") {
					blobCols = append(blobCols, name)
				}
				if pos > 0 {
					pk = append(pk, name)
					pkPos[name] = pos
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(blobCols) == 0 {
				continue
			}
			key := []string{"rowid"}
			if _, err := tx.ExecContext(ctx, `SELECT rowid FROM "`+t+`" LIMIT 0`); err != nil {
				// WITHOUT ROWID: the primary key, in its order.
				key = make([]string, len(pk))
				for _, c := range pk {
					key[pkPos[c]-1] = c
				}
			}
			for _, c := range blobCols {
				cols = append(cols, sealedColumn{table: t, column: c, key: key})
			}
		}
		return nil
	})
	return cols, err
}

// pgSealedColumns is sealedColumns on PostgreSQL, from the information
// schema: every bytea column, its table named by its primary key.
func (db *DB) pgSealedColumns(ctx context.Context) ([]sealedColumn, error) {
	var cols []sealedColumn
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			SELECT table_name, column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND data_type = 'bytea'
				AND table_name NOT IN ('blobs', 'chunks')
			ORDER BY table_name, ordinal_position`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c sealedColumn
			if err := rows.Scan(&c.table, &c.column); err != nil {
				rows.Close()
				return err
			}
			cols = append(cols, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range cols {
			rows, err := tx.QueryContext(ctx, `
				SELECT k.column_name FROM information_schema.table_constraints t
				JOIN information_schema.key_column_usage k
					ON k.constraint_name = t.constraint_name AND k.table_schema = t.table_schema
				WHERE t.table_schema = current_schema() AND t.table_name = ? AND t.constraint_type = 'PRIMARY KEY'
				ORDER BY k.ordinal_position`, cols[i].table)
			if err != nil {
				return err
			}
			for rows.Next() {
				var k string
				if err := rows.Scan(&k); err != nil {
					rows.Close()
					return err
				}
				cols[i].key = append(cols[i].key, k)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(cols[i].key) == 0 {
				return fmt.Errorf("table %s has no primary key", cols[i].table)
			}
		}
		return nil
	})
	return cols, err
}

// rekeyColumn re-wraps every age file in one column, a batch of rows per
// transaction, in the order of the table's key.
func (db *DB) rekeyColumn(ctx context.Context, c sealedColumn, st *RekeyStats, report func()) error {
	quoted := make([]string, len(c.key))
	marks := make([]string, len(c.key))
	for i, k := range c.key {
		quoted[i], marks[i] = `"`+k+`"`, "?"
	}
	keyList := strings.Join(quoted, ", ")
	col := `"` + c.column + `"`
	query := fmt.Sprintf(`SELECT %s, %s FROM "%s" WHERE (%s) > (%s) AND substr(%s, 1, %d) = CAST(? AS %s) ORDER BY %s LIMIT %d`,
		keyList, col, c.table, keyList, strings.Join(marks, ", "), col, len(ageIntro), db.eng.blob, keyList, rekeyBatch)
	update := fmt.Sprintf(`UPDATE "%s" SET %s = ? WHERE (%s) = (%s) AND %s = ?`,
		c.table, col, keyList, strings.Join(marks, ", "), col)

	type change struct {
		key      []any
		old, new []byte
	}
	first := fmt.Sprintf(`SELECT %s, %s FROM "%s" WHERE substr(%s, 1, %d) = CAST(? AS %s) ORDER BY %s LIMIT %d`,
		keyList, col, c.table, col, len(ageIntro), db.eng.blob, keyList, rekeyBatch)
	var after []any // nil: from the first row
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var changes []change
		var scanned int
		err := db.view(ctx, func(tx *sql.Tx) error {
			q := query
			if after == nil {
				q = first
			}
			rows, err := tx.QueryContext(ctx, q, append(append([]any{}, after...), ageIntro)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				key := make([]any, len(c.key))
				ptrs := make([]any, len(c.key)+1)
				for i := range key {
					ptrs[i] = &key[i]
				}
				var value []byte
				ptrs[len(key)] = &value
				if err := rows.Scan(ptrs...); err != nil {
					return err
				}
				scanned++
				after = key
				header, err := age.ExtractHeader(bytes.NewReader(value))
				if err != nil || !bytes.HasPrefix(value, header) {
					return fmt.Errorf("a value is not a canonical age file (%v)", err)
				}
				h, err := db.keys.rewrap(header)
				if err != nil {
					return err
				}
				if h == nil {
					st.Current++
					continue
				}
				changes = append(changes, change{key: key, old: value, new: append(h, value[len(header):]...)})
			}
			return rows.Err()
		})
		if err != nil {
			return err
		}
		if scanned == 0 {
			return nil
		}
		if len(changes) > 0 {
			err := db.update(ctx, func(tx *sql.Tx) error {
				for _, ch := range changes {
					// Unchanged rows only: a value rewritten meanwhile
					// was sealed anew, under the newest data key.
					if _, err := tx.ExecContext(ctx, update, append(append([]any{ch.new}, ch.key...), ch.old)...); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			st.Values += len(changes)
		}
		report()
	}
}
