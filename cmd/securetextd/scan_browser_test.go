package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/securetextd/securetextd/internal/clamdtest"
)

// TestBrowserReplyMalware: in headless Chromium at phone size, a patient
// types a reply and picks a photo and the EICAR file. The page that comes
// back names the refused file, and the reply box still holds the text;
// the patient sends it again with the photo alone, and it goes. The pages
// are left in artifacts/browser.
func TestBrowserReplyMalware(t *testing.T) {
	ctx := newBrowser(t)
	g := startScanGateway(t, clamdtest.Shared(t).Addr())
	if err := g.mail(t, "results.pdf", []byte("%PDF-1.4 clean results")); err != nil {
		t.Fatal(err)
	}
	link := linkRE.FindStringSubmatch(g.vonage.waitTexts(t, 1, 10*time.Second)[0].Text)[1]
	base := "http://" + g.m.PortalAddr
	navigate(t, ctx, base+"/m/"+link)
	step(t, ctx, "fill setup",
		chromedp.SendKeys(chromedp.ID("password"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("confirm"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("email"), "patient@home.example"))
	submit(t, ctx, "main form button[type=submit]")

	dir := t.TempDir()
	photo, eicar := filepath.Join(dir, "rash.jpg"), filepath.Join(dir, "eicar.com")
	if err := os.WriteFile(photo, testJPEG(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(eicar, clamdtest.EICAR(), 0o600); err != nil {
		t.Fatal(err)
	}
	const typed = "Here is the rash, and the form you asked for."
	step(t, ctx, "fill reply",
		chromedp.SendKeys(chromedp.ID("text"), typed),
		chromedp.SetUploadFiles(chromedp.ID("files"), []string{photo, eicar}))
	submit(t, ctx, "#reply button[type=submit]")

	body := pageText(t, ctx)
	for _, want := range []string{`The file "eicar.com" contains malware (` + clamdtest.EICARName + `).`, "Nothing was sent"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	box, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("text").value`))
	if err != nil || box != typed {
		t.Errorf("reply box holds %q (%v), want the typed text", box, err)
	}
	shot(t, ctx, "scan-01-reply-refused")
	if n := g.messages(t); n != 1 {
		t.Fatalf("%d messages after the refused reply, want 1", n)
	}

	step(t, ctx, "send again", chromedp.SetUploadFiles(chromedp.ID("files"), []string{photo}))
	submit(t, ctx, "#reply button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, typed) || strings.Contains(body, "malware") {
		t.Errorf("reply not shown: %s", body)
	}
	shot(t, ctx, "scan-02-reply-sent")
	if n := g.messages(t); n != 2 {
		t.Fatalf("%d messages after the reply, want 2", n)
	}
}
