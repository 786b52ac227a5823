package store

import (
	"bytes"
	"io"
	"testing"

	"filippo.io/age"

	"github.com/securetextd/securetextd"
)

// TestOneChunkAsAge commits parts of sizes around one chunk of age's
// STREAM and reads each back: through OpenPart, which opens a part of one
// chunk itself (openOneChunk), and through age.DecryptReaderAt over the
// same stored bytes. Both give the content back; a part of one chunk
// whose ciphertext was changed does not open, nor does one opened with
// the identity of another place.
func TestOneChunkAsAge(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	sizes := []int{0, 1, 1000, streamChunkSize - 1, streamChunkSize, streamChunkSize + 1, 3*streamChunkSize + 7}
	var parts []testPart
	for i, n := range sizes {
		parts = append(parts, testPart{
			securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/octet-stream", Filename: "f.bin"},
			randomBytes(uint64(i), n),
		})
	}
	r := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "Sizes"}, parts, patient)
	for i, p := range parts {
		ra, size, err := db.OpenPart(ctx, r.MessageID, i)
		if err != nil {
			t.Fatalf("part of %d bytes: %v", len(p.content), err)
		}
		_, fast := ra.(*bytes.Reader)
		if want := oneChunk(int64(len(p.content)) + streamNonceSize + streamTagSize); fast != want {
			t.Errorf("part of %d bytes opened in one decryption: %v, want %v", len(p.content), fast, want)
		}
		got := make([]byte, size)
		if n, err := ra.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
			t.Fatalf("part of %d bytes: read %d, %v", len(p.content), n, err)
		}
		if !bytes.Equal(got, p.content) {
			t.Errorf("part of %d bytes reads back otherwise", len(p.content))
		}
		// age's own reading of the same bytes.
		cr := openChunks(t, db, r.MessageID, i)
		aged, agedSize, err := age.DecryptReaderAt(cr, cr.size, db.data.part(partPlace{r.MessageID, i, cr.blob}))
		if err != nil {
			t.Fatalf("age: part of %d bytes: %v", len(p.content), err)
		}
		viaAge := make([]byte, agedSize)
		if n, err := aged.ReadAt(viaAge, 0); n != len(viaAge) || (err != nil && err != io.EOF) {
			t.Fatalf("age: part of %d bytes: read %d, %v", len(p.content), n, err)
		}
		if !bytes.Equal(viaAge, p.content) {
			t.Errorf("age reads the part of %d bytes otherwise", len(p.content))
		}
	}

	// Tampered: the last byte of the 1000-byte part's chunk.
	cr := openChunks(t, db, r.MessageID, 2)
	var data []byte
	if err := db.read.QueryRowContext(ctx, `SELECT data FROM chunks WHERE blob_id = ? AND seq = 0`, cr.blob).Scan(&data); err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if _, err := db.write.ExecContext(ctx, `UPDATE chunks SET data = ? WHERE blob_id = ? AND seq = 0`, data, cr.blob); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.OpenPart(ctx, r.MessageID, 2); err == nil {
		t.Error("a part of one chunk whose ciphertext was changed opened")
	}
	// Another place's identity: the file key does not unwrap.
	cr = openChunks(t, db, r.MessageID, 1)
	wrong := partPlace{r.MessageID, 2, cr.blob}
	if _, err := openOneChunk(cr, new(fileKeys), wrong, db.data.part(wrong)); err == nil {
		t.Error("a part of one chunk opened with another part's identity")
	}
}

// openChunks returns the chunk reader of part index of message, as
// OpenPart makes it.
func openChunks(t *testing.T, db *DB, message int64, index int) *chunkReader {
	t.Helper()
	r := &chunkReader{ctx: t.Context(), db: db.read}
	if err := db.read.QueryRowContext(t.Context(), `
		SELECT b.id, b.chunk_size, b.size, b.header, b.payload_start
		FROM parts p JOIN blobs b ON b.id = p.blob_id
		WHERE p.message_id = ? AND p.idx = ?`, message, index).Scan(&r.blob, &r.chunkSize, &r.size, &r.header, &r.start); err != nil {
		t.Fatal(err)
	}
	r.size += int64(len(r.header)) - r.start
	return r
}
