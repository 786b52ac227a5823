package main

import (
	"bytes"
	"encoding/base64"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd/internal/clamdtest"
)

const scanClinician, scanPassword = "dr.who@clinic.example", "correct horse battery"

// scanGateway is the real gateway, scanning with the clamd at addr, with
// a clinician account and an API key.
type scanGateway struct {
	m      *Main
	vonage *fakeVonage
	cfg    Config
	apiKey string
}

func startScanGateway(t *testing.T, clamdAddr string) *scanGateway {
	t.Helper()
	vonage := newFakeVonage(t)
	cfg := testConfig(t, t.TempDir(), vonage.URL)
	cfg.Scan.Clamd = clamdAddr
	cfg.Scan.Timeout = 10 * time.Second
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), scanClinician, scanPassword); err != nil {
		t.Fatal(err)
	}
	key, _, err := m.db.CreateAPIKey(t.Context(), scanClinician, "scan test")
	if err != nil {
		t.Fatal(err)
	}
	return &scanGateway{m: m, vonage: vonage, cfg: cfg, apiKey: key}
}

// mail sends a message with a text and one base64 file by submission.
func (g *scanGateway) mail(t *testing.T, name string, content []byte) error {
	t.Helper()
	msg := "From: " + scanClinician + "\r\nTo: 2125550123@secure.text\r\nSubject: Your results\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nYour results are attached.\r\n" +
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"" + name + "\"\r\n\r\n" + b64(content) + "--B--\r\n"
	return send(t, g.m.SubmissionAddr, tlsConfigFor(t, g.cfg), sasl.NewPlainClient("", scanClinician, scanPassword),
		scanClinician, []string{"2125550123@secure.text"}, msg)
}

