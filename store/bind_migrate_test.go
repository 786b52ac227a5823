package store

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/securetextd/securetextd"
)

// A store at schema version 5, as the gateway left it before sealed values
// were bound to their place. legacyStore builds one with the formats of
// that version spelled out here, apart from the code under test:
//
//   - a data key is an age file, sealed to the key file's identity, of the
//     bare 32-byte key;
//   - a small value is "stx1" | key id | nonce | ciphertext, with the first
//     8 bytes as additional data; older ones are age files sealed to the
//     identity;
//   - a part is an age file in the chunk rows, its file key wrapped in a
//     "-> securetextd-dk 1" stanza whose additional data is that line's
//     type and argument; older ones are sealed to the identity; a part
//     rekeyed then has its header in blobs.header and zeros in its place
//     in the first chunk;
//   - an idempotency fingerprint is the bare SHA-256 the portal computes.
//
// These tests use SQLite whatever the tests' engine: only SQLite stores
// were left at version 5. PostgreSQL came with version 6, and its stores
// have been bound from their first row.
type legacyStore struct {
	path string
	keys *Keyring
	dk   cipher.AEAD // data key 1

	big []byte // part 1 of message 1: two chunks
	fp  [32]byte
}

// The contents of the legacy store.
const (
	legacyPhone      = securetextd.Phone("+12125550123")
	legacyOtherPhone = securetextd.Phone("+12025550143")
	legacySender     = "a@clinic.example"
	legacyIdemKey    = "idem-1"
)

// legacyDataKey is the stanza parts were wrapped in before they were bound.
type legacyDataKey struct{ aead cipher.AEAD }

func (r legacyDataKey) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	body := make([]byte, chacha20poly1305.NonceSizeX, dataKeyBody)
	rand.Read(body)
	body = r.aead.Seal(body, body, fileKey, []byte("securetextd-dk 1"))
	return []*age.Stanza{{Type: "securetextd-dk", Args: []string{"1"}, Body: body}}, nil
}

// sealV1 seals a small value as version 5 did, under data key 1.
func sealV1(aead cipher.AEAD, plain []byte) []byte {
	out := make([]byte, 8+chacha20poly1305.NonceSizeX)
	copy(out, "stx1")
	binary.BigEndian.PutUint32(out[4:8], 1)
	rand.Read(out[8:])
	return aead.Seal(out, out[8:], plain, out[:8])
}

