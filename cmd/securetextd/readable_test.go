package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/securetextd/securetextd/notify"
	"github.com/securetextd/securetextd/store"
)

// TestNoReadableContentOnDisk runs a whole flow against the real Main on
// the demo's settings (texts to a console file, no mail relay): a message
// with a subject, a body and a named attachment; the recipient's first
// visit (a read receipt), a reply with text and a photo; a password reset;
// the sender withdrawing the message through the link of the "Texted"
// notice. Then it reads every file under the data directory, the mail
// directory and the SMS console file, while the daemon runs (WAL not yet
// checkpointed) and after it closed, and finds none of the markers: not
// plain, not base64 (at any alignment, across line breaks), not
// quoted-printable, as an email would carry them.
//
// Tokens are not content. The console file is the demo's stand-in for the
// recipient's phone, so it holds the link token as the text message does;
// it must hold no content, and neither it nor any other file may hold the
// reset or withdrawal tokens. The data and mail directories hold no token
// at all (the store keeps only their hashes).
func TestNoReadableContentOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "securetextd.toml")
	cfgText := `
[smtp]
submission_listen = "127.0.0.1:0"
[store]
path = "data/db.sqlite"
key_file = "data/key.txt"
[console]
listen = "127.0.0.1:0"
[portal]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:9"
second_factor = "none"
[sms]
provider = "console"
console_file = "sms-console.jsonl"
org = "Test Clinic"
[mail]
relay = ""
dir = "mail-out"
from = "securetextd@clinic.example"
read_receipts = "always"
# The reply's words and files in the email, to see them sealed in dir.
reply_mode = "content"
`
	if err := os.WriteFile(path, []byte(withTestEngine(t, cfgText)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Dir(cfg.Path(cfg.Store.Path))
	mailDir := cfg.Path(cfg.Mail.Dir)
	console := cfg.Path(cfg.SMS.ConsoleFile)

	photo := make([]byte, 48<<10)
	rand.Read(photo)
	copy(photo, "\xff\xd8\xff\xe0\x00\x10JFIF\x00") // looks like a JPEG to a sniffer
	content := map[string][]byte{
		"subject":          []byte("SUBJECTMARKER7Q"),
		"sender name":      []byte("Dr Markername"),
		"body":             []byte("BODYMARKER9Z"),
		"attachment name":  []byte("ATTACHNAMEMARKER4X"),
		"attachment":       []byte("ATTACHBODYMARKER2K"),
		"reply text":       []byte("REPLYMARKERÉ8W"), // not ASCII: quoted-printable differs
		"photo name":       []byte("PHOTONAMEMARKER3V"),
		"photo":            photo[4096 : 4096+48],
		"recovery address": []byte("recoverymarker5t"),
	}
	msg := "From: Dr Markername <dr.who@clinic.example>\r\n" +
		"To: 2125550123@secure.text\r\n" +
		"Subject: Re: SUBJECTMARKER7Q\r\n" +
		"Message-ID: <readable-1@clinic.example>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b1\r\n" +
		"\r\n" +
		"--b1\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		strings.Repeat("BODYMARKER9Z lorem ipsum\r\n", 50) +
		"--b1\r\n" +
		"Content-Type: text/plain; name=\"ATTACHNAMEMARKER4X.txt\"\r\n" +
		"Content-Disposition: attachment; filename=\"ATTACHNAMEMARKER4X.txt\"\r\n" +
		"\r\n" +
		strings.Repeat("ATTACHBODYMARKER2K\r\n", 50) +
		"--b1--\r\n"
	if err := send(t, m.SubmissionAddr, tlsConfigFor(t, cfg), sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery"),
		"dr.who@clinic.example", []string{"2125550123@secure.text"}, msg); err != nil {
		t.Fatal(err)
	}

	// The text, on the console file that stands for the phone.
	linkToken := waitConsoleLink(t, console)
	keys, err := store.LoadKeyFile(cfg.Path(cfg.Store.KeyFile))
	if err != nil {
		t.Fatal(err)
	}

	// The recipient's first visit (the read receipt), then a reply with a
	// photo.
	p := newPhone(t, m)
	conv := p.post("/m/"+linkToken+"/setup", url.Values{
		"password": {"maple syrup on pancakes"}, "confirm": {"maple syrup on pancakes"}, "email": {"recoverymarker5t@home.example"},
	})
	if !strings.HasPrefix(conv, "/c/") {
		t.Fatalf("setup ended at %q", conv)
	}
	p.reply(conv, "Thank you. REPLYMARKERÉ8W", "PHOTONAMEMARKER3V.jpg", photo)

	// The recovery address is confirmed through the link of the email
	// that the mail directory holds sealed; only then does a reset go.
	confirmMail := waitMail(t, mailDir, keys, "confirm")
	confirmToken := confirmLinkRE.FindStringSubmatch(confirmMail)
	if confirmToken == nil {
		t.Fatalf("no confirmation link in\n%s", confirmMail)
	}
	p.post("/confirm/"+confirmToken[1], url.Values{})

	// A password reset, through the link of the email that the mail
	// directory holds sealed.
	p.post("/reset", url.Values{"phone": {"212-555-0123"}})
	resetMail := waitMail(t, mailDir, keys, "reset")
	resetToken := regexp.MustCompile(`/reset/([A-Za-z0-9_-]{20,})`).FindStringSubmatch(resetMail)
	if resetToken == nil {
		t.Fatalf("no reset link in\n%s", resetMail)
	}
	p.post("/reset/"+resetToken[1], url.Values{"password": {"waffles with maple syrup"}, "confirm": {"waffles with maple syrup"}})

	// The sender withdraws the message through the "Texted" notice.
	notice := waitMail(t, mailDir, keys, "notice")
	revokeToken := regexp.MustCompile(`/revoke/([A-Za-z0-9_-]{20,})`).FindStringSubmatch(notice)
	if revokeToken == nil {
		t.Fatalf("no withdrawal link in\n%s", notice)
	}
	p.post("/revoke/"+revokeToken[1], url.Values{})
	if status, body := p.get("/m/" + linkToken); status != http.StatusGone || !strings.Contains(body, "withdrawn") {
		t.Errorf("withdrawn link: %d", status)
	}

	// Every email is in the mail directory, each sealed.
	reply := waitMail(t, mailDir, keys, "reply")
	if !strings.Contains(reply, "PHOTONAMEMARKER3V.jpg") {
		t.Errorf("the sealed reply does not carry the photo:\n%.2000s", reply)
	}
	waitMail(t, mailDir, keys, "read")

	tokens := map[string][]byte{
		"link token": []byte(linkToken), "reset token": []byte(resetToken[1]), "withdrawal token": []byte(revokeToken[1]),
		"confirmation token": []byte(confirmToken[1]),
	}
	check := func(when string) {
		t.Helper()
		scanned := 0
		scan := func(root string, markers map[string][]byte) {
			err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !d.Type().IsRegular() {
					return err
				}
				if strings.HasSuffix(path, ".eml") {
					t.Errorf("%s: %s is a plain email", when, path)
				}
				b, err := os.ReadFile(path)
				if errors.Is(err, fs.ErrNotExist) {
					return nil // a file PostgreSQL's server removed meanwhile
				}
				if err != nil {
					return err
				}
				scanned++
				for what, mk := range markers {
					if enc, found := holds(b, mk); found {
						t.Errorf("%s: %s holds the %s (%s)", when, path, what, enc)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		all := map[string][]byte{}
		for k, v := range content {
			all[k] = v
		}
		for k, v := range tokens {
			all[k] = v
		}
		scan(dataDir, all)
		scan(mailDir, all)
		if cfg.Store.Driver == store.Postgres {
			// The database is PostgreSQL's: its table files, the
			// WAL, the server's log.
			for _, root := range pgFiles(t, cfg) {
				scan(root, all)
			}
		}
		onPhone := map[string][]byte{"reset token": tokens["reset token"], "withdrawal token": tokens["withdrawal token"]}
		for k, v := range content {
			onPhone[k] = v
		}
		scan(console, onPhone)
		if scanned < 8 {
			t.Errorf("%s: only %d files scanned", when, scanned)
		}
	}
	check("running")
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("closed")
}

// holds reports whether b holds marker, plain or as an email would encode
// it: base64 at each of the three alignments (also across the line breaks
// that wrap it) and quoted-printable.
func holds(b, marker []byte) (encoding string, found bool) {
	if bytes.Contains(b, marker) {
		return "plain", true
	}
	unwrapped := bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\n"), nil)
	for shift := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, shift), marker...))
		// The characters that only the marker's bits decide.
		from, to := (8*shift+5)/6, 8*(shift+len(marker))/6
		if bytes.Contains(unwrapped, []byte(enc[from:to])) {
			return "base64", true
		}
	}
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	w.Write(marker)
	w.Close()
	soft := bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("=\r\n"), nil), []byte("=\n"), nil)
	if bytes.Contains(soft, bytes.ReplaceAll(qp.Bytes(), []byte("=\r\n"), nil)) {
		return "quoted-printable", true
	}
	return "", false
}

