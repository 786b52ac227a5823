package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sync"

	"filippo.io/age"

	"github.com/securetextd/securetextd"
)

// Draft is a message being ingested. Its parts are streamed in one after
// the other with CreatePart, sealed as they come; Commit then stores the
// message, its conversations and the outbox jobs that will text its
// recipients, all in one transaction. A draft that will not be committed
// must be discarded.
//
//	d := db.NewDraft()
//	defer d.Discard() // a no-op once committed
//	w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
//	… io.Copy(w, body); w.Close() …
//	receipt, err := d.Commit(ctx, msg, phones)
//
// Memory stays flat whatever the size of the parts: every flushThreshold
// of sealed content is written out in a short transaction, as pending blobs
// that no message links to until Commit. A goroutine of the draft's own
// writes them, so that a large message is read, decoded and sealed while
// the previous batch goes to disk; at most one batch waits for it, so the
// draft holds at most two batches and the one it is filling.
//
// A Draft is not safe for concurrent use.
type Draft struct {
	db    *DB
	parts []*draftPart
	open  *partWriter // the part being written, if any

	queue  []queuedChunk // sealed chunks not yet handed to the writer
	queued int           // bytes in queue
	// writer writes full queues out while the draft goes on reading
	// (nil until the first one); wait collects what it did.
	writer *draftWriter
	// pending lists the blobs written out before Commit, for Discard.
	pending []int64

	err       error // a failure that makes the draft unusable
	committed bool
	discarded bool
	// receipt: the sender asked for a read receipt (RequestReadReceipt).
	receipt bool
	// scanFailed: the scanner gave no verdict and DB.ScanFailOpen let
	// the draft go on unscanned from part unscannedFrom (scan.go).
	scanFailed    bool
	unscannedFrom int
}

// draftPart is a part of a draft, and the state of its blob.
type draftPart struct {
	part   securetextd.Part
	index  int
	blobID int64 // 0 until the blob's first chunks are written out
	chunks int64 // chunks cut so far
	sealed int64 // ciphertext bytes so far
	// fileKey is the part's age file key, wrapped for the part's place
	// only at commit (datakey.go). Cleared once committed or discarded.
	fileKey []byte
}

type queuedChunk struct {
	part *draftPart
	seq  int64
	data []byte
}

// NewDraft starts a message.
func (db *DB) NewDraft() *Draft { return &Draft{db: db} }

// CreatePart starts the next part of the message, described by p (its Size
// is ignored: the store counts the bytes). The caller writes the part's
// decoded content to the returned writer and closes it; only then may the
// next part be created. Content is sealed as it is written.
func (d *Draft) CreatePart(p securetextd.Part) (io.WriteCloser, error) {
	if err := d.usable(); err != nil {
		return nil, fmt.Errorf("store: create part: %w", err)
	}
	if d.open != nil {
		return nil, fmt.Errorf("store: create part: part %d is still open", d.open.p.index)
	}
	if p.Kind < securetextd.PartText || p.Kind > securetextd.PartInline {
		return nil, securetextd.Errorf(securetextd.EINVALID, "unknown part kind %d", p.Kind)
	}
	p.Size = 0
	dp := &draftPart{part: p, index: len(d.parts)}
	w := &partWriter{d: d, p: dp, sink: &chunker{d: d, p: dp}}
	// The file key will be wrapped by the newest data key for the part's
	// place, which is known at commit (datakey.go). Until then the draft
	// keeps it, and the chunks hold the payload only.
	catcher := &fileKeyCatcher{}
	enc, err := age.Encrypt(w.sink, catcher)
	if err == nil {
		err = w.sink.dropHeader()
	}
	if err != nil {
		d.err = err
		return nil, fmt.Errorf("store: seal part %d: %w", dp.index, err)
	}
	w.enc = enc
	dp.fileKey = catcher.fileKey
	d.parts = append(d.parts, dp)
	d.open = w
	if err := d.startScan(w); err != nil {
		return nil, err
	}
	return w, nil
}

// usable returns why the draft can take no more, or nil.
func (d *Draft) usable() error {
	switch {
	case d.committed:
		return errors.New("draft already committed")
	case d.discarded:
		return errors.New("draft discarded")
	case d.err != nil:
		return fmt.Errorf("draft failed earlier: %w", d.err)
	}
	return nil
}

// partWriter seals the content of one part.
type partWriter struct {
	d      *Draft
	p      *draftPart
	enc    io.WriteCloser // age's writer, into sink
	sink   *chunker
	scan   securetextd.ScanStream // the part's scan, if the store scans (scan.go)
	closed bool
}

// Write seals b. It returns an error if the draft has failed or been
// committed or discarded.
func (w *partWriter) Write(b []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("store: write part %d: part is closed", w.p.index)
	}
	if err := w.d.usable(); err != nil {
		return 0, fmt.Errorf("store: write part %d: %w", w.p.index, err)
	}
	n, err := w.enc.Write(b)
	w.p.part.Size += int64(n)
	if err != nil {
		w.d.err = err
		return n, fmt.Errorf("store: seal part %d: %w", w.p.index, err)
	}
	if err := w.d.scanWrite(w, b[:n]); err != nil {
		return n, err
	}
	return n, nil
}

// MarkDamaged records that the part could not be decoded completely (a
// corrupt base64 stream, a part cut short): what was written is kept, and
// the recipient is told it is incomplete. It may be called until Commit.
func (w *partWriter) MarkDamaged() { w.p.part.Damaged = true }