func ageFile(t testing.TB, r age.Recipient, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// options are the legacy store's, to open it.
func (ls *legacyStore) options() Options { return Options{Driver: SQLite, Path: ls.path} }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newLegacyStore writes the legacy store: message 1 (manifest under data
// key 1; a text part and a two-chunk attachment, both wrapped by data key
// 1), message 2 (manifest and text part sealed to the identity, as before
// data keys; an image part wrapped by data key 1 and then rekeyed),
// message 3 (purged), two text jobs and a done reset job, three
// recipients (recovery address under data key 1, sealed to the identity,
// none) and an idempotency record.
func newLegacyStore(t testing.TB) *legacyStore {
	t.Helper()
	ls := &legacyStore{
		path: filepath.Join(t.TempDir(), "securetextd.db"),
		keys: testKeys(t),
		big:  randomBytes(21, chunkSize+5000),
		fp:   sha256.Sum256([]byte("a request")),
	}
	key := randomBytes(22, chacha20poly1305.KeySize)
	var err error
	if ls.dk, err = chacha20poly1305.NewX(key); err != nil {
		t.Fatal(err)
	}
	sealedKey, err := ls.keys.seal(key)
	if err != nil {
		t.Fatal(err)
	}
	dkPart := func(plain []byte) []byte { return ageFile(t, legacyDataKey{ls.dk}, plain) }
	idPart := func(plain []byte) []byte { return ageFile(t, ls.keys.recipient, plain) }
	now := time.Now().UnixNano()

	raw, err := sql.Open("sqlite3", "file:"+uriPath(ls.path)+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.Exec(q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	for v := 1; v <= 5; v++ {
		names, _ := migrationFS.ReadDir("migrations/sqlite")
		script, err := migrationFS.ReadFile("migrations/sqlite/" + names[v-1].Name())
		if err != nil {
			t.Fatal(err)
		}
		exec(string(script))
	}
	exec(`PRAGMA user_version = 5`)
	exec(`INSERT INTO data_keys (id, sealed, created) VALUES (1, ?, ?)`, sealedKey, now)

	// blob writes an age file as blob id: whole in the chunks, or
	// rekeyed (its header in blobs.header, zeros in the first chunk).
	blob := func(id int64, file []byte, rekeyed bool) {
		t.Helper()
		var header []byte
		data := file
		if rekeyed {
			h, err := age.ExtractHeader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			header = h
			data = append(make([]byte, len(h)), file[len(h):]...)
		}
		exec(`INSERT INTO blobs (id, state, chunk_size, size, created, header, payload_start) VALUES (?, 'committed', ?, ?, ?, ?, ?)`,
			id, chunkSize, len(data), now, header, len(header))
		for seq := 0; seq*chunkSize < len(data); seq++ {
			exec(`INSERT INTO chunks (blob_id, seq, data) VALUES (?, ?, ?)`, id, seq, data[seq*chunkSize:min((seq+1)*chunkSize, len(data))])
		}
	}
	message := func(id int64, parts int, sealedManifest []byte) {
		t.Helper()
		exec(`INSERT INTO messages (id, direction, sender, received, auth, size, part_count, manifest) VALUES (?, 1, ?, ?, 'smtp-auth', 0, ?, ?)`,
			id, legacySender, now+id, parts, sealedManifest)
		exec(`INSERT INTO conversation_messages (conversation_id, message_id) VALUES (1, ?)`, id)
	}
	part := func(msg int64, idx int, blobID int64, kind securetextd.PartKind, size int) {
		exec(`INSERT INTO parts (message_id, idx, kind, size, blob_id) VALUES (?, ?, ?, ?, ?)`, msg, idx, kind, size, blobID)
	}
	exec(`INSERT INTO conversations (id, phone, sender, created, last_activity) VALUES (1, ?, ?, ?, ?)`, legacyPhone, legacySender, now, now)

	message(1, 2, sealV1(ls.dk, mustJSON(t, manifest{Subject: "legacy one", Parts: []manifestPart{
		{ContentType: "text/plain"}, {ContentType: "application/pdf", Filename: "scan.pdf"}}})))
	blob(1, dkPart([]byte("first body")), false)
	blob(2, dkPart(ls.big), false)
	part(1, 0, 1, securetextd.PartText, 10)
	part(1, 1, 2, securetextd.PartAttachment, len(ls.big))

	message(2, 2, ls.keys.mustSeal(t, mustJSON(t, manifest{Subject: "legacy two", Parts: []manifestPart{
		{ContentType: "text/plain"}, {ContentType: "image/png", Filename: "photo.png"}}})))
	blob(3, idPart([]byte("second body")), false)
	blob(4, dkPart([]byte("rekeyed picture")), true)
	part(2, 0, 3, securetextd.PartText, 11)
	part(2, 1, 4, securetextd.PartInline, 15)

	message(3, 0, []byte{})
	exec(`UPDATE messages SET purged = ? WHERE id = 3`, now)

	for _, j := range []struct {
		id      int64
		kind    string
		state   string
		payload []byte
	}{
		{1, securetextd.JobKindText, "pending", sealV1(ls.dk, mustJSON(t, securetextd.TextJob{To: legacyPhone, Token: "token-one", ConversationID: 1, MessageID: 1}))},
		{2, securetextd.JobKindReset, "done", ls.keys.mustSeal(t, mustJSON(t, securetextd.MailJob{To: "old@example.org", Phone: legacyPhone, Token: "reset-one"}))},
		{3, securetextd.JobKindText, "pending", sealV1(ls.dk, mustJSON(t, securetextd.TextJob{To: legacyPhone, Token: "token-two", ConversationID: 1, MessageID: 2}))},
	} {
		exec(`INSERT INTO jobs (id, kind, payload, state, next_attempt, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			j.id, j.kind, j.payload, j.state, now+j.id, now, now)
		if j.kind == securetextd.JobKindText {
			exec(`INSERT INTO texts (job_id, conversation_id, message_id, updated) VALUES (?, 1, ?, ?)`, j.id, j.id/2+1, now)
		}
	}
	for _, r := range []struct {
		phone    securetextd.Phone
		recovery []byte
	}{
		{legacyPhone, sealV1(ls.dk, []byte("patient@example.org"))},
		{legacyOtherPhone, ls.keys.mustSeal(t, []byte("other@example.org"))},
		{"+12025550199", nil},
	} {
		exec(`INSERT INTO recipients (phone, password, recovery_email, created) VALUES (?, 'x', ?, ?)`, r.phone, r.recovery, now)
	}
	keyHash := sha256.Sum256([]byte(legacyIdemKey))
	exec(`INSERT INTO api_idempotency (sender, key_hash, fingerprint, status, response, created) VALUES (?, ?, ?, 201, ?, ?)`,
		legacySender, keyHash[:], ls.fp[:], []byte(`{"id":1}`), now)
	return ls
}

func (k *Keyring) mustSeal(t testing.TB, plain []byte) []byte {
	t.Helper()
	b, err := k.seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkLegacyContent opens everything the legacy store holds through the
// store's API.
func checkLegacyContent(t *testing.T, db *DB, ls *legacyStore) {
	t.Helper()
	ctx := t.Context()
	for id, want := range map[int64]string{1: "legacy one", 2: "legacy two", 3: ""} {
		m, err := db.Message(ctx, id)
		if err != nil || m.Subject != want {
			t.Errorf("message %d: %v, %+v", id, err, m)
		}
	}
	for _, p := range []struct {
		msg  int64
		idx  int
		want []byte
	}{{1, 0, []byte("first body")}, {1, 1, ls.big}, {2, 0, []byte("second body")}, {2, 1, []byte("rekeyed picture")}} {
		ra, size, err := db.OpenPart(ctx, p.msg, p.idx)
		if err != nil {
			t.Errorf("part %d of message %d: %v", p.idx, p.msg, err)
			continue
		}
		if got, err := io.ReadAll(io.NewSectionReader(ra, 0, size)); err != nil || !bytes.Equal(got, p.want) {
			t.Errorf("part %d of message %d: %v", p.idx, p.msg, err)
		}
	}
	j, err := db.NextJob(ctx, time.Now().Add(time.Hour), securetextd.JobKindText)
	if err != nil || j.ID != 1 || !strings.Contains(string(j.Payload), `"token":"token-one"`) {
		t.Errorf("text job: %v %+v", err, j)
	}
	for phone, to := range map[securetextd.Phone]string{legacyPhone: "patient@example.org", legacyOtherPhone: "other@example.org"} {
		// An address kept from before migration 0013 was never confirmed
		// (no reset goes to it), but it opens, for the account page.
		if a, err := db.Account(ctx, phone); err != nil || a.Recovery != to || a.Confirmed {
			t.Errorf("account of %s: %+v, %v", phone.Masked(), a, err)
		}
		if err := db.RequestPasswordReset(ctx, phone, time.Hour); err != nil {
			t.Errorf("reset for %s: %v", phone.Masked(), err)
		}
		found := false
		for _, j := range jobsOf(t, db, securetextd.JobKindReset) {
			var mj securetextd.MailJob
			jobPayload(t, j, &mj)
			found = found || (mj.Phone == phone && mj.To == to)
		}
		if found {
			t.Errorf("a reset mailed to the unconfirmed recovery address of %s", phone.Masked())
		}
	}
	rec, err := db.IdempotentResponse(ctx, legacySender, legacyIdemKey)
	if err != nil || !rec.Matches(ls.fp) || rec.Matches(sha256.Sum256([]byte("another request"))) || rec.Status != 201 {
		t.Errorf("idempotency record: %v %+v", err, rec)
	}
}

// stanzaLine matches a bound part's stanza.
var stanzaLine = regexp.MustCompile(`\n-> securetextd-dk (\d+) (\d+) (\d+) (\d+)\n`)

// checkAllBound looks at the raw database: every sealed value is in the
// bound form, every part's header in blobs.header names its place, no
// chunk holds an age header, every data key is bound, every fingerprint
// keyed.
func checkAllBound(t *testing.T, db *DB) {
	t.Helper()
	for _, q := range []string{
		`SELECT 'message ' || id FROM messages WHERE length(manifest) > 0 AND substr(manifest, 1, 4) != CAST('stx2' AS BLOB)`,
		`SELECT 'job ' || id FROM jobs WHERE substr(payload, 1, 4) != CAST('stx2' AS BLOB)`,
		`SELECT 'recipient' FROM recipients WHERE recovery_email IS NOT NULL AND substr(recovery_email, 1, 4) != CAST('stx2' AS BLOB)`,
		`SELECT 'blob ' || id FROM blobs WHERE header IS NULL`,
		`SELECT 'chunk ' || blob_id || '/' || seq FROM chunks WHERE instr(data, CAST('age-encryption.org' AS BLOB)) > 0`,
		`SELECT 'fingerprint ' || hex(key_hash) FROM api_idempotency WHERE key_id = 0`,
		`SELECT 'marker' FROM bind_migration`,
	} {
		var unbound []string
		rows, err := db.read.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			unbound = append(unbound, s)
		}
		rows.Close()
		if len(unbound) > 0 {
			t.Errorf("not bound: %v (%s)", unbound, q)
		}
	}
	rows, err := db.read.Query(`SELECT p.message_id, p.idx, b.id, b.header FROM parts p JOIN blobs b ON b.id = p.blob_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var msg, blob int64
		var idx int
		var header []byte
		rows.Scan(&msg, &idx, &blob, &header)
		m := stanzaLine.FindSubmatch(header)
		if m == nil || string(m[2]) != strconv.FormatInt(msg, 10) || string(m[3]) != strconv.Itoa(idx) || string(m[4]) != strconv.FormatInt(blob, 10) {
			t.Errorf("part %d of message %d (blob %d): header\n%s", idx, msg, blob, header)
		}
	}
	keys, err := db.read.Query(`SELECT id, sealed FROM data_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	for keys.Next() {
		var id int64
		var sealed []byte
		keys.Scan(&id, &sealed)
		if plain, err := db.keys.open(sealed); err != nil || len(plain) == chacha20poly1305.KeySize {
			t.Errorf("data key %d: %d bytes sealed, %v", id, len(plain), err)
		}
	}
}

// TestBindMigration opens a store left at schema version 5: everything in
// it still opens, and is now bound to its place; the migration is resumed
// from any point by opening again, and once it has finished an unbound
// value is refused.
func TestBindMigration(t *testing.T) {
	ls := newLegacyStore(t)
	before := filepath.Join(filepath.Dir(ls.path), "before.db")
	if b, err := os.ReadFile(ls.path); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(before, b, 0o600); err != nil {
		t.Fatal(err)
	}

	db, err := Open(ls.path, ls.keys)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := migrationFS.ReadDir("migrations/sqlite")
	var version int
	db.write.QueryRow("PRAGMA user_version").Scan(&version)
	if version != len(names) || version < 6 {
		t.Errorf("user_version = %d, want %d", version, len(names))
	}
	var fp []byte
	db.read.QueryRow(`SELECT fingerprint FROM api_idempotency`).Scan(&fp)
	if bytes.Equal(fp, ls.fp[:]) {
		t.Error("the bare SHA-256 fingerprint is still stored")
	}
	checkLegacyContent(t, db, ls)
	checkAllBound(t, db)
	// Bound now: a manifest copied to another message does not open.
	tamperAt(t, ls.options(), `UPDATE messages SET manifest = (SELECT manifest FROM messages WHERE id = 1) WHERE id = 2`)
	_, err = db.Message(t.Context(), 2)
	wantMisplaced(t, err, "message 2 manifest")
	db.Close()

	// A migration cut short: half the values as they were, and the
	// marker back. Opening again finishes it.
	tamperAt(t, ls.options(),
		`ATTACH DATABASE '`+before+`' AS old`,
		`UPDATE messages SET manifest = (SELECT manifest FROM old.messages o WHERE o.id = messages.id) WHERE id IN (1, 2)`,
		`UPDATE jobs SET payload = (SELECT payload FROM old.jobs o WHERE o.id = jobs.id) WHERE id = 1`,
		`UPDATE recipients SET recovery_email = (SELECT recovery_email FROM old.recipients o WHERE o.phone = recipients.phone) WHERE phone = '`+string(legacyOtherPhone)+`'`,
		`UPDATE blobs SET header = (SELECT header FROM old.blobs o WHERE o.id = blobs.id),
			payload_start = (SELECT payload_start FROM old.blobs o WHERE o.id = blobs.id) WHERE id IN (2, 3)`,
		`UPDATE chunks SET data = (SELECT data FROM old.chunks o WHERE o.blob_id = chunks.blob_id AND o.seq = 0) WHERE blob_id IN (2, 3) AND seq = 0`,
		`UPDATE data_keys SET sealed = (SELECT sealed FROM old.data_keys o WHERE o.id = data_keys.id)`,
		`UPDATE api_idempotency SET fingerprint = (SELECT fingerprint FROM old.api_idempotency), key_id = 0`,
		`INSERT INTO bind_migration (id) VALUES (1)`,
	)
	if db, err = Open(ls.path, ls.keys); err != nil {
		t.Fatal(err)
	}
	checkLegacyContent(t, db, ls)
	checkAllBound(t, db)
	db.Close()

	// Finished: a value in an old form is refused, not opened unbound.
	tamperAt(t, ls.options(),
		`ATTACH DATABASE '`+before+`' AS old`,
		`UPDATE messages SET manifest = (SELECT manifest FROM old.messages o WHERE o.id = messages.id) WHERE id = 1`)
	if db, err = Open(ls.path, ls.keys); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Message(t.Context(), 1)
	if want := "message 1 manifest: sealed value is not bound to its place"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("an unbound manifest after the migration: %v, want %q", err, want)
	}
}

// TestBindMigrationRekey migrates a legacy store, rotates its key and
// rekeys it: every part moves to the new data key for its same place, and
// everything opens with the new identity alone.
func TestBindMigrationRekey(t *testing.T) {
	ls := newLegacyStore(t)
	db, err := Open(ls.path, ls.keys)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	keyPath := filepath.Join(t.TempDir(), "key.txt")
	if _, err := WriteKeyFile(keyPath, false); err != nil {
		t.Fatal(err)
	}
	newKeys, _ := LoadKeyFile(keyPath)
	rotated, err := newKeyring(append(newKeys.identities, ls.keys.identities...))
	if err != nil {
		t.Fatal(err)
	}
	if db, err = Open(ls.path, rotated); err != nil {
		t.Fatal(err)
	}
	if st, err := db.Rekey(t.Context(), nil); err != nil || st.Blobs != 4 || st.Values != 1 {
		t.Fatalf("rekey: %+v %v; want 4 parts and data key 1 re-wrapped", st, err)
	}
	db.Close()
	if db, err = Open(ls.path, newKeys); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkLegacyContent(t, db, ls)
	checkAllBound(t, db)
	for _, p := range []struct {
		msg int64
		idx int
	}{{1, 0}, {1, 1}, {2, 0}, {2, 1}} {
		_, file := rawPart(t, db, p.msg, p.idx)
		if m := stanzaLine.FindSubmatch(file[:300]); m == nil || string(m[1]) != "2" {
			t.Errorf("after rekey, part %d of message %d is not wrapped by data key 2:\n%s", p.idx, p.msg, file[:200])
		}
	}
}

// TestBindMigrationDamaged: a value of a legacy store that nothing opens
// (a damaged manifest, a part whose first chunk is garbage) does not stop
// the migration, nor the store from opening; it stays as it was, and still
// does not open.
func TestBindMigrationDamaged(t *testing.T) {
	ls := newLegacyStore(t)
	tamperAt(t, ls.options(),
		`UPDATE messages SET manifest = unhex('73747831' || hex(randomblob(60))) WHERE id = 2`,
		`UPDATE chunks SET data = randomblob(length(data)) WHERE blob_id = 3`)
	db, err := Open(ls.path, ls.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if m, err := db.Message(ctx, 1); err != nil || m.Subject != "legacy one" {
		t.Errorf("message 1: %v", err)
	}
	if _, err := db.Message(ctx, 2); !errors.Is(err, errUnbound) {
		t.Errorf("the damaged manifest: %v, want errUnbound", err)
	}
	if _, _, err := db.OpenPart(ctx, 2, 0); err == nil {
		t.Error("the damaged part opens")
	}
	if !bytes.Equal(readPart(t, db, 1, 1), ls.big) {
		t.Error("part 1 of message 1")
	}
	var marker int
	db.read.QueryRow(`SELECT count(*) FROM bind_migration`).Scan(&marker)
	if marker != 0 {
		t.Error("the migration did not finish")
	}
}
