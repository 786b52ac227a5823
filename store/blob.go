package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// A blob is one age file, the sealed content of one message part, kept as
// rows of chunks(blob_id, seq, data). Every chunk but the last holds exactly
// chunkSize bytes of ciphertext, so that an offset in the file maps onto a
// row by division. The chunk size is kept in each blob's row, so that it can
// change without rewriting old blobs.
//
// Writing never holds a whole file: a Draft buffers sealed chunks up to
// flushThreshold and writes them out as a pending blob in a short
// transaction, so that one large upload does not keep other sessions from
// committing. Reading goes through age.DecryptReaderAt over a chunkReader,
// which fetches only the rows that a range touches.
const (
	// chunkSize is the ciphertext size of a chunk row. 256 KiB keeps a
	// 100 MB attachment at 400 rows, and a range read at a row or two.
	chunkSize = 256 << 10
	// flushThreshold is how much sealed content a draft gathers before
	// its writer writes it out as pending blobs (draft.go): a draft holds
	// at most three such batches. A message under it costs a single write
	// transaction.
	flushThreshold = 512 << 10
)

// chunkReader is an io.ReaderAt over a blob's ciphertext. It keeps the last
// chunk it read, since age reads its 64 KiB chunks in order and a 256 KiB
// row serves several of them.
//
// Reads use the context given to OpenPart: they fail once it is done.
type chunkReader struct {
	ctx       context.Context
	db        *sql.DB
	blob      int64
	chunkSize int64
	size      int64

	// A rekeyed blob's age file is header followed by the chunks' bytes
	// from start on (see rekey.go); otherwise header is nil, start 0.
	header []byte
	start  int64

	mu   sync.Mutex
	seq  int64
	data []byte // chunk seq, or nil
}

// ReadAt implements io.ReaderAt. It may be called concurrently.
func (r *chunkReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("store: read blob: negative offset")
	}
	n := 0
	for n < len(p) && off < r.size {
		if off < int64(len(r.header)) {
			c := copy(p[n:], r.header[off:])
			n += c
			off += int64(c)
			continue
		}
		phys := off - int64(len(r.header)) + r.start
		seq := phys / r.chunkSize
		data, err := r.chunk(seq)
		if err != nil {
			return n, err
		}
		within := phys - seq*r.chunkSize
		if within >= int64(len(data)) {
			return n, fmt.Errorf("store: read blob %d: chunk %d is short", r.blob, seq)
		}
		c := copy(p[n:], data[within:])
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// chunk returns chunk seq, from the cache or the database. The slice
// returned is never written to.
func (r *chunkReader) chunk(seq int64) ([]byte, error) {
	r.mu.Lock()
	if r.data != nil && r.seq == seq {
		data := r.data
		r.mu.Unlock()
		return data, nil
	}
	r.mu.Unlock()

	var data []byte
	err := r.db.QueryRowContext(r.ctx,
		`SELECT data FROM chunks WHERE blob_id = ? AND seq = ?`, r.blob, seq).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: read blob %d: chunk %d is missing", r.blob, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read blob %d: %w", r.blob, err)
	}
	r.mu.Lock()
	r.seq, r.data = seq, data
	r.mu.Unlock()
	return data, nil
}

// chunker cuts the ciphertext that age writes into chunk rows and hands
// them to its draft. It is the destination of age.Encrypt.
type chunker struct {
	d   *Draft
	p   *draftPart
	buf []byte // ciphertext not yet a full chunk
}

// chunkBuffers recycles the buffers of chunk rows, each of chunkSize
// bytes: the chunker fills one, the draft's writer hands it back once the
// row is written (draftWriter.write). A large part so turns over the same
// few buffers rather than allocating its size again: growing each chunk
// by append, from nothing, allocated nearly twice the ciphertext, and the
// garbage collector's pace (and the heap's peak) followed that.
var chunkBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, chunkSize)
	return &b
}}

// newChunkBuffer returns an empty buffer of chunkSize bytes' capacity.
func newChunkBuffer() []byte { return (*chunkBuffers.Get().(*[]byte))[:0] }

// freeChunkBuffer hands back a buffer of newChunkBuffer that nothing
// holds any more.
func freeChunkBuffer(b []byte) {
	if cap(b) == chunkSize {
		chunkBuffers.Put(&b)
	}
}

// Write implements io.Writer.
func (c *chunker) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if c.buf == nil {
			c.buf = newChunkBuffer()
		}
		k := min(chunkSize-len(c.buf), len(b))
		c.buf = append(c.buf, b[:k]...)
		b = b[k:]
		if len(c.buf) == chunkSize {
			if err := c.emit(); err != nil {
				return n - len(b), err
			}
		}
	}
	return n, nil
}

// dropHeader drops the age header that age.Encrypt has just written, and
// keeps what follows it: the payload's 16-byte nonce, where the part's
// chunks begin. The part's real header is written at commit (datakey.go).
func (c *chunker) dropHeader() error {
	n := len(c.buf) - streamNonceSize
	if n <= 0 || !bytes.HasPrefix(c.buf, []byte(ageIntro)) || c.buf[n-1] != '\n' {
		return errors.New("age did not write a header and a nonce")
	}
	c.buf = c.buf[:copy(c.buf, c.buf[n:])] // in place: the buffer stays whole
	return nil
}

// streamNonceSize is the size of the nonce that starts an age payload
// (age-encryption.org/v1: "a 16-byte nonce").
const streamNonceSize = 16

// emit hands the buffered ciphertext to the draft as the next chunk.
func (c *chunker) emit() error {
	if len(c.buf) == 0 {
		return nil
	}
	data := c.buf
	c.buf = nil
	if len(data) < chunkSize/8 {
		// A part's last chunk, and a small one: most of a small
		// message's parts. It waits for the commit in a slice of its
		// own size, and its buffer goes back at once to the next part,
		// rather than wait with it (64 KiB for a few hundred bytes) and
		// become garbage: the garbage of four such buffers a message
		// set the collector's pace for small messages.
		small := bytes.Clone(data)
		freeChunkBuffer(data)
		data = small
	}
	return c.d.enqueue(c.p, data)
}

// SweepOrphans deletes the pending blobs created before before, with their
// chunks, and returns how many it deleted. Pending blobs belong to drafts
// that are still being written; those left behind by a crash or a dropped
// connection are orphans. Call it at start with the current time (no draft
// can be in progress), and then now and again with a time far enough back
// that no live draft is that old (an hour).
//
// A draft whose blobs were swept fails to commit.
func (db *DB) SweepOrphans(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM blobs WHERE state = 'pending' AND created < ?`, nanos(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: sweep orphans: %w", err)
	}
	return int(n), nil
}
