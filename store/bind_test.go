package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// wantMisplaced fails the test unless err says that a sealed value was
// found in a row it does not belong to, in the words of where.
func wantMisplaced(t testing.TB, err error, where string) {
	t.Helper()
	want := where + ": sealed value belongs to another row"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an error with %q", err, want)
	}
}

// twoMessages commits message A (a text and a two-chunk attachment) and
// message B (a text and a two-chunk attachment), each to its own phone, so
// each has a text job.
func twoMessages(t testing.TB, db *DB) (a, b *Receipt) {
	t.Helper()
	a = commitTest(t, db, &securetextd.Message{Sender: "a@clinic.example", Subject: "alpha"}, []testPart{
		{plainPart, []byte("alpha body")}, {filePart, randomBytes(11, chunkSize+700)},
	}, "+12125550123")
	b = commitTest(t, db, &securetextd.Message{Sender: "a@clinic.example", Subject: "beta"}, []testPart{
		{plainPart, []byte("beta body")}, {filePart, randomBytes(12, chunkSize+900)},
	}, "+12025550143")
	return a, b
}

// blobOf returns the blob of part idx of message msg.
func blobOf(t testing.TB, db *DB, msg int64, idx int) int64 {
	t.Helper()
	var blob int64
	if err := db.read.QueryRow(`SELECT blob_id FROM parts WHERE message_id = ? AND idx = ?`, msg, idx).Scan(&blob); err != nil {
		t.Fatal(err)
	}
	return blob
}

// copyBlob makes blob dst a copy of blob src: header, chunks and sizes.
func copyBlob(src, dst int64) []string {
	return []string{
		fmt.Sprintf(`UPDATE blobs SET header = (SELECT header FROM blobs WHERE id = %[1]d),
			payload_start = (SELECT payload_start FROM blobs WHERE id = %[1]d),
			size = (SELECT size FROM blobs WHERE id = %[1]d) WHERE id = %[2]d`, src, dst),
		fmt.Sprintf(`DELETE FROM chunks WHERE blob_id = %d`, dst),
		fmt.Sprintf(`INSERT INTO chunks (blob_id, seq, data) SELECT %d, seq, data FROM chunks WHERE blob_id = %d`, dst, src),
	}
}

