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
	"time"

	"github.com/chromedp/chromedp"
)

var replyLinkRE = regexp.MustCompile(`https?://[^/\s]+(/r/[0-9]+)`)

// consoleReadsReply is TestBrowserConsole's reply: the patient, on the
// conversation in their browser, replies with a photo; the email to the
// clinician (mail.reply_mode = "notice", the default) holds none of it,
// only a link; the clinician follows it in the console and reads the reply,
// with its photo shown. axe-core checks the reply's page. It returns the
// reply page's path.
func consoleReadsReply(t *testing.T, ctx, patient context.Context, axe string, relay *testRelay, console string) string {
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
	// The photo is shown, decoded by the browser from the sealed store.
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wait, chromedp.Poll[bool](
		`(() => { const i = document.querySelector("figure.photo img"); return i !== null && i.complete && i.naturalWidth === 64 })()`,
		chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		t.Errorf("the reply's photo is not shown: %v", err)
	}
	shot(t, ctx, "console-11-reply")
	checkA11y(t, ctx, axe, "reply")
	return string(link[1])
}

// consoleAnswers is TestBrowserConsole's answer: on the reply's page the
// clinician sends an empty answer (refused, the reply still shown), then
// an answer with line breaks and a file; the reply's page lists it; the
// patient is texted a fresh link, which opens the same conversation, now
// with their message, their reply and the answer. Then the conversation is
// withdrawn in another tab while the form is open: the late answer gets a
// page that says why, and the reply's page no form. axe-core checks each
// page.
func consoleAnswers(t *testing.T, ctx, patient context.Context, axe string, vonage *fakeVonage, console, portal, replyPath string) {
	t.Helper()
	conversation := strings.Split(location(t, patient), "#")[0] // the patient's, after their reply

	submit(t, ctx, "#answer-form button[type=submit]")
	body := pageText(t, ctx)
	if !strings.Contains(body, "write an answer or add a file") || !strings.Contains(body, "REPLYMARKER7Q") {
		t.Errorf("an empty answer:\n%s", body)
	}
	shot(t, ctx, "console-12-answer-refused")
	checkA11y(t, ctx, axe, "answer refused")

	leaflet := filepath.Join(t.TempDir(), "aftercare.pdf")
	if err := os.WriteFile(leaflet, []byte("%PDF-1.4\n% aftercare\n%%EOF\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "fill the answer",
		chromedp.SendKeys(chromedp.ID("text"), "Keep it dry.\nANSWERMARKER5K: the cream twice a day."),
		chromedp.SetUploadFiles(chromedp.ID("files"), []string{leaflet}))
	submit(t, ctx, "#answer-form button[type=submit]")
	body = pageText(t, ctx)
	for _, want := range []string{"Answered.", "Re: Your results", "Keep it dry.\nANSWERMARKER5K", "aftercare.pdf", "12125550123"} {
		if !strings.Contains(body, want) {
			t.Errorf("the answer's page lacks %q:\n%s", want, body)
		}
	}
	answerPage := strings.Split(location(t, ctx), "?")[0]
	shot(t, ctx, "console-13-answered")
	checkA11y(t, ctx, axe, "answered")

	navigate(t, ctx, console+replyPath)
	if body := pageText(t, ctx); !strings.Contains(body, "Your answer") {
		t.Errorf("the reply's page does not list the answer:\n%s", body)
	}
	shot(t, ctx, "console-14-reply-answered")
	checkA11y(t, ctx, axe, "reply answered")

	// The patient: a fresh link by text, to the same conversation.
	texts := vonage.waitTexts(t, 2, 20*time.Second)
	if len(texts) < 2 {
		t.Fatalf("the patient was not texted about the answer: %d texts", len(texts))
	}
	link := linkRE.FindStringSubmatch(texts[1].Text)
	if link == nil || strings.Contains(texts[1].Text, "ANSWERMARKER5K") {
		t.Fatalf("the answer's text: %q", texts[1].Text)
	}
	navigate(t, patient, portal+"/m/"+link[1])
	if got := strings.Split(location(t, patient), "#")[0]; got != conversation {
		t.Errorf("the answer's link opened %s, want the conversation %s", got, conversation)
	}
	body = pageText(t, patient)
	for _, want := range []string{"blood test", "REPLYMARKER7Q", "ANSWERMARKER5K", "aftercare.pdf"} {
		if !strings.Contains(body, want) {
			t.Errorf("the patient's conversation lacks %q:\n%s", want, body)
		}
	}
	// In order: the message, the reply, then the answer, signed as the
	// message was.
	order, err := chromedp.Run(patient, chromedp.Evaluate[string](`(() => {
		const a = Array.from(document.querySelectorAll("article.msg"));
		return a.map(x => x.classList.contains("mine") ? "R" : "S").join("") + "|" + a[a.length - 1].textContent })()`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(order, "SRS|") || !strings.Contains(order, "ANSWERMARKER5K") || !strings.Contains(order, "Dr Ada Jones") {
		t.Errorf("the patient's conversation, in order (S sender, R reply) and its last message: %s", order)
	}
	shot(t, patient, "console-15-patient-sees-answer")

	// Withdrawn in another tab while the form is open.
	navigate(t, ctx, console+replyPath)
	tab, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	navigate(t, tab, answerPage+"/withdraw")
	submit(t, tab, "main form button[type=submit]")
	if body := pageText(t, tab); !strings.Contains(body, "Withdrawn.") {
		t.Fatalf("withdrawing in the other tab:\n%s", body)
	}
	step(t, ctx, "fill a late answer", chromedp.SendKeys(chromedp.ID("text"), "One more thing."))
	submit(t, ctx, "#answer-form button[type=submit]")
	body = pageText(t, ctx)
	for _, want := range []string{"Your answer was not sent", "was withdrawn", "Compose a new message"} {
		if !strings.Contains(body, want) {
			t.Errorf("the late answer's page lacks %q:\n%s", want, body)
		}
	}
	shot(t, ctx, "console-16-answer-closed")
	checkA11y(t, ctx, axe, "answer closed")
	navigate(t, ctx, console+replyPath)
	body = pageText(t, ctx)
	if !strings.Contains(body, "was withdrawn") || strings.Contains(body, "Send answer") {
		t.Errorf("the withdrawn conversation's reply:\n%s", body)
	}
	shot(t, ctx, "console-17-reply-closed")
	checkA11y(t, ctx, axe, "reply closed")
}
