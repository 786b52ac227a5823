package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/securetextd/securetextd/store"
)

// TestBrowserConsoleCompose drives the console's compose, withdraw,
// delete, export and admin pages in a desktop-sized Chromium (1280×800)
// against the real gateway. The clinician composes a message with a PDF;
// the patient, in a second browser, opens it, and its page in the console
// shows "opened" with the access history; the clinician withdraws it, and
// the patient's link says so. A second message, composed with a date of
// birth, is deleted: its chunks leave the store, the patient's link says
// "deleted by the sender", and no database file holds its content or its
// sealed chunks once the gateway closed. axe-core checks every page for
// WCAG 2.2 A and AA; each leaves a screenshot in artifacts/browser.
func TestBrowserConsoleCompose(t *testing.T) {
	axe := axeScript(t)
	ctx := desktop(t)
	vonage := newFakeVonage(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, vonage.URL)
	cfg.SMS.Org = "North Clinic"
	cfg.Console.RequireTOTP = "none"
	cfg.Limits.DailyOrg = 1000
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			m.Close(context.Background())
		}
	})
	const doctor, password = "dr.who@clinic.example", "correct horse battery"
	if err := m.db.CreateSender(t.Context(), doctor, password); err != nil {
		t.Fatal(err)
	}
	if err := m.db.SetAdmin(t.Context(), doctor, true); err != nil {
		t.Fatal(err)
	}
	console := "http://" + m.ConsoleAddr
	navigate(t, ctx, console+"/login")
	step(t, ctx, "fill sign-in",
		chromedp.SendKeys(chromedp.ID("address"), doctor),
		chromedp.SendKeys(chromedp.ID("password"), password))
	submit(t, ctx, "main form button[type=submit]")

	// Compose, with a PDF and a read receipt.
	files := t.TempDir()
	writeFile := func(name string, b []byte) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pdfA := writeFile("results.pdf", []byte("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"))
	navigate(t, ctx, console+"/compose")
	shot(t, ctx, "console-compose-01-form")
	checkA11y(t, ctx, axe, "compose")
	step(t, ctx, "fill compose",
		chromedp.SendKeys(chromedp.ID("to0"), "212-555-0123"),
		chromedp.SendKeys(chromedp.ID("subject"), "Your lab results"),
		chromedp.SendKeys(chromedp.ID("text"), "Dear patient,\nyour results are attached.\n\nDr Who"),
		chromedp.SetUploadFiles(chromedp.ID("files"), []string{pdfA}),
		chromedp.Click(chromedp.ID("receipt")))
	submit(t, ctx, "main form button[type=submit]")
	body := pageText(t, ctx)
	for _, want := range []string{"Sent. Each recipient", "Your lab results", "your results are attached.", "results.pdf", "12125550123"} {
		if !strings.Contains(body, want) {
			t.Errorf("after compose, the page lacks %q:\n%s", want, body)
		}
	}
	shot(t, ctx, "console-compose-02-sent")
	checkA11y(t, ctx, axe, "composed message")
	pageA := location(t, ctx)

	// The patient opens it in a second browser.
	link := linkRE.FindStringSubmatch(vonage.waitTexts(t, 1, 10*time.Second)[0].Text)[1]
	patient := newBrowser(t)
	navigate(t, patient, "http://"+m.PortalAddr+"/m/"+link)
	step(t, patient, "fill setup",
		chromedp.SendKeys(chromedp.ID("password"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("confirm"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("email"), "patient@home.example"))
	submit(t, patient, "main form button[type=submit]")
	if body := pageText(t, patient); !strings.Contains(body, "your results are attached.") || !strings.Contains(body, "results.pdf") {
		t.Fatalf("the patient's page:\n%s", body)
	}
	navigate(t, ctx, strings.Split(pageA, "?")[0])
	body = pageText(t, ctx)
	for _, want := range []string{"opened", "Message opened"} {
		if !strings.Contains(body, want) {
			t.Errorf("the message's page lacks %q:\n%s", want, body)
		}
	}
	shot(t, ctx, "console-compose-03-opened")
	checkA11y(t, ctx, axe, "opened message")

	// Withdraw it, after the confirmation page.
	submit(t, ctx, `a[href$="/withdraw"]`)
	if body := pageText(t, ctx); !strings.Contains(body, "Withdraw this message?") {
		t.Fatalf("withdraw confirmation:\n%s", body)
	}
	shot(t, ctx, "console-compose-04-withdraw-confirm")
	checkA11y(t, ctx, axe, "withdraw confirmation")
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "Withdrawn.") || !strings.Contains(body, "withdrawn") {
		t.Errorf("after withdrawing:\n%s", body)
	}
	shot(t, ctx, "console-compose-05-withdrawn")
	checkA11y(t, ctx, axe, "withdrawn message")
	navigate(t, patient, "http://"+m.PortalAddr+"/m/"+link)
	if body := pageText(t, patient); !strings.Contains(body, "withdrawn by the sender") {
		t.Errorf("the patient after the withdrawal:\n%s", body)
	}

	// A second message, with a date of birth and markers in every field,
	// deleted now.
	const subjectMark, bodyMark, nameMark, fileMark = "SUBJMARKERQ7", "BODYMARKERZ9", "NAMEMARKERX4", "FILEMARKERK2"
	pdfB := writeFile(nameMark+".pdf", []byte("%PDF-1.4\n"+strings.Repeat(fileMark+" ", 4000)+"\n%%EOF\n"))
	navigate(t, ctx, console+"/compose")
	step(t, ctx, "fill compose again",
		chromedp.SendKeys(chromedp.ID("to0"), "212-555-0188"),
		chromedp.SetValue(chromedp.ID("dob0"), "1980-04-27"),
		chromedp.SendKeys(chromedp.ID("subject"), subjectMark),
		chromedp.SendKeys(chromedp.ID("text"), "Hello\n"+bodyMark),
		chromedp.SetUploadFiles(chromedp.ID("files"), []string{pdfB}))
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, bodyMark) {
		t.Fatalf("the second message:\n%s", body)
	}
	var idB int64
	if _, err := fmt.Sscanf(strings.TrimPrefix(location(t, ctx), console+"/m/"), "%d", &idB); err != nil {
		t.Fatal(err)
	}
	texts := vonage.waitTexts(t, 2, 10*time.Second)
	linkB := linkRE.FindStringSubmatch(texts[1].Text)[1]
	raw := rawDB(t, cfg)
	chunks := sealedChunks(t, raw, idB)
	if len(chunks) == 0 {
		t.Fatal("the second message has no chunks")
	}

	// The scan below would see them: before the delete, the database's
	// files hold them.
	if cfg.Store.Driver != store.Postgres && !filesHold(t, filepath.Dir(cfg.Path(cfg.Store.Path)), chunkSlice(chunks[0])) {
		t.Fatal("the database's files do not hold the message's sealed chunk before the delete: the scan would prove nothing")
	}

	submit(t, ctx, `a[href$="/delete"]`)
	if body := pageText(t, ctx); !strings.Contains(body, "Delete this message now?") {
		t.Fatalf("delete confirmation:\n%s", body)
	}
	shot(t, ctx, "console-compose-06-delete-confirm")
	checkA11y(t, ctx, axe, "delete confirmation")
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "Deleted.") || strings.Contains(body, bodyMark) || strings.Contains(body, subjectMark) {
		t.Errorf("after deleting:\n%s", body)
	}
	shot(t, ctx, "console-compose-07-deleted")
	checkA11y(t, ctx, axe, "deleted message")
	if n := len(sealedChunks(t, raw, idB)); n != 0 {
		t.Errorf("the store still holds %d chunks of the deleted message", n)
	}
	navigate(t, patient, "http://"+m.PortalAddr+"/m/"+linkB)
	if body := pageText(t, patient); !strings.Contains(body, "deleted by the sender") {
		t.Errorf("the patient of the deleted message:\n%s", body)
	}

	// Sent, with its export link, and the admin pages.
	navigate(t, ctx, console+"/sent")
	if body := pageText(t, ctx); !strings.Contains(body, "Export this list (CSV)") || !strings.Contains(body, "deleted") {
		t.Errorf("Sent:\n%s", body)
	}
	shot(t, ctx, "console-compose-08-sent")
	checkA11y(t, ctx, axe, "sent with export")
	navigate(t, ctx, console+"/admin")
	step(t, ctx, "fill new account", chromedp.SendKeys(chromedp.ID("address"), "nurse@clinic.example"))
	submit(t, ctx, `form[action="/admin/senders"] button`)
	if body := pageText(t, ctx); !strings.Contains(body, "nurse@clinic.example was added") || !strings.Contains(body, "1000") {
		t.Errorf("admin page after adding:\n%s", body)
	}
	step(t, ctx, "fill new key", chromedp.SendKeys(chromedp.ID("name"), "EHR"))
	submit(t, ctx, `form[action="/admin/keys"] button`)
	if body := pageText(t, ctx); !regexp.MustCompile(`stx_\S{20,}`).MatchString(body) {
		t.Errorf("no key shown:\n%s", body)
	}
	shot(t, ctx, "console-compose-09-admin")
	checkA11y(t, ctx, axe, "admin")
	submit(t, ctx, `a[href^="/admin/keys/"]`)
	shot(t, ctx, "console-compose-10-revoke-key-confirm")
	checkA11y(t, ctx, axe, "revoke key confirmation")
	navigate(t, ctx, console+"/admin/senders/remove?address=nurse@clinic.example")
	shot(t, ctx, "console-compose-11-remove-account-confirm")
	checkA11y(t, ctx, axe, "remove account confirmation")
	navigate(t, ctx, console+"/admin/audit")
	if body := pageText(t, ctx); !strings.Contains(body, "The hash chain verifies") {
		t.Errorf("audit page:\n%s", body)
	}
	shot(t, ctx, "console-compose-12-audit")
	checkA11y(t, ctx, axe, "audit")

	// No database file holds the deleted message: not its words, not its
	// file's name or bytes, and (on SQLite, whose secure_delete zeroes
	// freed pages) not its sealed chunks either. PostgreSQL keeps a
	// deleted row's bytes until VACUUM reuses them; they are sealed.
	raw.Close()
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	closed = true
	markers := map[string][]byte{"subject": []byte(subjectMark), "body": []byte(bodyMark), "file name": []byte(nameMark), "file": []byte(fileMark)}
	if cfg.Store.Driver != store.Postgres {
		for i, c := range chunks {
			markers[fmt.Sprintf("sealed chunk %d", i)] = chunkSlice(c)
		}
	}
	roots := []string{filepath.Dir(cfg.Path(cfg.Store.Path))}
	if cfg.Store.Driver == store.Postgres {
		roots = pgFiles(t, cfg)
	}
	scanned := 0
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil // a file PostgreSQL's server removed meanwhile
			}
			scanned++
			for what, mk := range markers {
				if strings.HasPrefix(what, "sealed") {
					if bytes.Contains(b, mk) {
						t.Errorf("%s holds the deleted message's %s", path, what)
					}
				} else if enc, found := holds(b, mk); found {
					t.Errorf("%s holds the deleted message's %s (%s)", path, what, enc)
				}
			}
			return nil
		})
	}
	if scanned == 0 {
		t.Error("no database file scanned")
	}
}

// sealedChunks returns the sealed chunks of message id's parts, read from
// the database behind the store's back (the id is written into the query:
// the engines' placeholders differ).
func sealedChunks(t *testing.T, raw *sql.DB, id int64) [][]byte {
	t.Helper()
	rows, err := raw.Query(`SELECT c.data FROM chunks c JOIN parts p ON p.blob_id = c.blob_id WHERE p.message_id = ` + strconv.FormatInt(id, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// chunkSlice is 32 bytes from the middle of a sealed chunk: ciphertext,
// found nowhere else.
func chunkSlice(c []byte) []byte {
	mid := len(c) / 2
	return c[mid : mid+min(32, len(c)-mid)]
}

// filesHold reports whether a file under root holds b.
func filesHold(t *testing.T, root string, b []byte) bool {
	t.Helper()
	found := false
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, b) {
				found = true
			}
		}
		return nil
	})
	return found
}