// TestSealedValueInAnotherRow copies each kind of sealed value into
// another row in plain SQL, as someone with write access to the database
// file (but not the key file) could, and finds that it no longer opens,
// with an error that says so; what was left alone still opens.
func TestSealedValueInAnotherRow(t *testing.T) {
	ctx := t.Context()
	for _, c := range []struct {
		name string
		run  func(t *testing.T, db *DB, a, b *Receipt)
	}{
		{"manifest", func(t *testing.T, db *DB, a, b *Receipt) {
			tamper(t, db, fmt.Sprintf(
				`UPDATE messages SET manifest = (SELECT manifest FROM messages WHERE id = %d) WHERE id = %d`, a.MessageID, b.MessageID))
			_, err := db.Message(ctx, b.MessageID)
			wantMisplaced(t, err, fmt.Sprintf("message %d manifest", b.MessageID))
			_, err = db.ConversationMessages(ctx, b.Conversations[0].ID)
			wantMisplaced(t, err, fmt.Sprintf("message %d manifest", b.MessageID))
			if m, err := db.Message(ctx, a.MessageID); err != nil || m.Subject != "alpha" {
				t.Errorf("the original: %v", err)
			}
		}},
		{"outbox payload", func(t *testing.T, db *DB, a, b *Receipt) {
			// A's text job is due first; give it B's payload (B's link).
			var jobA, jobB int64
			db.read.QueryRow(`SELECT job_id FROM texts WHERE message_id = ?`, a.MessageID).Scan(&jobA)
			db.read.QueryRow(`SELECT job_id FROM texts WHERE message_id = ?`, b.MessageID).Scan(&jobB)
			tamper(t, db, fmt.Sprintf(
				`UPDATE jobs SET payload = (SELECT payload FROM jobs WHERE id = %d) WHERE id = %d`, jobB, jobA))
			_, err := db.NextJob(ctx, db.Now(), securetextd.JobKindText)
			wantMisplaced(t, err, fmt.Sprintf("job %d payload", jobA))
			if err := db.CompleteJob(ctx, jobA); err != nil {
				t.Fatal(err)
			}
			if j, err := db.NextJob(ctx, db.Now(), securetextd.JobKindText); err != nil || j.ID != jobB {
				t.Errorf("the original: %v", err)
			}
		}},
		{"recovery address", func(t *testing.T, db *DB, a, b *Receipt) {
			// Mallory's own account, and her address put on a patient's,
			// would get the patient's reset link.
			const mallory, patient = securetextd.Phone("+12025550199"), securetextd.Phone("+12125550123")
			if err := db.CreateRecipient(ctx, mallory, "a long enough password", "mallory@evil.example"); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateRecipient(ctx, patient, "another long password", "patient@example.org"); err != nil {
				t.Fatal(err)
			}
			confirmRecovery(t, db)
			tamper(t, db, fmt.Sprintf(
				`UPDATE recipients SET recovery_email = (SELECT recovery_email FROM recipients WHERE phone = '%s') WHERE phone = '%s'`, mallory, patient))
			err := db.RequestPasswordReset(ctx, patient, time.Hour)
			wantMisplaced(t, err, "recovery address")
			if err != nil && strings.Contains(err.Error(), string(patient)) {
				t.Errorf("the error names the phone number in clear: %v", err)
			}
			if jobs := jobsOf(t, db, securetextd.JobKindReset); len(jobs) != 0 {
				t.Errorf("a reset was queued: %s", jobs[0].Payload)
			}
			if err := db.RequestPasswordReset(ctx, mallory, time.Hour); err != nil {
				t.Errorf("the original: %v", err)
			}
		}},
		{"part content in another part's blob", func(t *testing.T, db *DB, a, b *Receipt) {
			tamper(t, db, copyBlob(blobOf(t, db, a.MessageID, 1), blobOf(t, db, b.MessageID, 1))...)
			_, _, err := db.OpenPart(ctx, b.MessageID, 1)
			wantMisplaced(t, err, fmt.Sprintf("open part 1 of message %d", b.MessageID))
			readPart(t, db, a.MessageID, 1)
		}},
		{"parts of a message swapped", func(t *testing.T, db *DB, a, b *Receipt) {
			tamper(t, db,
				fmt.Sprintf(`UPDATE parts SET idx = idx + 10 WHERE message_id = %d`, a.MessageID),
				fmt.Sprintf(`UPDATE parts SET idx = 1 WHERE message_id = %d AND idx = 10`, a.MessageID),
				fmt.Sprintf(`UPDATE parts SET idx = 0 WHERE message_id = %d AND idx = 11`, a.MessageID))
			for idx := range 2 {
				_, _, err := db.OpenPart(ctx, a.MessageID, idx)
				wantMisplaced(t, err, fmt.Sprintf("open part %d of message %d", idx, a.MessageID))
			}
		}},
		{"part moved to another message", func(t *testing.T, db *DB, a, b *Receipt) {
			blobA, blobB := blobOf(t, db, a.MessageID, 0), blobOf(t, db, b.MessageID, 0)
			tamper(t, db,
				fmt.Sprintf(`UPDATE parts SET blob_id = -1 WHERE blob_id = %d`, blobA),
				fmt.Sprintf(`UPDATE parts SET blob_id = %d WHERE blob_id = %d`, blobA, blobB),
				fmt.Sprintf(`UPDATE parts SET blob_id = %d WHERE blob_id = -1`, blobB))
			_, _, err := db.OpenPart(ctx, b.MessageID, 0)
			wantMisplaced(t, err, fmt.Sprintf("open part 0 of message %d", b.MessageID))
			_, _, err = db.OpenPart(ctx, a.MessageID, 0)
			wantMisplaced(t, err, fmt.Sprintf("open part 0 of message %d", a.MessageID))
		}},
		{"header alone in another blob", func(t *testing.T, db *DB, a, b *Receipt) {
			tamper(t, db, fmt.Sprintf(`UPDATE blobs SET header = (SELECT header FROM blobs WHERE id = %d),
				payload_start = (SELECT payload_start FROM blobs WHERE id = %[1]d) WHERE id = %d`,
				blobOf(t, db, a.MessageID, 0), blobOf(t, db, b.MessageID, 0)))
			_, _, err := db.OpenPart(ctx, b.MessageID, 0)
			wantMisplaced(t, err, fmt.Sprintf("open part 0 of message %d", b.MessageID))
		}},
		{"chunk from another blob", func(t *testing.T, db *DB, a, b *Receipt) {
			// The content itself is authenticated under each part's own
			// file key: a chunk from another part fails as it is read.
			tamper(t, db, fmt.Sprintf(`UPDATE chunks SET data = (SELECT data FROM chunks WHERE blob_id = %d AND seq = 1)
				WHERE blob_id = %d AND seq = 1`, blobOf(t, db, a.MessageID, 1), blobOf(t, db, b.MessageID, 1)))
			ra, size, err := db.OpenPart(ctx, b.MessageID, 1)
			if err == nil {
				buf := make([]byte, 100)
				_, err = ra.ReadAt(buf, size-100)
			}
			if err == nil {
				t.Error("a chunk of another part was read as this one's")
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := openTestDB(t)
			a, b := twoMessages(t, db)
			c.run(t, db, a, b)
		})
	}
}

// TestDataKeyInAnotherRow copies the first data key over the second: the
// store refuses to open, saying which key is out of place, instead of
// sealing new values under a key that is not the one its id names.
func TestDataKeyInAnotherRow(t *testing.T) {
	db, _ := rotatedDB(t, func(*DB) {})
	keys := db.keys
	db.Close()
	tamper(t, db, `UPDATE data_keys SET sealed = (SELECT sealed FROM data_keys WHERE id = 1) WHERE id = 2`)
	db2, err := OpenWith(t.Context(), optionsOf(db), keys)
	if err == nil {
		db2.Close()
	}
	wantMisplaced(t, err, "data key 2")
}

// TestRekeyKeepsBinding rotates the key over bound values: after the
// rekey, every part's header names the new data key and still its place,
// everything opens, and a value copied to another row still does not.
func TestRekeyKeepsBinding(t *testing.T) {
	ctx := t.Context()
	var a, b *Receipt
	db, _ := rotatedDB(t, func(db *DB) { a, b = twoMessages(t, db) })
	st, err := db.Rekey(ctx, nil)
	if err != nil || st.Blobs != 4 {
		t.Fatalf("rekey: %+v, %v", st, err)
	}
	for _, r := range []*Receipt{a, b} {
		for idx := range 2 {
			blob, file := rawPart(t, db, r.MessageID, idx)
			line := fmt.Sprintf("\n-> securetextd-dk 2 %d %d %d\n", r.MessageID, idx, blob)
			if !bytes.Contains(file[:300], []byte(line)) {
				t.Errorf("message %d part %d after rekey: no %q in\n%s", r.MessageID, idx, line, file[:200])
			}
			readPart(t, db, r.MessageID, idx)
		}
	}
	tamper(t, db, copyBlob(blobOf(t, db, a.MessageID, 1), blobOf(t, db, b.MessageID, 1))...)
	_, _, err = db.OpenPart(ctx, b.MessageID, 1)
	wantMisplaced(t, err, fmt.Sprintf("open part 1 of message %d", b.MessageID))
	tamper(t, db, fmt.Sprintf(
		`UPDATE messages SET manifest = (SELECT manifest FROM messages WHERE id = %d) WHERE id = %d`, a.MessageID, b.MessageID))
	_, err = db.Message(ctx, b.MessageID)
	wantMisplaced(t, err, fmt.Sprintf("message %d manifest", b.MessageID))
}

// jobPayload decodes a job's payload into v.
func jobPayload(t testing.TB, j *securetextd.Job, v any) {
	t.Helper()
	if err := json.Unmarshal(j.Payload, v); err != nil {
		t.Fatal(err)
	}
}
