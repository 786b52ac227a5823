package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/emersion/go-sasl"
)

// resultsEmail is a message as a lab's mail program writes it: an HTML
// body with a bordered table of results, an image the body shows by its
// cid: but marked as an attachment in multipart/mixed (as Outlook does),
// and a PDF of exactly 597,000 bytes.
func resultsEmail(png []byte) string {
	pdf := "%PDF-1.4\n" + strings.Repeat("x", 597_000-len("%PDF-1.4\n"))
	return "From: Dr Ada Jones <dr.who@clinic.example>\r\n" +
		"To: 2125550123@secure.text\r\n" +
		"Subject: Your lab results\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=outer\r\n\r\n" +
		"--outer\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n\r\n" +
		"<p>Your chart: <img src=\"cid:chart@clinic\" alt=\"chart\"></p>" +
		"<table border=\"1\" cellpadding=\"4\"><tr><th>Test</th><th>Value</th><th>Reference</th><th>Units</th><th>Flag</th><th>Collected</th></tr>" +
		"<tr><td>Haemoglobin</td><td>13.5</td><td>12.0-15.5</td><td>g/dL</td><td>Normal</td><td>Yesterday</td></tr></table>\r\n" +
		"--outer\r\n" +
		"Content-Type: image/png; name=\"chart.png\"\r\nContent-Disposition: attachment; filename=\"chart.png\"\r\n" +
		"Content-ID: <chart@clinic>\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		b64(png) +
		"--outer\r\n" +
		"Content-Type: application/pdf; name=\"report.pdf\"\r\n" +
		"Content-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		b64([]byte(pdf)) +
		"--outer--\r\n"
}