// Close finishes the part: age writes its last chunk, and the part's size
// is known. Closing twice is a no-op.
func (w *partWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.d.open == w {
		w.d.open = nil
	}
	if err := w.d.usable(); err != nil {
		return fmt.Errorf("store: close part %d: %w", w.p.index, err)
	}
	err := w.enc.Close()
	if err == nil {
		err = w.sink.emit()
	}
	if err != nil {
		w.d.err = err
		return fmt.Errorf("store: seal part %d: %w", w.p.index, err)
	}
	return w.d.verdict(w)
}

// enqueue takes the next chunk of p's blob, and writes the queue out once it
// holds flushThreshold bytes.
func (d *Draft) enqueue(p *draftPart, data []byte) error {
	d.queue = append(d.queue, queuedChunk{part: p, seq: p.chunks, data: data})
	p.chunks++
	p.sealed += int64(len(data))
	d.queued += len(data)
	if d.queued < flushThreshold {
		return nil
	}
	return d.flush()
}

// flush hands the queued chunks to the draft's writer, starting it on the
// first call, and returns once the writer has taken them or the batch
// before them: the caller goes on sealing while they are written. A
// failure of the writer comes back here, at the next flush, or at Commit.
func (d *Draft) flush() error {
	if d.writer == nil {
		d.writer = &draftWriter{db: d.db, batches: make(chan []queuedChunk, 1), done: make(chan struct{})}
		go d.writer.run()
	}
	if err := d.writer.failed(); err != nil {
		d.err = err
		return fmt.Errorf("store: write pending blob: %w", err)
	}
	d.writer.batches <- d.queue
	d.queue, d.queued = nil, 0
	return nil
}

// waitWriter stops the writer once it has written everything handed to
// it, and takes over the blobs it made. It returns the writer's error.
func (d *Draft) waitWriter() error {
	w := d.writer
	if w == nil {
		return nil
	}
	d.writer = nil
	close(w.batches)
	<-w.done
	d.pending = append(d.pending, w.pending...)
	if w.err != nil {
		d.err = w.err
		return fmt.Errorf("store: write pending blob: %w", w.err)
	}
	return nil
}

// draftWriter writes a draft's batches of sealed chunks, one short
// transaction each, in the order they come: a part's first batch makes its
// pending blob (and sets its blobID, which only the writer touches until
// waitWriter), later ones add chunks to it. After a failure it drops what
// it is given, so that the draft never blocks on it.
type draftWriter struct {
	db      *DB
	batches chan []queuedChunk
	done    chan struct{}

	mu      sync.Mutex
	err     error   // the first failure; read by failed, and after done
	pending []int64 // blobs made, in order; read after done
}

func (w *draftWriter) run() {
	defer close(w.done)
	for batch := range w.batches {
		if w.failed() != nil {
			continue
		}
		if err := w.write(batch); err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
		}
	}
}

func (w *draftWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// write writes one batch in one transaction.
func (w *draftWriter) write(batch []queuedChunk) error {
	// The draft has no context: it writes as an SMTP DATA command reads,
	// and the busy timeout bounds the wait for the write lock.
	ctx := context.Background()
	created := make(map[*draftPart]int64)
	err := w.db.update(ctx, func(tx *sql.Tx) error {
		for _, c := range batch {
			id := c.part.blobID
			if id == 0 {
				id = created[c.part]
			}
			if id == 0 {
				var err error
				if id, err = w.db.nextID(ctx, tx, "blobs"); err != nil {
					return err
				}
				if _, err := tx.ExecContext(later(ctx),
					`INSERT INTO blobs (id, state, chunk_size, created, node) VALUES (?, 'pending', ?, ?, ?)`,
					id, chunkSize, nanos(w.db.Now()), w.db.nodeLock.key); err != nil {
					return err
				}
				created[c.part] = id
			}
			if _, err := tx.ExecContext(later(ctx),
				`INSERT INTO chunks (blob_id, seq, data) VALUES (?, ?, ?)`, id, c.seq, c.data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Written: the driver copied each chunk (SQLite binds it transient,
	// pgx encodes it into its own buffer), so its buffer is free.
	for _, c := range batch {
		freeChunkBuffer(c.data)
	}
	// Only in this order: a blob made by an earlier batch comes first.
	for _, c := range batch {
		if id, ok := created[c.part]; ok && c.part.blobID == 0 {
			c.part.blobID = id
			w.pending = append(w.pending, id)
		}
	}
	return nil
}

// Discard drops the draft and deletes what it wrote out. It is idempotent,
// and a no-op once the draft is committed. If the deletion fails, the blobs
// are left pending for SweepOrphans, and calling Discard again retries.
func (d *Draft) Discard() error {
	if d.committed {
		return nil
	}
	d.discarded = true
	d.queue, d.queued = nil, 0
	d.forgetKeys()
	if d.open != nil {
		d.open.closed = true
		if d.open.scan != nil {
			d.open.scan.Abort()
			d.open.scan = nil
		}
		d.open = nil
	}
	d.waitWriter() // its failure leaves less to delete
	if len(d.pending) == 0 {
		return nil
	}
	ctx := context.Background()
	err := d.db.update(ctx, func(tx *sql.Tx) error {
		for _, id := range d.pending {
			if _, err := tx.ExecContext(ctx,
				`DELETE FROM blobs WHERE id = ? AND state = 'pending'`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: discard draft: %w", err)
	}
	d.pending = nil
	return nil
}

// forgetKeys clears the parts' file keys from memory: once committed, they
// are in the parts' headers; once discarded, nothing needs them.
func (d *Draft) forgetKeys() {
	for _, p := range d.parts {
		clear(p.fileKey)
		p.fileKey = nil
	}
}
