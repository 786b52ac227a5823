package store

import (
	"testing"

	"github.com/securetextd/securetextd"
)

// TestFileKeysFollowTheHeader: a part opened twice takes its file key from
// fileKeys the second time, but only while its header is the one the key
// came from. A header changed in the database after the key was kept (its
// MAC altered here, as a tampered or rekeyed row would be) is read by age
// again, and this one does not open; a deleted part does not open at all.
func TestFileKeysFollowTheHeader(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	r := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "Keys"},
		[]testPart{{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("Your results are in.")}}, patient)
	for range 2 {
		if _, _, err := db.OpenPart(ctx, r.MessageID, 0); err != nil {
			t.Fatal(err)
		}
	}
	db.fileKeys.mu.Lock()
	kept := len(db.fileKeys.m)
	db.fileKeys.mu.Unlock()
	if kept != 1 {
		t.Fatalf("%d file keys kept after opening one part twice, want 1", kept)
	}

	var blob int64
	var header []byte
	if err := db.read.QueryRowContext(ctx, `SELECT id, header FROM blobs WHERE id = (SELECT blob_id FROM parts WHERE message_id = ? AND idx = 0)`,
		r.MessageID).Scan(&blob, &header); err != nil {
		t.Fatal(err)
	}
	// The header ends with its MAC in base64 and a newline; change one
	// character of it.
	changed := append([]byte(nil), header...)
	i := len(changed) - 3
	if changed[i] == 'A' {
		changed[i] = 'B'
	} else {
		changed[i] = 'A'
	}
	if _, err := db.write.ExecContext(ctx, `UPDATE blobs SET header = ? WHERE id = ?`, changed, blob); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.OpenPart(ctx, r.MessageID, 0); err == nil {
		t.Error("a part whose header's MAC was changed after its key was kept opened")
	}
	if _, err := db.write.ExecContext(ctx, `UPDATE blobs SET header = ? WHERE id = ?`, header, blob); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.OpenPart(ctx, r.MessageID, 0); err != nil {
		t.Errorf("the header put back: %v", err)
	}
	if _, err := db.write.ExecContext(ctx, `DELETE FROM parts WHERE message_id = ?`, r.MessageID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.OpenPart(ctx, r.MessageID, 0); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("a deleted part whose key was kept: %v, want ENOTFOUND", err)
	}
}

// TestFileKeysBounded: fileKeys holds at most its limit of keys, and the
// parts it had to let go still open.
func TestFileKeysBounded(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	var parts []testPart
	for i := range 5 {
		parts = append(parts, testPart{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "text/plain", Filename: "f.txt"}, randomBytes(uint64(i), 100)})
	}
	r := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "Keys"}, parts, patient)
	db.fileKeys.limit = 3
	for range 2 {
		for i := range parts {
			if _, _, err := db.OpenPart(ctx, r.MessageID, i); err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			if n := len(db.fileKeys.m); n > 3 {
				t.Fatalf("%d keys kept, limit 3", n)
			}
		}
	}
}