// patient opens the link of the nth text, sets a password, and returns a
// client holding the session and the conversation's path.
func (g *scanGateway) patient(t *testing.T, n int) (*http.Client, string) {
	t.Helper()
	texts := g.vonage.waitTexts(t, n, 10*time.Second)
	link := linkRE.FindStringSubmatch(texts[n-1].Text)[1]
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + g.m.PortalAddr
	resp, err := c.PostForm(base+"/m/"+link+"/setup", url.Values{"password": {"maple syrup on pancakes"}, "confirm": {"maple syrup on pancakes"}, "email": {"patient@home.example"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	conv := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(conv, "/c/") {
		t.Fatalf("setup: %s, Location %q", resp.Status, conv)
	}
	return c, conv
}

// reply posts the portal's reply form, as a browser sends it: the text,
// then the files, multipart.
func (g *scanGateway) reply(t *testing.T, c *http.Client, conv, text string, files ...[2]string) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("text", text)
	for _, f := range files {
		w, _ := mw.CreateFormFile("files", f[0])
		io.WriteString(w, f[1])
	}
	mw.Close()
	resp, err := c.Post("http://"+g.m.PortalAddr+conv+"/reply", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiSend sends a message with one file through the REST API, multipart.
func (g *scanGateway) apiSend(t *testing.T, name string, content []byte) (int, http.Header, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("to", "2125550123")
	mw.WriteField("text", "Your results are attached.")
	w, _ := mw.CreateFormFile("files", name)
	w.Write(content)
	mw.Close()
	return apiCall(t, "POST", "http://"+g.m.PortalAddr+"/api/v1/messages", g.apiKey, mw.FormDataContentType(), &body)
}

func (g *scanGateway) messages(t *testing.T) int {
	t.Helper()
	n, err := g.m.db.CountMessages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// textarea returns what the page's reply box holds.
func textarea(page string) string {
	m := regexp.MustCompile(`(?s)<textarea id="text"[^>]*>(.*?)</textarea>`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// TestScanGateway runs the real gateway with the real clamd: the EICAR
// file by SMTP is refused with 554 5.7.1, as a patient's reply file the
// portal names it and keeps the typed text, and by the API it gets 422
// naming it; nothing of any is stored. Clean content goes through each
// way, and /metrics counts the scans.
func TestScanGateway(t *testing.T) {
	g := startScanGateway(t, clamdtest.Shared(t).Addr())
	eicar := clamdtest.EICAR()

	err := g.mail(t, "eicar.com", eicar)
	se, ok := err.(*gosmtp.SMTPError)
	if !ok || se.Code != 554 || se.EnhancedCode != (gosmtp.EnhancedCode{5, 7, 1}) ||
		!strings.Contains(se.Message, clamdtest.EICARName) || !strings.Contains(se.Message, `"eicar.com"`) {
		t.Fatalf("EICAR by SMTP: %v", err)
	}
	if n := g.messages(t); n != 0 {
		t.Fatalf("%d messages stored after a finding", n)
	}
	if err := g.mail(t, "results.pdf", []byte("%PDF-1.4 clean results")); err != nil {
		t.Fatalf("clean mail: %v", err)
	}

	// The patient replies with a photo and the EICAR file: refused,
	// named, and the text is given back.
	c, conv := g.patient(t, 1)
	typed := "Here is my insurance card & the form <as asked>."
	status, page := g.reply(t, c, conv, typed, [2]string{"card.jpg", string(testJPEG(t))}, [2]string{"eicar.com", string(eicar)})
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("reply with EICAR: %d\n%s", status, page)
	}
	for _, want := range []string{"The file &#34;eicar.com&#34; contains malware (" + clamdtest.EICARName + ").", "Nothing was sent", "send it again without that file"} {
		if !strings.Contains(page, want) {
			t.Errorf("refusal page lacks %q", want)
		}
	}
	if got := textarea(page); got != typed {
		t.Errorf("reply box holds %q, want the typed %q", got, typed)
	}
	if n := g.messages(t); n != 1 {
		t.Fatalf("%d messages after a refused reply, want 1", n)
	}
	if status, page := g.reply(t, c, conv, typed, [2]string{"card.jpg", string(testJPEG(t))}); status != http.StatusSeeOther {
		t.Fatalf("clean reply: %d\n%s", status, page)
	}

	// The API: 422 naming the file.
	status, h, body := g.apiSend(t, "eicar.com", eicar)
	wantProblem(t, "EICAR by the API", status, h, body, http.StatusUnprocessableEntity, "malware")
	if !strings.Contains(string(body), `The file \"eicar.com\" contains malware (`+clamdtest.EICARName+`)`) {
		t.Errorf("API problem does not name the file: %s", body)
	}
	// And as JSON, the file in base64.
	status, h, body = apiCall(t, "POST", "http://"+g.m.PortalAddr+"/api/v1/messages", g.apiKey, "application/json",
		strings.NewReader(`{"to": ["2125550123"], "text": "Attached.", "attachments": [{"filename": "eicar.com", "content": "`+base64.StdEncoding.EncodeToString(eicar)+`"}]}`))
	wantProblem(t, "EICAR by the API, JSON", status, h, body, http.StatusUnprocessableEntity, "malware")
	if !strings.Contains(string(body), `The file \"eicar.com\"`) {
		t.Errorf("API problem does not name the file: %s", body)
	}
	if n := g.messages(t); n != 2 {
		t.Fatalf("%d messages after the API's findings, want 2", n)
	}
	if status, _, body := g.apiSend(t, "results.pdf", []byte("%PDF-1.4 clean")); status != http.StatusCreated {
		t.Fatalf("clean API message: %d %s", status, body)
	}

	metrics := get(t, http.DefaultClient, "http://"+g.m.PortalAddr+"/metrics", http.StatusOK)
	for result, least := range map[string]int{"infected": 4, "clean": 6, "error": 0} {
		m := regexp.MustCompile(`securetextd_scans_total\{result="` + result + `"\} (\d+)`).FindStringSubmatch(metrics)
		if m == nil {
			t.Errorf("/metrics has no scans %s", result)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n < least || (least == 0 && n != 0) {
			t.Errorf("scans %s = %d, want %d or more", result, n, least)
		}
	}
	if !strings.Contains(metrics, "securetextd_scan_seconds_count") {
		t.Error("/metrics has no scan_seconds")
	}
	if !strings.Contains(metrics, `securetextd_messages_refused_total{reason="malware",source="submission"} 1`) {
		t.Error("/metrics does not count the SMTP refusal as malware")
	}
}

// TestScanGatewayDown stops clamd under the real gateway: mail gets 451
// 4.7.1, a reply the try-again page with its text kept, the API 503;
// nothing is stored. Once clamd is back, mail goes through.
func TestScanGatewayDown(t *testing.T) {
	srv := clamdtest.Own(t)
	g := startScanGateway(t, srv.Addr())
	if err := g.mail(t, "results.pdf", []byte("%PDF-1.4 clean results")); err != nil {
		t.Fatal(err)
	}
	c, conv := g.patient(t, 1)

	srv.Halt()
	err := g.mail(t, "results.pdf", []byte("%PDF-1.4 clean results"))
	se, ok := err.(*gosmtp.SMTPError)
	if !ok || se.Code != 451 || se.EnhancedCode != (gosmtp.EnhancedCode{4, 7, 1}) {
		t.Fatalf("mail with clamd stopped: %v", err)
	}
	status, page := g.reply(t, c, conv, "Thank you", [2]string{"card.jpg", string(testJPEG(t))})
	if status != http.StatusServiceUnavailable || !strings.Contains(page, "try again in a few minutes") || textarea(page) != "Thank you" {
		t.Fatalf("reply with clamd stopped: %d, box %q\n%s", status, textarea(page), page)
	}
	status, h, body := g.apiSend(t, "results.pdf", []byte("%PDF-1.4 clean"))
	wantProblem(t, "API with clamd stopped", status, h, body, http.StatusServiceUnavailable, "unavailable")
	if n := g.messages(t); n != 1 {
		t.Fatalf("%d messages stored while clamd was down, want 1", n)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := g.mail(t, "results.pdf", []byte("%PDF-1.4 clean results")); err != nil {
		t.Fatalf("mail once clamd is back: %v", err)
	}
}