// TestHolds keeps the scanner honest: it finds each encoding of a marker.
func TestHolds(t *testing.T) {
	marker := []byte("REPLYMARKERÉ8W")
	for _, prefix := range []string{"", "a", "ab"} {
		enc := base64.StdEncoding.EncodeToString(append([]byte(prefix), marker...))
		wrapped := enc[:10] + "\r\n" + enc[10:]
		if e, ok := holds([]byte("x\r\n"+wrapped+"\r\n"), marker); !ok || e != "base64" {
			t.Errorf("base64 after %q: %q %v", prefix, e, ok)
		}
	}
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	w.Write(append(bytes.Repeat([]byte("x"), 70), marker...))
	w.Close()
	if e, ok := holds(qp.Bytes(), marker); !ok || e != "quoted-printable" {
		t.Errorf("quoted-printable %q: %q %v", qp.Bytes(), e, ok)
	}
	if _, ok := holds([]byte("nothing here"), marker); ok {
		t.Error("found in nothing")
	}
}

// waitConsoleLink waits for the first text in the console file and returns
// its link token.
func waitConsoleLink(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if line, _, ok := bytes.Cut(b, []byte("\n")); ok {
			var sms struct{ To, Text string }
			if err := json.Unmarshal(line, &sms); err != nil {
				t.Fatalf("console line %q: %v", line, err)
			}
			tok := linkRE.FindStringSubmatch(sms.Text)
			if tok == nil {
				t.Fatalf("no link in %q", sms.Text)
			}
			return tok[1]
		}
		if time.Now().After(deadline) {
			t.Fatal("no text in the console file")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitMail waits for an email of kind in the mail directory and returns
// its message, opened with keys.
func waitMail(t *testing.T, dir string, keys notify.Opener, kind string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		files, err := notify.ReadMailDir(dir, keys)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.Err != nil {
				t.Fatalf("%s: %v", f.Name, f.Err)
			}
			if f.Kind != kind {
				continue
			}
			_, rc, err := notify.OpenMailFile(filepath.Join(dir, f.Name), keys)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s email in %s (%d emails)", kind, dir, len(files))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// phone is a phone's browser without JavaScript: a cookie jar, and the
// portal's real address in place of the public URL the links carry.
type phone struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newPhone(t *testing.T, m *Main) *phone {
	jar, _ := cookiejar.New(nil)
	return &phone{t: t, base: "http://" + m.PortalAddr, c: &http.Client{Jar: jar}}
}

func (b *phone) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post submits a form, follows the redirect, and returns the path it
// ended at.
func (b *phone) post(path string, form url.Values) string {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("POST %s: %s\n%s", path, resp.Status, body)
	}
	return resp.Request.URL.Path
}

// reply posts a reply with text and one photo to the conversation at conv.
func (b *phone) reply(conv, text, name string, photo []byte) {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("text", text)
	fw, _ := mw.CreateFormFile("photo", name)
	fw.Write(photo)
	mw.Close()
	resp, err := b.c.Post(b.base+conv+"/reply", mw.FormDataContentType(), &body)
	if err != nil {
		b.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte(text)) {
		b.t.Fatalf("reply: %s\n%s", resp.Status, page)
	}
}
