package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/pgtest"
)

// copyFixture is what a store filled by fillStore must still do after a
// copy: open every part, find every link, session, key and reset token.
type copyFixture struct {
	keys     *Keyring
	parts    map[int64][][]byte // message → its parts' plaintext
	subjects map[int64]string
	links    map[string]int64 // link token → conversation
	session  string
	console  string // a console session's token
	apiKey   string
	reset    string
	idemKey  string
	device   string // a remembered browser's token
	audit    *AuditCheck
}

const (
	copyPassword = "correct horse battery staple"
	copyOther    = securetextd.Phone("+12125550124")
	// copyTOTPSecret is the fixture's TOTP secret.
	copyTOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

// fillStore makes a SQLite store at path holding a row in every table
// that store copy fills: messages with attachments of several chunks,
// conversations and their links, texts with provider ids, a reply, a
// recipient with a session and a reset token, a sender with an API key,
// an idempotent API commit, views, delivery notices with revoke tokens,
// the probe's row and the audit trail they wrote. It closes the store, as
// a stopped gateway would.
func fillStore(t *testing.T, path string) *copyFixture {
	t.Helper()
	ctx := t.Context()
	fx := &copyFixture{keys: testKeys(t), parts: map[int64][][]byte{}, subjects: map[int64]string{}, links: map[string]int64{}}
	db, err := Open(path, fx.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Policy = Policy{DeliveryNotices: true, ReadReceipts: securetextd.ReceiptsAlways}

	if err := db.CreateSender(ctx, drWho, copyPassword); err != nil {
		t.Fatal(err)
	}
	if fx.apiKey, _, err = db.CreateAPIKey(ctx, drWho, "EHR"); err != nil {
		t.Fatal(err)
	}
	// The console's: a TOTP secret sealed for its row, recovery codes, a
	// console session (migration 0012).
	if err := db.EnrollTOTP(ctx, drWho, copyTOTPSecret, 7, []string{"AAAA-BBBB-CCCC-DDDD"}); err != nil {
		t.Fatal(err)
	}
	if fx.console, err = db.CreateConsoleSession(ctx, drWho, securetextd.LevelSignedIn); err != nil {
		t.Fatal(err)
	}
	for i, phones := range [][]securetextd.Phone{{patient, copyOther}, {patient}} {
		subject := []string{"Results", "Follow-up"}[i]
		body := []byte("Your results are normal. " + subject)
		scan := randomBytes(uint64(40+i), 2*chunkSize+1234) // three chunks
		r := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: subject, Received: db.Now()},
			[]testPart{{plainPart, body}, {filePart, scan}}, phones...)
		fx.parts[r.MessageID] = [][]byte{body, scan}
		fx.subjects[r.MessageID] = subject
	}
	// A text's fallback address, sealed for its row (migration 0014).
	fallback := jobsOf(t, db, securetextd.JobKindText)[0].ID
	if err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO text_fallbacks (job_id, address) VALUES (?, ?)`,
			fallback, db.seal([]byte("sam@example.net"), fallbackPlace(fallback)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	fx.idemKey = "order-17"
	commitIdempotent(t, db, fx.idemKey, sha256.Sum256([]byte("the request")))
	for _, j := range jobsOf(t, db, securetextd.JobKindText) {
		var tj securetextd.TextJob
		if err := json.Unmarshal(j.Payload, &tj); err != nil {
			t.Fatal(err)
		}
		fx.links[tj.Token] = tj.ConversationID
		if err := db.CompleteText(ctx, j.ID, []string{"prov-" + itoa(j.ID) + "a", "prov-" + itoa(j.ID) + "b"}); err != nil {
			t.Fatal(err)
		}
	}
	// A link of the older form, sent before migration 0019: kept in
	// links by its hash, found by it still.
	legacy := newToken(linkTokenBytes)
	for tok, conv := range fx.links {
		if c, err := db.ConversationByToken(ctx, tok); err != nil || c.Phone != patient {
			continue // the other phone's conversation is deleted below
		}
		hash := hashToken(legacy)
		if _, err := db.write.ExecContext(ctx, `INSERT INTO links (token_hash, conversation_id, created) VALUES (?, ?, ?)`,
			hash[:], conv, nanos(db.Now())); err != nil {
			t.Fatal(err)
		}
		fx.links[legacy] = conv
		break
	}
	if err := db.CreateRecipient(ctx, patient, copyPassword, "patient@home.example"); err != nil {
		t.Fatal(err)
	}
	confirmRecovery(t, db)
	// A new address waiting for its confirmation (a token), and a sign-in.
	if err := db.SetRecoveryAddress(ctx, patient, "patient@new.example"); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordSignIn(ctx, patient, securetextd.SignIn{Device: "Firefox on Android", Network: "198.51.100.0/24"}); err != nil {
		t.Fatal(err)
	}
	if fx.session, err = db.CreateSession(ctx, patient); err != nil {
		t.Fatal(err)
	}
	if err := db.RequestPasswordReset(ctx, patient, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	var mj securetextd.MailJob
	json.Unmarshal(jobsOf(t, db, securetextd.JobKindReset)[0].Payload, &mj)
	fx.reset = mj.Token

	var conv, first int64
	for tok, c := range fx.links {
		if c2, err := db.ConversationByToken(ctx, tok); err == nil && c2.Phone == patient {
			conv = c
		}
	}
	msgs, err := db.ConversationMessages(ctx, conv)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("conversation %d: %v", conv, err)
	}
	first = msgs[0].ID
	if err := db.MarkViewed(ctx, conv, []int64{first}); err != nil {
		t.Fatal(err)
	}
	photo := randomBytes(50, chunkSize+99)
	m, err := db.SaveReply(ctx, conv, replyParts(textPart("Thank you."), replyPart{
		securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "image/jpeg", Filename: "photo.jpg"}, bytes.NewReader(photo)}))
	if err != nil {
		t.Fatal(err)
	}
	fx.parts[m.ID] = [][]byte{[]byte("Thank you."), photo}
	fx.subjects[m.ID] = m.Subject
	// A legal hold, its reason sealed for its row, and the delete it
	// defers, which withdraws the conversation: migration 0010's tables.
	// Its link no longer opens, so checkStore does not try it.
	for tok, c := range fx.links {
		if c2, err := db.ConversationByToken(ctx, tok); err != nil || c2.Phone != copyOther {
			continue
		}
		if err := db.PlaceHold(ctx, c, "Subpoena 17", "Pat Legal"); err != nil {
			t.Fatal(err)
		}
		if res, err := db.DeleteConversation(ctx, c, drWho); err != nil || !res.Deferred {
			t.Fatalf("deferred delete: %+v %v", res, err)
		}
		delete(fx.links, tok)
	}
	// More audit rows than one INSERT statement writes (insertGroup).
	for i := range insertGroup + 8 {
		if err := db.Audit(ctx, securetextd.AuditEvent{Event: securetextd.AuditResetRequested, Actor: "operator", Detail: itoa(int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ProbeWrite(ctx); err != nil {
		t.Fatal(err)
	}
	// A sweep's record, a lockout's strikes and an AUTH failure: what
	// migrations 0007 and 0008 keep.
	if _, err := db.Exclusive(ctx, SweepSessions, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Strike(ctx, "login", StrikeRule{Max: 5, Window: time.Hour}, "phone:+12125550123"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.AuthFailed(ctx, AuthRule{Window: time.Hour, Known: 24 * time.Hour}, "192.0.2.7", "dr.who@clinic.example"); err != nil {
		t.Fatal(err)
	}
	// A one-time code (an HMAC under a key derived from a data key, which
	// the copy keeps by its id), a remembered browser and a date of
	// birth: migration 0011's tables.
	if err := db.SMSCodes().SendCode(ctx, copyOther); err != nil {
		t.Fatal(err)
	}
	if fx.device, err = db.RememberDevice(ctx, copyOther, "", 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := db.SetDateOfBirth(ctx, copyOther, "1980-04-27"); err != nil {
		t.Fatal(err)
	}
	for _, tb := range copyTables {
		if count(t, db, tb.name) == 0 {
			t.Fatalf("the fixture leaves %s empty: fill it, so that copying it is tested", tb.name)
		}
	}
	if fx.audit, err = db.VerifyAudit(ctx); err != nil || !fx.audit.OK() || fx.audit.Rows < 5 {
		t.Fatalf("the fixture's audit trail: %+v, %v", fx.audit, err)
	}
	return fx
}

// checkStore opens the store at opts with the fixture's key file and
// checks that it does everything the fixture's store did.
func checkStore(t *testing.T, opts Options, fx *copyFixture) {
	t.Helper()
	ctx := t.Context()
	db := openTestStore(t, opts, fx.keys)
	if known, err := db.KnownDevice(ctx, copyOther, fx.device); err != nil || !known {
		t.Errorf("%s: the remembered browser is not known in the copy (%v)", opts.Driver, err)
	}
	if err := db.CheckDateOfBirth(ctx, copyOther, "1980-04-27"); err != nil {
		t.Errorf("%s: the date of birth does not check in the copy: %v", opts.Driver, err)
	}
	for id, parts := range fx.parts {
		m, err := db.Message(ctx, id)
		if err != nil {
			t.Fatalf("%s: message %d: %v", opts.Driver, id, err)
		}
		if m.Subject != fx.subjects[id] || len(m.Parts) != len(parts) {
			t.Errorf("%s: message %d: subject %q, %d parts; want %q, %d", opts.Driver, id, m.Subject, len(m.Parts), fx.subjects[id], len(parts))
		}
		for i, want := range parts {
			ra, size, err := db.OpenPart(ctx, id, i)
			if err != nil {
				t.Fatalf("%s: message %d part %d: %v", opts.Driver, id, i, err)
			}
			got, err := io.ReadAll(io.NewSectionReader(ra, 0, size))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: message %d part %d: %d bytes read back, want %d (%v)", opts.Driver, id, i, len(got), len(want), err)
			}
		}
	}
	for tok, conv := range fx.links {
		c, err := db.ConversationByToken(ctx, tok)
		if err != nil || c.ID != conv {
			t.Errorf("%s: link of conversation %d: %+v, %v", opts.Driver, conv, c, err)
		}
	}
	if s, err := db.Session(ctx, fx.session, time.Hour, 24*time.Hour); err != nil || s.Phone != patient {
		t.Errorf("%s: session: %+v, %v", opts.Driver, s, err)
	}
	if err := db.AuthenticateRecipient(ctx, patient, copyPassword); err != nil {
		t.Errorf("%s: recipient login: %v", opts.Driver, err)
	}
	if _, err := db.AuthenticateSender(ctx, drWho, copyPassword); err != nil {
		t.Errorf("%s: sender login: %v", opts.Driver, err)
	}
	if secret, step, err := db.TOTPSecret(ctx, drWho); err != nil || secret != copyTOTPSecret || step != 7 {
		t.Errorf("%s: TOTP secret: %q %d, %v", opts.Driver, secret, step, err)
	}
	if s, err := db.ConsoleSession(ctx, fx.console, time.Hour, 24*time.Hour); err != nil || s.Address != drWho {
		t.Errorf("%s: console session: %+v, %v", opts.Driver, s, err)
	}
	if k, err := db.AuthenticateAPIKey(ctx, fx.apiKey); err != nil || k.Sender != drWho {
		t.Errorf("%s: API key: %+v, %v", opts.Driver, k, err)
	}
	if p, err := db.CheckResetToken(ctx, fx.reset); err != nil || p != patient {
		t.Errorf("%s: reset token: %q, %v", opts.Driver, p, err)
	}
	if rec, err := db.IdempotentResponse(ctx, drWho, fx.idemKey); err != nil || !rec.Matches(sha256.Sum256([]byte("the request"))) {
		t.Errorf("%s: idempotent request: %v", opts.Driver, err)
	}
	// The recovery address (sealed for its row) still opens: a reset
	// mails it a link.
	if err := db.RequestPasswordReset(ctx, patient, time.Hour); err != nil {
		t.Errorf("%s: reset: %v", opts.Driver, err)
	}
	// The hold's reason (sealed for its row) opens; its delete waits.
	if holds, err := db.ListHolds(ctx); err != nil || len(holds) != 1 || holds[0].Reason != "Subpoena 17" || !holds[0].DeletePending {
		t.Errorf("%s: holds %+v, %v", opts.Driver, holds, err)
	}
	// The outbox's sealed payloads open, and a new message gets the next
	// ids.
	if len(jobsOf(t, db, securetextd.JobKindReset)) < 2 {
		t.Errorf("%s: reset jobs missing", opts.Driver)
	}
	commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "After the move"}, []testPart{{plainPart, []byte("hi")}}, patient)
	check, err := db.VerifyAudit(ctx)
	if err != nil || !check.OK() || check.Rows <= fx.audit.Rows {
		t.Errorf("%s: audit verify: %+v, %v; the copy's trail had %d rows", opts.Driver, check, err, fx.audit.Rows)
	}
	if ev, err := db.AuditRow(ctx, fx.audit.Head.Seq); err != nil || !bytes.Equal(ev.Hash, fx.audit.Head.Hash) {
		t.Errorf("%s: the source's last audit row is not in the copy: %v", opts.Driver, err)
	}
}

// pgOptions is a new database on the test binary's PostgreSQL server.
func pgOptions(t *testing.T) Options {
	return Options{Driver: Postgres, DSN: pgtest.Shared(t).NewDatabase(t)}
}

// sqliteOptions is a new SQLite file's place.
func sqliteOptions(t *testing.T, name string) Options {
	return Options{Driver: SQLite, Path: filepath.Join(t.TempDir(), name)}
}

// digests returns each table's digest, as Copy's check found it.
func digests(t *testing.T, res *CopyResult) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, tc := range res.Tables {
		if !tc.OK() {
			t.Errorf("table %s: %+v", tc.Table, tc)
		}
		out[tc.Table] = tc.Digest
	}
	return out
}

// TestCopyRoundTrip copies a SQLite store into PostgreSQL and back into a
// new SQLite file, without its key file, and finds that both copies work
// as the source did: every part opens to the same plaintext, links,
// sessions, keys and tokens are found, the audit trail verifies. The two
// copies' digests are the same table by table, and the source's file is
// not changed.
func TestCopyRoundTrip(t *testing.T) {
	ctx := t.Context()
	s1 := sqliteOptions(t, "source.db")
	fx := fillStore(t, s1.Path)
	before := fileHash(t, s1.Path)
	pg := pgOptions(t)

	res1, err := Copy(ctx, s1, pg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res1.Resumed || res1.Copied == 0 || len(res1.Tables) != len(copyTables) {
		t.Errorf("first copy: %+v", res1)
	}
	var rows int64
	for _, tc := range res1.Tables {
		rows += tc.Rows
	}
	if res1.Copied != rows {
		t.Errorf("copied %d rows of %d", res1.Copied, rows)
	}
	s2 := sqliteOptions(t, "back.db")
	res2, err := Copy(ctx, pg, s2, nil)
	if err != nil {
		t.Fatal(err)
	}
	d1, d2 := digests(t, res1), digests(t, res2)
	for name, d := range d1 {
		if back := d2[name]; back != d {
			t.Errorf("table %s: digest %x after SQLite → PostgreSQL, %x after PostgreSQL → SQLite", name, d[:8], back[:8])
		}
	}
	// Run again on a finished copy: nothing to copy, the check passes.
	again, err := Copy(ctx, s1, pg, nil)
	if err != nil || again.Copied != 0 || !again.Resumed {
		t.Errorf("copy run again: %+v, %v", again, err)
	}
	if fileHash(t, s1.Path) != before {
		t.Error("the copy changed the source's file")
	}
	checkStore(t, pg, fx)
	checkStore(t, s2, fx)
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// errStop cuts a test's copy short.
var errStop = errors.New("stopped by the test")

// runCopy opens a copy from from to to with small batches (a chunk row,
// or seven small rows, each) and lets setup set its hooks before it runs.
func runCopy(ctx context.Context, t *testing.T, from, to Options, setup func(*copier)) (*CopyResult, error) {
	t.Helper()
	c, err := openCopy(ctx, from, to)
	if err != nil {
		return nil, err
	}
	defer c.close()
	c.batchBytes, c.batchRows = chunkSize, 7
	if setup != nil {
		setup(c)
	}
	return c.run(ctx)
}

// TestCopyResume cuts a copy short at every batch in turn, in both
// directions — after a batch committed, inside a batch's transaction
// (which rolls back), and by cancelling its context (^C) — and runs it
// again each time: the copy carries on where it stopped, each row copied
// exactly once, and ends as an uninterrupted copy does.
func TestCopyResume(t *testing.T) {
	s1 := sqliteOptions(t, "source.db")
	fx := fillStore(t, s1.Path)
	whole, err := Copy(t.Context(), s1, pgOptions(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := digests(t, whole)
	pg := pgOptions(t)
	s2 := sqliteOptions(t, "back.db")
	for _, dir := range []struct{ from, to Options }{{s1, pg}, {pg, s2}} {
		var copied int64
		var res *CopyResult
		for run := 0; ; run++ {
			if run > 500 {
				t.Fatal("the copy never finished")
			}
			// Each run copies one batch and is cut short in the next:
			// after it commits, by ^C, or inside its transaction.
			ctx, cancel := context.WithCancel(t.Context())
			res, err = runCopy(ctx, t, dir.from, dir.to, func(c *copier) {
				committed, begun := 0, 0
				c.afterBatch = func(string) error {
					committed++
					switch {
					case committed < 2 || run%3 == 2:
						return nil
					case run%3 == 1:
						cancel() // the next read or write fails
						return nil
					}
					return errStop
				}
				c.duringBatch = func(string) error {
					if begun++; begun == 2 && run%3 == 2 {
						return errStop
					}
					return nil
				}
			})
			cancel()
			if res != nil {
				copied += res.Copied
			}
			if err == nil {
				break
			}
			if !errors.Is(err, errStop) && !errors.Is(err, context.Canceled) {
				t.Fatalf("%s → %s, run %d: %v", dir.from.Driver, dir.to.Driver, run, err)
			}
		}
		if got := digests(t, res); len(got) != len(want) {
			t.Fatalf("%d tables checked, want %d", len(got), len(want))
		} else {
			for name, d := range want {
				if got[name] != d {
					t.Errorf("%s → %s: table %s differs from an uninterrupted copy", dir.from.Driver, dir.to.Driver, name)
				}
			}
		}
		var rows int64
		for _, tc := range res.Tables {
			rows += tc.Rows
		}
		if copied != rows {
			t.Errorf("%s → %s: the runs copied %d rows in all, for %d rows", dir.from.Driver, dir.to.Driver, copied, rows)
		}
	}
	checkStore(t, s2, fx)
}
