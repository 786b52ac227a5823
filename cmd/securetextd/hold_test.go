package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/emersion/go-message"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/need"
	"github.com/securetextd/securetextd/store"
)

// heldConversation sends a message with an attachment through the real
// submission listener to one phone, and another to a second phone, and
// has the first patient reply through the portal with a photo. It
// returns the gateway (running), its configuration file, and the SHA-256
// of each file by name.
func heldConversation(t *testing.T) (*Main, string, map[string]string) {
	t.Helper()
	m, vonage, _, path := lifecycleGateway(t, "")
	pdf := make([]byte, 200<<10)
	rand.Read(pdf)
	photo := make([]byte, 64<<10)
	rand.Read(photo)
	copy(photo, "\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	files := map[string]string{"results.pdf": sum(pdf), "scan é 1.jpg": sum(photo)}

	// "From " starting a body line: the mbox must escape it.
	msg := "From: Dr Who <dr.who@clinic.example>\r\nTo: 2125550123@secure.text\r\nSubject: Your results\r\n" +
		"Message-ID: <results-1@clinic.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDear patient,\r\nFrom the lab: all normal.\r\n>From us too.\r\n" +
		"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"results.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + wrap76(base64.StdEncoding.EncodeToString(pdf)) + "--b1--\r\n"
	if err := sendAs(t, m, []string{"2125550123@secure.text"}, msg); err != nil {
		t.Fatal(err)
	}
	link := linkRE.FindStringSubmatch(vonage.waitTexts(t, 1, 10*time.Second)[0].Text)[1]
	if err := sendAs(t, m, []string{"2025550143@secure.text"},
		"From: dr.who@clinic.example\r\nSubject: Not held\r\n\r\nOther patient.\r\n"); err != nil {
		t.Fatal(err)
	}
	vonage.waitTexts(t, 2, 10*time.Second)

	p := newPhone(t, m)
	conv := p.post("/m/"+link+"/setup", url.Values{
		"password": {"maple syrup on pancakes"}, "confirm": {"maple syrup on pancakes"}, "email": {"pat@home.example"},
	})
	if !strings.HasPrefix(conv, "/c/1") {
		t.Fatalf("setup ended at %q", conv)
	}
	p.reply(conv, "Thanks, here is my scan.", "scan é 1.jpg", photo)
	return m, path, files
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s + "\r\n"
}

// TestHoldSurvivesRetentionAndExports: conversation 1 is held with the
// CLI; the retention sweep, run with a retention and an access expiry of
// one second, purges conversation 2 and leaves conversation 1 whole. Its
// export as mbox and as .eml files parses with go-message (and the mbox
// with Python's mailbox), every message parses, every file's SHA-256 is
// the original's, and each message has its access history; sealed to an
// age recipient, each export decrypts to the plain one. A delete of the
// held conversation is deferred, and done when the hold is removed.
func TestHoldSurvivesRetentionAndExports(t *testing.T) {
	m, path, files := heldConversation(t)
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(append(args, "--config", path), nil, &out, io.Discard)
		return out.String(), err
	}
	if out, err := cli("hold", "add", "1", "--reason", "Subpoena re: Jane Roe", "--by", "Pat Legal"); err != nil || !strings.Contains(out, "Conversation 1 is held") {
		t.Fatalf("hold add: %q %v", out, err)
	}
	if _, err := cli("hold", "add", "1", "--by", "Pat Legal"); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Errorf("hold add without a reason: %v", err)
	}
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// The daemon's sweep, as it runs every ten minutes, on a store whose
	// retention and access expiry are one second, a minute later.
	_, db, err := openForCommand(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Policy.Retention, db.Policy.AccessExpiry = time.Second, time.Second
	db.Now = func() time.Time { return time.Now().Add(time.Minute) }
	ctx := t.Context()
	var purged store.PurgeResult
	for _, sweep := range []struct {
		name string
		run  func(context.Context) error
	}{
		{store.SweepExpire, func(ctx context.Context) error { _, err := db.ExpireConversations(ctx); return err }},
		{store.SweepPurge, func(ctx context.Context) (err error) { purged, err = db.Purge(ctx); return err }},
	} {
		if ran, err := db.Exclusive(ctx, sweep.name, sweep.run); err != nil || !ran {
			t.Fatalf("sweep %s: ran %v, %v", sweep.name, ran, err)
		}
	}
	if purged.Messages != 1 {
		t.Errorf("the sweep purged %d messages; want 1, the one not held", purged.Messages)
	}
	msgs, err := db.ConversationMessages(ctx, 1)
	if err != nil || len(msgs) != 2 || len(msgs[0].Parts) != 2 || len(msgs[1].Parts) != 2 {
		t.Fatalf("the held conversation after the sweep: %d messages, %v", len(msgs), err)
	}
	if other, err := db.ConversationMessages(ctx, 2); err != nil || len(other[0].Parts) != 0 {
		t.Errorf("conversation 2 was not purged: %v", err)
	}
	db.Close()

	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	exportTo := func(format, out string, sealed bool) {
		t.Helper()
		args := []string{"export", "--conversation", "1", "--format", format, "--out", filepath.Join(dir, out), "--by", "Pat Legal"}
		if sealed {
			args = append(args, "--sealed-to", id.Recipient().String())
		}
		if text, err := cli(args...); err != nil || !strings.Contains(text, "Exported conversation 1: 2 message(s)") {
			t.Fatalf("export %s: %q %v", out, text, err)
		}
	}
	exportTo("mbox", "c1.mbox", false)
	exportTo("mbox", "c1.mbox.age", true)
	exportTo("eml-dir", "c1", false)
	exportTo("eml-dir", "c1-sealed", true)

	plain, err := os.ReadFile(filepath.Join(dir, "c1.mbox"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "c1.mbox")); fi.Mode().Perm() != 0o600 {
		t.Errorf("the mbox has mode %v, want 0600", fi.Mode().Perm())
	}
	mbox := splitMbox(t, plain)
	if len(mbox) != 2 {
		t.Fatalf("the mbox holds %d messages, want 2", len(mbox))
	}
	checkExported(t, "mbox", mbox, files)
	checkPython(t, filepath.Join(dir, "c1.mbox"), files)

	names, _ := filepath.Glob(filepath.Join(dir, "c1", "*.eml"))
	var emls [][]byte
	for _, n := range names {
		b, _ := os.ReadFile(n)
		emls = append(emls, b)
	}
	if len(emls) != 2 || filepath.Base(names[0]) != "0001-message-1.eml" {
		t.Fatalf("eml-dir holds %q", names)
	}
	checkExported(t, "eml-dir", emls, files)

	// Sealed: nothing readable on disk, and the plain export inside.
	open := func(name string) []byte {
		t.Helper()
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := age.Decrypt(f, id)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, "c1.mbox.age")); bytes.Contains(raw, []byte("Your results")) {
		t.Error("the sealed mbox holds the subject in clear")
	}
	if got := open(filepath.Join(dir, "c1.mbox.age")); !bytes.Equal(got, plain) {
		t.Errorf("the sealed mbox (%d bytes) is not the plain one (%d bytes)", len(got), len(plain))
	}
	for i, n := range names {
		sealed := filepath.Join(dir, "c1-sealed", filepath.Base(n)+".age")
		if got := open(sealed); !bytes.Equal(got, emls[i]) {
			t.Errorf("%s is not %s", sealed, n)
		}
	}
	if _, err := cli("export", "--conversation", "1", "--format", "mbox", "--out", filepath.Join(dir, "c1.mbox"), "--by", "Pat Legal"); err == nil || !strings.Contains(err.Error(), "never overwrites") {
		t.Errorf("export over an existing file: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}

	// The sender deletes the held conversation: deferred; the hold goes,
	// and the delete is done.
	if out, err := cli("delete", "1", "--by", "dr.who@clinic.example"); err != nil || !strings.Contains(out, securetextd.DeferredMessage) {
		t.Fatalf("delete of a held conversation: %q %v", out, err)
	}
	if out, _ := cli("hold", "list"); !strings.Contains(out, `"Subpoena re: Jane Roe"`) || !strings.Contains(out, "deferred") {
		t.Errorf("hold list:\n%s", out)
	}
	if out, err := cli("hold", "remove", "1", "--by", "Pat Legal"); err != nil || !strings.Contains(out, "2 message(s) purged") {
		t.Fatalf("hold remove: %q %v", out, err)
	}

	_, db, err = openForCommand(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if msgs, err := db.ConversationMessages(ctx, 1); err != nil || len(msgs[0].Parts)+len(msgs[1].Parts) != 0 {
		t.Errorf("conversation 1 after the hold was removed: %v", err)
	}
	var trail []string
	db.AuditTrail(ctx, time.Time{}, func(ev securetextd.AuditEvent) error {
		if ev.ConversationID == 1 && strings.HasPrefix(ev.Event, "hold.") || strings.HasPrefix(ev.Event, "conversation.") && ev.Event != securetextd.AuditExpired {
			trail = append(trail, ev.Event+" "+ev.Actor)
		}
		if strings.Contains(ev.Detail, "Jane Roe") {
			t.Errorf("the audit trail holds the hold's reason: %+v", ev)
		}
		return nil
	})
	want := []string{"hold.placed Pat Legal", "conversation.exported Pat Legal", "conversation.exported Pat Legal",
		"conversation.exported Pat Legal", "conversation.exported Pat Legal", "conversation.revoked dr.who@clinic.example",
		"conversation.delete_deferred dr.who@clinic.example", "hold.removed Pat Legal", "conversation.deleted dr.who@clinic.example"}
	if !slices.Equal(trail, want) {
		t.Errorf("audit trail:\n%q\nwant\n%q", trail, want)
	}
}

// splitMbox splits an mboxrd file into its messages, removing one ">"
// from each line that starts with ">"s and "From ".
func splitMbox(t *testing.T, b []byte) [][]byte {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("From ")) {
		t.Fatalf("the mbox starts with %q", b[:min(len(b), 20)])
	}
	var msgs [][]byte
	for _, chunk := range bytes.Split(b[5:], []byte("\n\nFrom ")) {
		_, body, _ := bytes.Cut(chunk, []byte("\n")) // the rest of the From line
		var out []byte
		for line := range bytes.Lines(body) {
			if q := bytes.TrimLeft(line, ">"); len(q) < len(line) && bytes.HasPrefix(q, []byte("From ")) {
				line = line[1:]
			}
			out = append(out, line...)
		}
		msgs = append(msgs, out)
	}
	return msgs
}

// checkExported parses each message with go-message: it must parse whole,
// its files must hash as the originals, and it must carry its access
// history.
func checkExported(t *testing.T, what string, msgs [][]byte, files map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for i, raw := range msgs {
		e, err := message.Read(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s message %d: %v", what, i, err)
		}
		mr := e.MultipartReader()
		if mr == nil {
			t.Fatalf("%s message %d is not multipart", what, i)
		}
		var history, text string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s message %d: %v", what, i, err)
			}
			body, err := io.ReadAll(p.Body)
			if err != nil {
				t.Fatalf("%s message %d: %v", what, i, err)
			}
			_, params, _ := p.Header.ContentDisposition()
			switch name := params["filename"]; {
			case p.Header.Get("X-Securetextd-Part") == "access-history":
				history = string(body)
			case name != "":
				sum := sha256.Sum256(body)
				if hex.EncodeToString(sum[:]) != files[name] {
					t.Errorf("%s message %d: %s does not hash as the original", what, i, name)
				}
				seen[name] = true
			default:
				text += string(body)
			}
		}
		wantEvent := map[int]string{0: "message.accepted", 1: "reply.sent"}[i]
		if !strings.Contains(history, wantEvent) || !strings.Contains(history, "seq ") {
			t.Errorf("%s message %d: its history lacks %s:\n%s", what, i, wantEvent, history)
		}
		if i == 0 && (!strings.Contains(text, "\nFrom the lab: all normal.") || !strings.Contains(text, "\n>From us too.")) {
			t.Errorf("%s message %d: body %q", what, i, text)
		}
		if i == 0 && e.Header.Get("Subject") != "Your results" {
			t.Errorf("%s message %d: subject %q", what, i, e.Header.Get("Subject"))
		}
	}
	for name := range files {
		if !seen[name] {
			t.Errorf("%s: %s is missing", what, name)
		}
	}
}

