package store

import (
	"bytes"
	"crypto/sha256"
	"io"
	"runtime"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestLargeAttachment streams a large attachment through a draft and checks
// that memory stays flat, that other sessions commit while it streams, and
// that it reads back whole.
func TestLargeAttachment(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 48 MiB")
	}
	const size = 48 << 20
	db := openTestDB(t)
	ctx := t.Context()

	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	piece := randomBytes(6, 1<<20)
	base := heap()
	var peak uint64

	d := db.NewDraft()
	defer d.Discard()
	w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "video/mp4"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	for i := range size / len(piece) {
		piece[0] = byte(i) // vary the content
		if _, err := w.Write(piece); err != nil {
			t.Fatal(err)
		}
		sum.Write(piece)
		if i%8 == 0 {
			peak = max(peak, heap())
			// Another session commits while the upload is under way.
			commitTest(t, db, &securetextd.Message{Sender: "b@example.org"},
				[]testPart{{securetextd.Part{Kind: securetextd.PartText}, []byte("hi")}}, "+12125550123")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("heap grew by %d KiB at most", (int64(peak)-int64(base))>>10)
	if grown := int64(peak) - int64(base); grown > 8<<20 {
		t.Errorf("heap grew by %d MiB while streaming %d MiB", grown>>20, size>>20)
	}
	m := &securetextd.Message{Sender: "a@example.org"}
	if _, err := d.Commit(ctx, m, []securetextd.Phone{"+12125550199"}); err != nil {
		t.Fatal(err)
	}

	ra, n, err := db.OpenPart(ctx, m.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != size {
		t.Fatalf("size %d, want %d", n, size)
	}
	back := sha256.New()
	if _, err := io.Copy(back, io.NewSectionReader(ra, 0, n)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Sum(nil), sum.Sum(nil)) {
		t.Error("content read back differs")
	}
}