// TestBrowserPatientView walks, at phone width, what a patient notices:
// times in the zone of their number (with the zone's abbreviation where
// the number spans several) and then in the browser's own; the inbox
// with sender, subject and unread; what is new since the last visit;
// files by kind and size, an inline image not listed again, a table with
// its borders and whole words; and the reply's size checked before the
// upload. Screenshots go to artifacts/browser (pv-*.png).
func TestBrowserPatientView(t *testing.T) {
	ctx := newBrowser(t)
	vonage := newFakeVonage(t)
	cfg := testConfig(t, t.TempDir(), vonage.URL)
	cfg.Portal.MaxReplyBytes = 1 << 20
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.PortalAddr
	tc := tlsConfigFor(t, cfg)
	clinician := sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery")
	mail := func(to, msg string) {
		t.Helper()
		if err := send(t, m.SubmissionAddr, tc, clinician, "dr.who@clinic.example", []string{to}, msg); err != nil {
			t.Fatal(err)
		}
	}
	texts := 0
	nextLink := func() string {
		t.Helper()
		texts++
		return linkRE.FindStringSubmatch(vonage.waitTexts(t, texts, 10*time.Second)[texts-1].Text)[1]
	}
	scripts := func(on bool) {
		t.Helper()
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !on}); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	// firstTime checks the page's first <time> against its datetime
	// shown in zone, in the server's layout.
	firstTime := func(what, zone, layout string) {
		t.Helper()
		got := strings.SplitN(eval(`(() => { const e = document.querySelector('time'); return e.getAttribute('datetime') + '|' + e.textContent })()`), "|", 2)
		at, err := time.Parse(time.RFC3339, got[0])
		if err != nil {
			t.Fatal(err)
		}
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		if want := at.In(loc).Format(layout); got[1] != want {
			t.Errorf("%s: time shows %q, want %q (%s)", what, got[1], want, zone)
		}
	}
	setUp := func(link string) {
		t.Helper()
		navigate(t, ctx, base+"/m/"+link)
		step(t, ctx, "fill setup",
			chromedp.SendKeys(chromedp.ID("password"), "maple syrup on pancakes"),
			chromedp.SendKeys(chromedp.ID("confirm"), "maple syrup on pancakes"),
			chromedp.SendKeys(chromedp.ID("email"), "patient@home.example"))
		submit(t, ctx, "main form button[type=submit]")
	}

	// A New York number, without script: New York's time, no abbreviation.
	mail("2125550123@secure.text", resultsEmail(testPNG(t)))
	scripts(false)
	setUp(nextLink())
	conv := location(t, ctx)
	firstTime("+1 212 without script", "America/New_York", "Mon 2 Jan 2006, 15:04")
	body := pageText(t, ctx)
	if !strings.Contains(body, "report.pdf") || !strings.Contains(body, "PDF, 597 KB") {
		t.Errorf("the PDF is not listed as \"PDF, 597 KB\":\n%s", body)
	}
	// portal.access_expiry is 72 hours: just sent, it closes in 3 days.
	if !strings.Contains(body, "This conversation closes in 3 days.") {
		t.Errorf("no note of when the conversation closes:\n%s", body)
	}
	if strings.Contains(body, "chart.png") || eval(`String(document.querySelectorAll('a.file').length)`) != "1" {
		t.Errorf("the image the body shows is listed as an attachment:\n%s", body)
	}
	if eval(`(() => { const i = document.querySelector('.body img'); return String(i ? i.naturalWidth : 0) })()`) != "120" {
		t.Error("the inline image is not shown in the body")
	}
	// The table keeps its lines, and no word is broken across lines.
	if got := eval(`getComputedStyle(document.querySelector('.body td')).borderTopStyle`); got != "solid" {
		t.Errorf("table cell border: %q", got)
	}
	if got := eval(`(() => {
		for (const c of document.querySelectorAll('.body th, .body td')) {
			const r = document.createRange(); r.selectNodeContents(c);
			if (r.getClientRects().length > 1) return c.textContent;
		}
		return '';
	})()`); got != "" {
		t.Errorf("table cell %q is broken across lines", got)
	}
	if eval(`String(document.querySelectorAll('.msg.new').length)`) != "1" {
		t.Error("the first visit does not mark the message new")
	}
	shot(t, ctx, "pv-01-conversation-new-york")

	// The browser's own zone, where script runs.
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"}); err != nil {
		t.Fatal(err)
	}
	scripts(true)
	navigate(t, ctx, conv)
	step(t, ctx, "time.js", chromedp.WaitVisible(chromedp.CSS(`time[data-tz="Asia/Tokyo"]`)))
	// Intl names Tokyo's zone "GMT+9" in English.
	firstTime("browser in Tokyo", "Asia/Tokyo", "Mon 2 Jan 2006, 15:04 GMT+9")
	shot(t, ctx, "pv-02-conversation-tokyo")

	// A follow-up in the same conversation: unread in the inbox, with
	// the sender's name and its subject; new on the page, the first not.
	id := conv[strings.LastIndex(conv, "/")+1:]
	mail("12125550123+"+id+"@secure.text", "From: Dr Ada Jones <dr.who@clinic.example>\r\nSubject: Follow-up booked\r\n\r\nSee you on Monday.\r\n")
	nextLink()
	navigate(t, ctx, base+"/inbox")
	if got := eval(`(() => { const e = document.querySelector('.inbox li'); return e.className + '|' + e.textContent.replace(/\s+/g, ' ') })()`); !strings.HasPrefix(got, "unread|") ||
		!strings.Contains(got, "Unread") || !strings.Contains(got, "Dr Ada Jones") || !strings.Contains(got, "Follow-up booked") {
		t.Errorf("inbox entry: %q", got)
	}
	shot(t, ctx, "pv-03-inbox-unread")
	navigate(t, ctx, conv)
	if got := eval(`[...document.querySelectorAll('.msg.new h2')].map(e => e.textContent).join(',')`); got != "Follow-up booked" {
		t.Errorf("new since the last visit: %q, want the follow-up only", got)
	}
	shot(t, ctx, "pv-04-new-since-last-visit")
	navigate(t, ctx, base+"/inbox")
	if got := eval(`document.querySelector('.inbox li').className`); got != "" {
		t.Errorf("inbox entry after opening: class %q", got)
	}

	// The reply form refuses files over the limit before uploading them.
	navigate(t, ctx, conv)
	big := filepath.Join(t.TempDir(), "scan.jpg")
	if err := os.WriteFile(big, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "too big a file",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('form[data-max]').addEventListener('submit', e => { window.prevented = e.defaultPrevented })`),
		chromedp.SendKeys(chromedp.ID("text"), "Here it is."),
		chromedp.SetUploadFiles(chromedp.ID("files"), []string{big}),
		chromedp.WaitVisible(chromedp.ID("size-error")),
		chromedp.Click(chromedp.CSS("#reply button[type=submit]")))
	if got := eval(`String(window.prevented) + '|' + location.pathname + '|' + document.activeElement.id`); got != "true|"+strings.TrimPrefix(conv, base)+"|size-error" {
		t.Errorf("submitting too much: %q", got)
	}
	shot(t, ctx, "pv-05-reply-too-big")

	// An Alaska number spans two zones: the guess carries its abbreviation.
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{}); err != nil {
		t.Fatal(err)
	}
	mail("9075550100@secure.text", "From: Dr Ada Jones <dr.who@clinic.example>\r\nSubject: Hello Alaska\r\n\r\nHello.\r\n")
	scripts(false)
	setUp(nextLink())
	tz := eval(`document.querySelector('time').dataset.tz`)
	if tz != "America/Adak" && tz != "America/Anchorage" {
		t.Errorf("+1 907 shown in %q", tz)
	}
	firstTime("+1 907", tz, "Mon 2 Jan 2006, 15:04 MST")
	if !regexp.MustCompile(`\d\d:\d\d (HST|HDT|AKST|AKDT)$`).MatchString(eval(`document.querySelector('time').textContent`)) {
		t.Error("+1 907: no zone abbreviation")
	}
	shot(t, ctx, "pv-06-conversation-alaska")
	scripts(true)
}