// checkPython reads the mbox with Python's mailbox and email modules, as
// a second, independent reader: two messages, and the files' hashes.
func checkPython(t *testing.T, path string, files map[string]string) {
	t.Helper()
	python := need.Program(t, "python3", "python3")
	out, err := exec.Command(python, "-c", `
import hashlib, json, mailbox, sys
box = mailbox.mbox(sys.argv[1])
res = {"messages": len(box), "files": {}}
for msg in box:
    for part in msg.walk():
        name = part.get_filename()
        if name and not name.startswith("access-history"):
            res["files"][name] = hashlib.sha256(part.get_payload(decode=True)).hexdigest()
print(json.dumps(res))
`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var res struct {
		Messages int
		Files    map[string]string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python said %s", out)
	}
	if res.Messages != 2 || len(res.Files) != len(files) {
		t.Errorf("python read %d messages, files %q", res.Messages, res.Files)
	}
	for name, sum := range files {
		if res.Files[name] != sum {
			t.Errorf("python: %q hashes %s, want %s (it read %q)", name, res.Files[name], sum, res.Files)
		}
	}
}

// TestHoldAPI: an admin key places and lists a hold over HTTP; the
// sender's DELETE of the held conversation is answered 202 "held: deletion
// deferred until the hold is removed" and purges nothing; removing the
// hold carries the delete out. A sender's key cannot hold and an admin
// key cannot send or delete.
func TestHoldAPI(t *testing.T) {
	m, vonage, _, _ := lifecycleGateway(t, "")
	ctx := t.Context()
	if err := sendAs(t, m, []string{"2125550123@secure.text"},
		"From: dr.who@clinic.example\r\nSubject: Results\r\n\r\nAll normal.\r\n"); err != nil {
		t.Fatal(err)
	}
	vonage.waitTexts(t, 1, 10*time.Second)
	sender, _, err := m.db.CreateAPIKey(ctx, "dr.who@clinic.example", "EHR")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.db.CreateSender(ctx, "legal@clinic.example", "a long legal passphrase"); err != nil {
		t.Fatal(err)
	}
	admin, _, err := m.db.CreateAdminKey(ctx, "legal@clinic.example", "holds")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.PortalAddr + "/api/v1"
	call := func(method, path, key, body string) (int, http.Header, []byte) {
		t.Helper()
		var r io.Reader
		ctype := ""
		if body != "" {
			r, ctype = strings.NewReader(body), "application/json"
		}
		return apiCall(t, method, base+path, key, ctype, r)
	}

	st, h, b := call("POST", "/conversations/1/hold", sender, `{"reason": "x"}`)
	wantProblem(t, "a sender's key holding", st, h, b, http.StatusForbidden, "forbidden")
	st, h, b = call("POST", "/messages", admin, `{"to": ["2125550123"], "text": "hi"}`)
	wantProblem(t, "an admin key sending", st, h, b, http.StatusForbidden, "forbidden")
	st, h, b = call("POST", "/conversations/1/hold", admin, `{"reason": ""}`)
	wantProblem(t, "a hold without a reason", st, h, b, http.StatusUnprocessableEntity, "invalid-request")
	if st, _, b := call("POST", "/conversations/1/hold", admin, `{"reason": "Audit 2026-14, Jane Roe"}`); st != http.StatusCreated {
		t.Fatalf("place hold: %d %s", st, b)
	}
	st, h, b = call("POST", "/conversations/1/hold", admin, `{"reason": "again"}`)
	wantProblem(t, "a second hold", st, h, b, http.StatusConflict, "conflict")
	st, _, b = call("GET", "/holds", admin, "")
	if st != http.StatusOK || !strings.Contains(string(b), `"reason":"Audit 2026-14, Jane Roe"`) || !strings.Contains(string(b), `"placed_by":"legal@clinic.example"`) {
		t.Errorf("list holds: %d %s", st, b)
	}

	st, _, b = call("DELETE", "/conversations/1", sender, "")
	var del struct {
		State  string
		Detail string
		Purged *int
	}
	json.Unmarshal(b, &del)
	if st != http.StatusAccepted || del.State != "deferred" || del.Detail != securetextd.DeferredMessage {
		t.Fatalf("delete of a held conversation: %d %s", st, b)
	}
	if msgs, err := m.db.ConversationMessages(ctx, 1); err != nil || len(msgs[0].Parts) != 1 {
		t.Fatalf("content after a deferred delete: %v", err)
	}
	st, _, b = call("DELETE", "/conversations/1/hold", admin, "")
	del = struct {
		State  string
		Detail string
		Purged *int
	}{}
	json.Unmarshal(b, &del)
	if st != http.StatusOK || del.State != "deleted" || del.Purged == nil || *del.Purged != 1 {
		t.Fatalf("remove hold: %d %s", st, b)
	}
	if msgs, err := m.db.ConversationMessages(ctx, 1); err != nil || len(msgs[0].Parts) != 0 {
		t.Errorf("content after the hold was removed: %v", err)
	}
	st, h, b = call("DELETE", "/conversations/1", admin, "")
	wantProblem(t, "an admin key deleting", st, h, b, http.StatusForbidden, "forbidden")
	st, h, b = call("DELETE", "/conversations/1", sender, "")
	wantProblem(t, "deleting twice", st, h, b, http.StatusConflict, "conflict")
}

// TestHoldCommandLine: what the hold, delete and export commands refuse
// before they open anything, and their manuals.
func TestHoldCommandLine(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.mbox")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"hold", "add", "1", "--reason", "r"}, "needs --by NAME"},
		{[]string{"hold", "add", "1", "--by", "Pat"}, "needs --reason TEXT"},
		{[]string{"hold", "add", "one", "--by", "Pat", "--reason", "r"}, `"one" is not a conversation id`},
		{[]string{"hold", "remove", "1", "--by", "Pat\tLegal"}, "--by: A name is 1 to 128 printable characters."},
		{[]string{"hold", "list", "1"}, "hold list takes no arguments"},
		{[]string{"hold", "drop", "1"}, `unknown hold command "drop"`},
		{[]string{"delete", "1"}, "delete needs --by NAME"},
		{[]string{"export", "--conversation", "1", "--format", "pdf", "--out", out, "--by", "Pat"}, `--format "pdf": use mbox or eml-dir`},
		{[]string{"export", "--conversation", "1", "--format", "mbox", "--by", "Pat"}, "export needs --out PATH"},
		{[]string{"export", "--conversation", "1", "--format", "mbox", "--out", out}, "export needs --by NAME"},
		{[]string{"export", "--conversation", "1", "--format", "mbox", "--out", out, "--by", "Pat", "--sealed-to", "age1nope"}, "--sealed-to:"},
	} {
		err := run(tc.args, nil, io.Discard, io.Discard)
		var ue errUsage
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
	for _, cmd := range []string{"hold", "delete", "export"} {
		a := runCLI(t, "", "help", cmd)
		if !strings.HasPrefix(a, "NAME\n    securetextd "+cmd+" - ") || a != runCLI(t, "", cmd, "--help") {
			t.Errorf("%s: manual %q", cmd, a)
		}
	}
}
