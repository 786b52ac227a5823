package console

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// composeForm is a compose form as a browser sends it: fields in document
// order, the file last.
type composeForm struct {
	rows     [][2]string // phone, date of birth
	subject  string
	text     string
	receipt  bool
	fileName string
	file     []byte
}

func (f composeForm) encode(t *testing.T) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, r := range f.rows {
		mw.WriteField("to", r[0])
		mw.WriteField("date_of_birth", r[1])
	}
	mw.WriteField("subject", f.subject)
	mw.WriteField("text", f.text)
	if f.receipt {
		mw.WriteField("read_receipt", "1")
	}
	w, err := mw.CreateFormFile("files", f.fileName)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(f.file)
	mw.Close()
	return mw.FormDataContentType(), &buf
}

// compose posts f and returns the status, the final path and the page.
func (b *browser) compose(f composeForm, header ...string) (int, string, string) {
	b.t.Helper()
	typ, body := f.encode(b.t)
	req, err := http.NewRequest("POST", b.base+"/compose", body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", typ)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Request.URL.Path, string(page)
}

// messageIDOf reads the message id from a message page's path.
func messageIDOf(t *testing.T, path string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(strings.TrimPrefix(path, "/m/"), 10, 64)
	if err != nil {
		t.Fatalf("not a message page: %s", path)
	}
	return id
}

var pdf = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% lab results\n%%EOF\n")

// TestCompose: a message composed in the console, to two numbers (one
// with a date of birth), with a PDF and a read receipt, is stored by the
// API's path: sealed, its recipients' conversations and texts queued, the
// date of birth kept, audited as the account's, and shown on its page.
func TestCompose(t *testing.T) {
	rg := newRig(t, RequireNone)
	doc := rg.browser(t)
	doc.login(drWho)
	code, _, body := doc.get("/compose")
	if code != 200 || !strings.Contains(body, `enctype="multipart/form-data"`) {
		t.Fatalf("compose form: %d\n%s", code, body)
	}
	code, path, body := doc.compose(composeForm{
		rows:    [][2]string{{"(212) 555-0123", "1980-04-27"}, {"+1 212 555 0188", ""}, {"", ""}},
		subject: "Lab results", text: "Dear patient,\nyour results are attached.\n\nDr Who",
		receipt: true, fileName: "results.pdf", file: pdf,
	})
	if code != 200 || !strings.HasPrefix(path, "/m/") {
		t.Fatalf("compose: %d %s\n%s", code, path, body)
	}
	id := messageIDOf(t, path)
	for _, want := range []string{"Sent. Each recipient", "Lab results", "your results are attached.\n\nDr Who", "results.pdf", "12125550123", "12125550188"} {
		if !strings.Contains(body, want) {
			t.Errorf("the message's page lacks %q:\n%s", want, body)
		}
	}
	m, err := rg.db.Message(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sender != drWho || m.Auth != "console" || m.Subject != "Lab results" || len(m.Parts) != 2 ||
		m.Parts[1].Filename != "results.pdf" || m.Parts[1].ContentType != "application/pdf" {
		t.Errorf("stored as %+v", m)
	}
	if code, _, got := doc.get("/m/" + strconv.FormatInt(id, 10) + "/p/1"); code != 200 || got != string(pdf) {
		t.Errorf("the PDF read back: %d %q", code, got)
	}
	if has, err := rg.db.HasDateOfBirth(t.Context(), "+12125550123"); err != nil || !has {
		t.Errorf("date of birth of the first number kept: %v %v", has, err)
	}
	if has, _ := rg.db.HasDateOfBirth(t.Context(), "+12125550188"); has {
		t.Error("a date of birth kept for the second number, which was given none")
	}
	if err := rg.db.CheckDateOfBirth(t.Context(), "+12125550123", "1980-04-27"); err != nil {
		t.Errorf("the date of birth kept is not the one given: %v", err)
	}
	ev, err := rg.db.LastAudit(t.Context(), securetextd.AuditMessageAccepted)
	if err != nil || ev == nil || ev.MessageID != id || ev.Actor != drWho {
		t.Errorf("acceptance audited as %+v, %v", ev, err)
	}
	_, _, sent := doc.get("/sent")
	if strings.Count(sent, `data-row="`+strconv.FormatInt(id, 10)+`-`) != 2 {
		t.Errorf("Sent does not list the message once per phone:\n%s", sent)
	}
}

// TestComposeRefused: what the API refuses the console refuses, and
// nothing is stored: a number of a country not allowed, a bad date of
// birth, a message over the size limit, one over the sender's daily
// limit, and a form posted from another site (the cross-origin check
// covers the multipart POST).
func TestComposeRefused(t *testing.T) {
	rg := newRig(t, RequireNone)
	doc := rg.browser(t)
	doc.login(drWho)
	ok := composeForm{rows: [][2]string{{"+12125550123", ""}}, subject: "Hello", text: "Hi", fileName: "a.pdf", file: pdf}

	bad := ok
	bad.rows = [][2]string{{"+44 20 7946 0958", ""}}
	if code, _, body := doc.compose(bad); code != http.StatusUnprocessableEntity || !strings.Contains(body, "to[0]") {
		t.Errorf("a number of a country not allowed: %d\n%s", code, body)
	}
	bad = ok
	bad.rows = [][2]string{{"+12125550123", "27/04/1980"}}
	if code, _, body := doc.compose(bad); code != http.StatusUnprocessableEntity || !strings.Contains(body, "YYYY-MM-DD") {
		t.Errorf("a bad date of birth: %d\n%s", code, body)
	}
	bad = ok
	bad.rows = [][2]string{{"", "1980-04-27"}}
	if code, _, _ := doc.compose(bad); code != http.StatusUnprocessableEntity {
		t.Errorf("a date of birth without a number: %d", code)
	}
	bad = ok
	bad.file = bytes.Repeat([]byte("x"), int(rg.srv.cfg.MaxMessageBytes)+formFraming)
	if code, _, _ := doc.compose(bad); code != http.StatusRequestEntityTooLarge {
		t.Errorf("over max_message_bytes: %d", code)
	}
	if code, _, _ := doc.compose(ok, "Sec-Fetch-Site", "cross-site"); code != http.StatusForbidden {
		t.Errorf("a cross-site compose: %d, want 403", code)
	}
	if n, _ := rg.db.CountMessages(t.Context()); n != 0 {
		t.Fatalf("%d messages stored by refused forms", n)
	}

	rg.db.Policy.DailyPerSender = 1
	if code, _, body := doc.compose(ok); code != 200 {
		t.Fatalf("the first message of the day: %d\n%s", code, body)
	}
	if code, _, body := doc.compose(ok); code != http.StatusTooManyRequests || !strings.Contains(body, "Daily limit") {
		t.Errorf("over the daily limit: %d\n%s", code, body)
	}
	if n, _ := rg.db.CountMessages(t.Context()); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}
