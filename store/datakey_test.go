package store

import (
	"bytes"
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/securetextd/securetextd"
)

// testDataKeys returns data keys 1 to n, random, the newest sealing.
func testDataKeys(t testing.TB, n int) *dataKeys {
	t.Helper()
	dk := &dataKeys{aeads: make(map[uint32]cipher.AEAD)}
	for id := uint32(1); id <= uint32(n); id++ {
		aead, err := chacha20poly1305.NewX(randomBytes(uint64(id), chacha20poly1305.KeySize))
		if err != nil {
			t.Fatal(err)
		}
		dk.aeads[id], dk.newest = aead, id
	}
	dk.recipient = &dataKeyRecipient{id: dk.newest, aead: dk.aeads[dk.newest], postQuantum: true}
	return dk
}

// TestDataKeyStanza checks that a file wrapped by a data key for a place is
// a plain age file to age's own Encrypt and Decrypt, that it opens for its
// place only, that the data keys leave other stanzas to other identities,
// and how the "postquantum" label lets the recipient be mixed.
func TestDataKeyStanza(t *testing.T) {
	dk := testDataKeys(t, 2)
	at := partPlace{message: 12, index: 0, blob: 45}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, dk.recipient.at(at))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "hello")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	header, err := age.ExtractHeader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(header, []byte("\n-> securetextd-dk 2 12 0 45\n")) || dataKeyOf(header) != 2 {
		t.Errorf("header:\n%s", header)
	}
	r, err := age.Decrypt(bytes.NewReader(buf.Bytes()), dk.part(at))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); string(b) != "hello" {
		t.Errorf("decrypted %q", b)
	}
	for _, other := range []partPlace{{13, 0, 45}, {12, 1, 45}, {12, 0, 46}} {
		if _, err := age.Decrypt(bytes.NewReader(buf.Bytes()), dk.part(other)); !errors.Is(err, errMisplaced) {
			t.Errorf("opened for %+v: %v, want errMisplaced", other, err)
		}
	}
	if _, err := age.Encrypt(io.Discard, dk.recipient); err == nil {
		t.Error("a file key was wrapped for no place")
	}

	// A file sealed to an identity: the identity opens it; a part's key
	// says it is not bound to its place.
	id, _ := age.GenerateHybridIdentity()
	buf.Reset()
	w, _ = age.Encrypt(&buf, id.Recipient())
	w.Close()
	if _, err := age.Decrypt(bytes.NewReader(buf.Bytes()), dk.part(at), id); err != nil {
		t.Errorf("a hybrid file with the part's key given too: %v", err)
	}
	if _, err := dk.part(at).Unwrap([]*age.Stanza{{Type: "mlkem768x25519"}}); !errors.Is(err, errUnbound) {
		t.Errorf("another stanza type: %v, want errUnbound", err)
	}
	if h, _ := age.ExtractHeader(bytes.NewReader(buf.Bytes())); dataKeyOf(h) != 0 {
		t.Error("dataKeyOf names a data key for a hybrid header")
	}

	// Labels: post-quantum goes with hybrid recipients only; a data key
	// sealed to an X25519 identity goes with X25519 recipients only.
	x, _ := age.GenerateX25519Identity()
	classic := (&dataKeyRecipient{id: 1, aead: dk.aeads[1]}).at(at)
	for _, c := range []struct {
		name string
		rs   []age.Recipient
		ok   bool
	}{
		{"postquantum with hybrid", []age.Recipient{dk.recipient.at(at), id.Recipient()}, true},
		{"postquantum with X25519", []age.Recipient{dk.recipient.at(at), x.Recipient()}, false},
		{"classic with X25519", []age.Recipient{classic, x.Recipient()}, true},
		{"classic with hybrid", []age.Recipient{classic, id.Recipient()}, false},
	} {
		_, err := age.Encrypt(io.Discard, c.rs...)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// rawPart returns the age file of part idx of message msg as the store
// holds it, and its blob.
func rawPart(t testing.TB, db *DB, msg int64, idx int) (blob int64, file []byte) {
	t.Helper()
	r := &chunkReader{ctx: context.Background(), db: db.read}
	err := db.read.QueryRow(`
		SELECT b.id, b.chunk_size, b.size, b.header, b.payload_start
		FROM parts p JOIN blobs b ON b.id = p.blob_id WHERE p.message_id = ? AND p.idx = ?`,
		msg, idx).Scan(&r.blob, &r.chunkSize, &r.size, &r.header, &r.start)
	if err != nil {
		t.Fatal(err)
	}
	r.size += int64(len(r.header)) - r.start
	file, err = io.ReadAll(io.NewSectionReader(r, 0, r.size))
	if err != nil {
		t.Fatal(err)
	}
	return r.blob, file
}

// storePart replaces the age file of a blob with file.
func storePart(t testing.TB, db *DB, blob int64, file []byte) {
	t.Helper()
	err := db.update(context.Background(), func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM chunks WHERE blob_id = ?`, blob); err != nil {
			return err
		}
		for seq := 0; seq*chunkSize < len(file); seq++ {
			chunk := file[seq*chunkSize : min((seq+1)*chunkSize, len(file))]
			if _, err := tx.Exec(`INSERT INTO chunks (blob_id, seq, data) VALUES (?, ?, ?)`, blob, seq, chunk); err != nil {
				return err
			}
		}
		_, err := tx.Exec(`UPDATE blobs SET size = ?, header = NULL, payload_start = 0 WHERE id = ?`, len(file), blob)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sealToIdentity rewrites part idx of message msg as CreatePart wrote
// parts before data keys: an age file sealed to the keyring's first
// identity.
func sealToIdentity(t testing.TB, db *DB, msg int64, idx int) {
	t.Helper()
	ra, size, err := db.OpenPart(context.Background(), msg, idx)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(io.NewSectionReader(ra, 0, size))
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := rawPart(t, db, msg, idx)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, db.keys.recipient)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	storePart(t, db, blob, buf.Bytes())
}

var (
	plainPart = securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}
	filePart  = securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "scan.pdf"}
)

// TestPartsWrappedByDataKey stores parts through a draft and finds each
// one an age file whose only stanza names the newest data key, opened by
// OpenPart (a range too) and by age.Decrypt given the data keys for the
// part's place.
func TestPartsWrappedByDataKey(t *testing.T) {
	db := openTestDB(t)
	small, big := []byte("small body"), randomBytes(3, 2*chunkSize+999)
	r := commitTest(t, db, &securetextd.Message{Sender: "a@clinic.example"}, []testPart{
		{plainPart, small}, {filePart, big},
	}, "+12125550123")
	for idx, want := range [][]byte{small, big} {
		blob, file := rawPart(t, db, r.MessageID, idx)
		header, err := age.ExtractHeader(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		if dataKeyOf(header) != db.data.newest || bytes.Contains(header, []byte("mlkem768x25519")) {
			t.Errorf("part %d header:\n%s", idx, header)
		}
		if len(header) > 200 {
			t.Errorf("part %d: a %d-byte header", idx, len(header))
		}
		plain, err := age.Decrypt(bytes.NewReader(file), db.data.part(partPlace{r.MessageID, idx, blob}))
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(plain); err != nil || !bytes.Equal(b, want) {
			t.Errorf("part %d through age.Decrypt: %v", idx, err)
		}
		if !bytes.Equal(readPart(t, db, r.MessageID, idx), want) {
			t.Errorf("part %d through OpenPart differs", idx)
		}
	}
	ra, _, err := db.OpenPart(t.Context(), r.MessageID, 1)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 500)
	if _, err := ra.ReadAt(buf, chunkSize+3); err != nil || !bytes.Equal(buf, big[chunkSize+3:chunkSize+503]) {
		t.Errorf("range read: %v", err)
	}
	// The header is in the blob's row, and the chunks hold the payload
	// alone: nothing in them opens.
	var header []byte
	var start int64
	db.read.QueryRow(`SELECT header, payload_start FROM blobs WHERE id = ?`, blobOf(t, db, r.MessageID, 1)).Scan(&header, &start)
	if !bytes.HasPrefix(header, []byte(ageIntro)) || start != 0 {
		t.Errorf("blobs.header %q, payload_start %d", header, start)
	}
}

// rotatedDB makes a database with an X25519 key file, and then rotates to
// a hybrid identity put first, as an operator would; reopening makes a
// second data key, sealed to it.
func rotatedDB(t *testing.T, before func(db *DB)) (db *DB, keyPath string) {
	t.Helper()
	dir := t.TempDir()
	keyPath = filepath.Join(dir, "key.txt")
	opts := testOptions(t)
	if _, err := WriteKeyFile(keyPath, false); err != nil {
		t.Fatal(err)
	}
	oldKeys, err := LoadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err = OpenWith(t.Context(), opts, oldKeys)
	if err != nil {
		t.Fatal(err)
	}
	if db.data.newest != 1 || db.data.recipient.postQuantum {
		t.Errorf("first data key: %d, post-quantum %v", db.data.newest, db.data.recipient.postQuantum)
	}
	before(db)
	db.Close()
	// Reopening with the same key file makes no new data key.
	if db, err = OpenWith(t.Context(), opts, oldKeys); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "data_keys"); n != 1 {
		t.Errorf("%d data keys after reopening with the same key", n)
	}
	db.Close()

	if _, err := AddKeyToFile(keyPath, true); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if db, err = OpenWith(t.Context(), opts, keys); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.data.newest != 2 || !db.data.recipient.postQuantum || count(t, db, "data_keys") != 2 {
		t.Fatalf("after rotation: newest data key %d, post-quantum %v", db.data.newest, db.data.recipient.postQuantum)
	}
	return db, keyPath
}

// TestDataKeyStanzaTampered changes a part's stanza in the database: to
// name the other data key, an unknown one, or with a flipped body. Each
// fails to open, saying why; the untouched copy still opens.
func TestDataKeyStanzaTampered(t *testing.T) {
	db, _ := rotatedDB(t, func(*DB) {})
	r := commitTest(t, db, &securetextd.Message{Sender: "a@clinic.example"}, []testPart{{plainPart, []byte("secret")}}, "+12125550123")
	blob, file := rawPart(t, db, r.MessageID, 0)
	line := fmt.Sprintf("\n-> securetextd-dk 2 %d 0 %d\n", r.MessageID, blob)
	at := bytes.Index(file, []byte(line))
	if at < 0 {
		t.Fatalf("no data-key stanza:\n%q", file[:200])
	}
	keyID := at + len("\n-> securetextd-dk ")
	body := at + len(line) // the first line of the stanza's body
	for _, c := range []struct {
		name   string
		tamper func(f []byte)
		want   string
	}{
		{"other key", func(f []byte) { f[keyID] = '1' }, "data key 1 does not open it"},
		{"unknown key", func(f []byte) { f[keyID] = '9' }, "no data key 9 in this database"},
		{"flipped body", func(f []byte) {
			// Another letter of a full line of base64: still base64.
			if f[body+5] == 'A' {
				f[body+5] = 'B'
			} else {
				f[body+5] = 'A'
			}
		}, "data key 2 does not open it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := bytes.Clone(file)
			c.tamper(f)
			storePart(t, db, blob, f)
			_, _, err := db.OpenPart(t.Context(), r.MessageID, 0)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("open: %v, want %q", err, c.want)
			}
		})
	}
	storePart(t, db, blob, file)
	if string(readPart(t, db, r.MessageID, 0)) != "secret" {
		t.Error("the untouched part does not open")
	}
}

// TestOpenPartUnbound: a part sealed as before migration 0006 (here, to
// the key file's identity, as before data keys), found in a store that has
// bound every part, is refused as not bound to its place.
func TestOpenPartUnbound(t *testing.T) {
	db := openTestDB(t)
	r := commitTest(t, db, &securetextd.Message{Sender: "a@clinic.example"}, []testPart{{plainPart, []byte("old body")}}, "+12125550123")
	sealToIdentity(t, db, r.MessageID, 0)
	_, _, err := db.OpenPart(t.Context(), r.MessageID, 0)
	if err == nil || !errors.Is(err, errUnbound) || !strings.Contains(err.Error(), "open part 0 of message") {
		t.Errorf("open: %v, want errUnbound", err)
	}
}

// TestRekeyDataKeys rotates from an X25519 key to a hybrid one over parts
// wrapped by the first data key. Rekey leaves every part wrapped by the
// second data key alone, for its place, and every data key sealed to the
// new identity; content rows are not touched, and the new identity alone
// opens it all. (Parts sealed to the old identity, from before data keys,
// are in TestBindMigrationRekey.)
func TestRekeyDataKeys(t *testing.T) {
	ctx := context.Background()
	big := randomBytes(8, 2*chunkSize+4321)
	var old []int64
	db, keyPath := rotatedDB(t, func(db *DB) {
		for range 3 {
			r := commitTest(t, db, &securetextd.Message{Sender: "a@clinic.example", Subject: "old"}, []testPart{
				{plainPart, []byte("old body")}, {filePart, big},
			}, "+12125550123")
			old = append(old, r.MessageID)
		}
	})
	// Everything opens with the rotated key file, before any rekey.
	for _, id := range old {
		if string(readPart(t, db, id, 0)) != "old body" || !bytes.Equal(readPart(t, db, id, 1), big) {
			t.Fatalf("message %d does not open after rotation", id)
		}
	}
	fresh := commitTest(t, db, &securetextd.Message{Sender: "a@clinic.example", Subject: "new"}, []testPart{
		{plainPart, []byte("new body")},
	}, "+12125550123")
	if _, file := rawPart(t, db, fresh.MessageID, 0); dataKeyOf(file) != 2 {
		t.Error("a new part is not wrapped by the new data key")
	}

	before := contentDigest(t, db)
	st, err := db.Rekey(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 6 || st.Values != 1 || st.Current != 2 {
		// Current: the new part, and the new data key's seal.
		t.Errorf("rekey: %+v, want 6 parts and 1 value (data key 1) re-wrapped, 2 current", st)
	}
	if contentDigest(t, db) != before {
		t.Error("rekey rewrote content chunks")
	}
	if st, err := db.Rekey(ctx, nil); err != nil || st.Blobs != 0 || st.Values != 0 {
		t.Errorf("second rekey: %+v, %v", st, err)
	}

	// No part depends on data key 1 or the old identity: the newest data
	// key alone opens every header.
	onlyNewest := &dataKeys{aeads: map[uint32]cipher.AEAD{2: db.data.aeads[2]}}
	for _, id := range append(old, fresh.MessageID) {
		for idx := range 2 {
			if id == fresh.MessageID && idx == 1 {
				break
			}
			blob, file := rawPart(t, db, id, idx)
			header, err := age.ExtractHeader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := age.DecryptHeader(header, onlyNewest.part(partPlace{id, idx, blob})); err != nil {
				t.Errorf("message %d part %d after rekey: %v", id, idx, err)
			}
		}
	}
	db.Close()

	// The new identity alone opens both data keys, the parts and the
	// manifests (sealed under data key 1, which stays).
	keys, err := LoadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	newOnly, err := newKeyring(keys.identities[:1])
	if err != nil {
		t.Fatal(err)
	}
	db2, err := OpenWith(ctx, optionsOf(db), newOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if n := count(t, db2, "data_keys"); n != 2 {
		t.Errorf("%d data keys: the new identity alone made another", n)
	}
	for _, id := range old {
		m, err := db2.Message(ctx, id)
		if err != nil || m.Subject != "old" {
			t.Fatalf("manifest of %d: %v", id, err)
		}
		if string(readPart(t, db2, id, 0)) != "old body" || !bytes.Equal(readPart(t, db2, id, 1), big) {
			t.Fatalf("message %d does not open with the new identity alone", id)
		}
	}
	if oldOnly, _ := newKeyring(keys.identities[1:]); oldOnly != nil {
		if db, err := OpenWith(ctx, optionsOf(db), oldOnly); err == nil {
			db.Close()
			t.Error("the old identity alone still opens the store")
		}
	}
}

// BenchmarkSealPart seals a 1 KiB part as CreatePart and the commit do,
// the old way (the file key wrapped to the key file's hybrid identity:
// ML-KEM-768 and X25519) and with a data key: age encrypts the part with
// its file key kept aside, and the header that wraps it for the part's
// place is written at commit.
func BenchmarkSealPart(b *testing.B) {
	db := openTestDB(b)
	body := randomBytes(5, 1<<10)
	b.Run("hybrid", func(b *testing.B) {
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			w, err := age.Encrypt(&buf, db.keys.recipient)
			if err != nil {
				b.Fatal(err)
			}
			w.Write(body)
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("datakey", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := &fileKeyCatcher{}
			sink := &chunker{}
			w, err := age.Encrypt(sinkWriter{sink}, c)
			if err == nil {
				err = sink.dropHeader()
			}
			if err != nil {
				b.Fatal(err)
			}
			w.Write(body)
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			if _, err := newHeader(c.fileKey, db.data.recipient.at(partPlace{1, 0, 1})); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// sinkWriter appends to a chunker's buffer, without a draft to hand
// chunks to.
type sinkWriter struct{ c *chunker }

func (w sinkWriter) Write(b []byte) (int, error) {
	w.c.buf = append(w.c.buf, b...)
	return len(b), nil
}

// BenchmarkUnwrapPart measures what OpenPart does before it reads content
// (the file key out of a 1 KiB part's header, for its place), leaving out
// SQLite.
func BenchmarkUnwrapPart(b *testing.B) {
	db := openTestDB(b)
	body := randomBytes(6, 1<<10)
	wrapped := commitTest(b, db, &securetextd.Message{Sender: "a@clinic.example"}, []testPart{{plainPart, body}}, "+12125550123")
	blob, file := rawPart(b, db, wrapped.MessageID, 0)
	b.Run("datakey", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			header, err := age.ExtractHeader(bytes.NewReader(file))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := age.DecryptHeader(header, db.data.part(partPlace{wrapped.MessageID, 0, blob})); err != nil {
				b.Fatal(err)
			}
		}
	})
}
