package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

var replyLinkRE = regexp.MustCompile(`https?://[^/\s]+(/r/[0-9]+)`)

// consoleReadsReply is TestBrowserConsole's reply: the patient, on the
// conversation in their browser, replies with a photo; the email to the
// clinician (mail.reply_mode = "notice", the default) holds none of it,
// only a link; the clinician follows it in the console and reads the reply,
// with its photo offered. axe-core checks the reply's page.
func consoleReadsReply(t *testing.T, ctx, patient context.Context, axe string, relay *testRelay, console string) {
	t.Helper()
	photo := filepath.Join(t.TempDir(), "rash-photo.jpg")
	jpg := testJPEG(t)
	if err := os.WriteFile(photo, jpg, 0o600); err != nil {
		t.Fatal(err)
	}
	step(t, patient, "fill reply",
		chromedp.SendKeys(chromedp.ID("text"), "The rash is spreading, REPLYMARKER7Q."),
		chromedp.SetUploadFiles(chromedp.ID("photo"), []string{photo}))
	submit(t, patient, "#reply button[type=submit]")

	notice := relay.waitFor(t, "the reply's notice", func(m relayedMail) bool { return m.header("Reply-To") != "" })
	raw := notice.Data
	for _, secret := range [][]byte{[]byte("REPLYMARKER7Q"), []byte("rash"), []byte("12125550123@"),
		[]byte(base64.StdEncoding.EncodeToString(jpg[:24]))} {
		if bytes.Contains(raw, secret) {
			t.Errorf("the reply's notice holds %q:\n%s", secret, raw)
		}
	}
	if s := notice.header("In-Reply-To"); s == "" || !strings.Contains(notice.header("Reply-To"), "12125550123+") {
		t.Errorf("the notice is not threaded: In-Reply-To %q, Reply-To %q", s, notice.header("Reply-To"))
	}
	link := replyLinkRE.FindSubmatch(raw)
	if link == nil {
		t.Fatalf("no console link in the notice:\n%s", raw)
	}

	navigate(t, ctx, console+string(link[1]))
	body := pageText(t, ctx)
	for _, want := range []string{"REPLYMARKER7Q", "rash-photo.jpg", "12125550123"} {
		if !strings.Contains(body, want) {
			t.Errorf("the reply's page lacks %q:\n%s", want, body)
		}
	}
	shot(t, ctx, "console-11-reply")
	checkA11y(t, ctx, axe, "reply")
}
