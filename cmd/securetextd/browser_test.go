package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/need"
	"github.com/securetextd/securetextd/notify"
)

// artifactDir is where the browser tests leave their screenshots:
// $SECURETEXTD_ARTIFACTS, or artifacts/browser at the top of the repository.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("SECURETEXTD_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts", "browser")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts headless Chromium as a phone-sized window. When
// Chromium is missing it fails (make test installs it), or skips under
// go test -short.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := need.Program(t, "chromium", "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// step runs browser actions with a deadline, failing the test on error.
// Each action is tried again when its node went stale under it (a page
// replaced between the query and the action: "No node with given id").
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, a := range actions {
		var err error
		for try := 0; try < 5; try++ {
			if err = chromedp.Do(c, a); err == nil || !strings.Contains(err.Error(), "No node") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// submit clicks a button and waits for the page it loads.
func submit(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
		t.Fatalf("submit %s: %v", sel, err)
	}
}

func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	step(t, ctx, "navigate "+url, chromedp.Navigate(url))
}

func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var s string
	var err error
	for try := 0; try < 5; try++ {
		// The body of a page still loading can be replaced under the query.
		if s, err = chromedp.Run(c, chromedp.Text(chromedp.CSS("body"))); err == nil || !strings.Contains(err.Error(), "No node") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// shot saves a screenshot of the whole page as an artifact.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artifactDir(t), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func testPNG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 120, 60))
	for x := range 120 {
		for y := range 60 {
			img.Set(x, y, color.RGBA{R: uint8(x * 2), G: 120, B: uint8(y * 4), A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func testJPEG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := range 64 {
		for y := range 48 {
			img.Set(x, y, color.RGBA{R: 200, G: uint8(x * 4), B: uint8(y * 5), A: 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// b64 wraps base64 at 76 characters, as mail programs do.
func b64(data []byte) string {
	var out strings.Builder
	enc := []byte(base64.StdEncoding.EncodeToString(data))
	for len(enc) > 76 {
		out.Write(enc[:76])
		out.WriteString("\r\n")
		enc = enc[76:]
	}
	out.Write(enc)
	out.WriteString("\r\n")
	return out.String()
}

// clinicalEmail is a message with an HTML body, an inline image and a PDF.
func clinicalEmail(t *testing.T, msgID string, logo, pdf []byte) string {
	return "From: Dr Ada Jones <dr.who@clinic.example>\r\n" +
		"To: 2125550123@secure.text\r\n" +
		"Subject: Your results\r\n" +
		"Message-ID: <" + msgID + ">\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=outer\r\n\r\n" +
		"--outer\r\n" +
		"Content-Type: multipart/related; boundary=rel\r\n\r\n" +
		"--rel\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n\r\n" +
		"<p>Hello,</p><p>Your <b>blood test</b> results are normal. <img src=\"cid:chart@clinic\" alt=\"chart\"></p>" +
		"<p><a href=\"https://clinic.example/care\">Care notes</a></p>\r\n" +
		"--rel\r\n" +
		"Content-Type: image/png\r\nContent-ID: <chart@clinic>\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		b64(logo) +
		"--rel--\r\n" +
		"--outer\r\n" +
		"Content-Type: application/pdf; name=\"results.pdf\"\r\n" +
		"Content-Disposition: attachment; filename=\"results.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		b64(pdf) +
		"--outer--\r\n"
}

var resetLinkRE = regexp.MustCompile(`/reset/([A-Za-z0-9_-]{20,})`)

// confirmLinkRE finds the token of a confirmation link in an email.
var confirmLinkRE = regexp.MustCompile(`/confirm/([A-Za-z0-9_-]{20,})`)

// TestBrowserRecipientFlow drives headless Chromium through what a
// patient does, from the first link to a password reset, against the real
// gateway with a go-smtp relay for outgoing mail and a Vonage-speaking
// server for texts. Each step leaves a screenshot in artifacts/browser.
func TestBrowserRecipientFlow(t *testing.T) {
	ctx := newBrowser(t)
	vonage := newFakeVonage(t)
	relay := newTestRelay(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, vonage.URL)
	cfg.Mail.Relay = relay.addr
	// This flow checks the reply's words and photo reaching the clinic's
	// mailbox; the default notice is console_reply_test.go's.
	cfg.Mail.ReplyMode = notify.ReplyContent
	cfg.SMS.Org = "North Clinic"
	cfg.Portal.IdleTimeout = 3 * time.Second // short, to see it expire
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), MailTLS: relay.client}
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
	pdf := []byte("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n" + strings.Repeat("% results\n", 50))

	if err := send(t, m.SubmissionAddr, tc, clinician, "dr.who@clinic.example", []string{"2125550123@secure.text"},
		clinicalEmail(t, "results-1@clinic.example", testPNG(t), pdf)); err != nil {
		t.Fatal(err)
	}
	link := linkRE.FindStringSubmatch(vonage.waitTexts(t, 1, 10*time.Second)[0].Text)[1]

	// First visit: the link says what to do; set a password.
	navigate(t, ctx, base+"/m/"+link)
	if body := pageText(t, ctx); !strings.Contains(body, "North Clinic") || !strings.Contains(body, "choose a password") || strings.Contains(body, "blood test") {
		t.Fatalf("link page: %s", body)
	}
	shot(t, ctx, "01-first-visit")
	step(t, ctx, "fill setup",
		chromedp.SendKeys(chromedp.ID("password"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("confirm"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("email"), "patient@home.example"))
	submit(t, ctx, "main form button[type=submit]")

	// The conversation: HTML body, inline image, PDF listed.
	body := pageText(t, ctx)
	for _, want := range []string{"Dr Ada Jones", "dr.who@clinic.example", "Your results", "blood test", "results.pdf"} {
		if !strings.Contains(body, want) {
			t.Errorf("conversation page lacks %q:\n%s", want, body)
		}
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(() => { const i = document.querySelector('.body img'); return i && i.complete ? i.naturalWidth : 0 })()`))
	if err != nil || width != 120 {
		t.Errorf("inline image width = %d (%v), want 120", width, err)
	}
	shot(t, ctx, "02-conversation")

	// Download the PDF as a real download.
	downloads := t.TempDir()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	step(t, ctx, "download",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior:      browser.SetDownloadBehaviorBehaviorAllowAndName,
				DownloadPath:  downloads,
				EventsEnabled: ptr(true),
			})
			return err
		}),
		chromedp.Click(chromedp.CSS("a.file")))
	var got []byte
	deadline := time.After(15 * time.Second)
	func() {
		for ev, err := range progress {
			if err != nil {
				t.Fatal(err)
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				got, _ = os.ReadFile(filepath.Join(downloads, ev.GUID))
				return
			}
			select {
			case <-deadline:
				t.Fatal("download did not complete")
			default:
			}
		}
	}()
	if !bytes.Equal(got, pdf) {
		t.Errorf("downloaded %d bytes, want the %d-byte PDF", len(got), len(pdf))
	}

	// Reply with text and a photo.
	photo := filepath.Join(t.TempDir(), "photo.jpg")
	jpg := testJPEG(t)
	if err := os.WriteFile(photo, jpg, 0o600); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "fill reply",
		chromedp.SendKeys(chromedp.ID("text"), "Thank you, doctor. Here is the rash."),
		chromedp.SetUploadFiles(chromedp.ID("photo"), []string{photo}))
	submit(t, ctx, "#reply button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "Here is the rash") {
		t.Errorf("reply not shown: %s", body)
	}
	shot(t, ctx, "03-replied")

	// The sender was told that the text went out, threaded under the
	// message, with a link that would withdraw it.
	notice := relay.waitFor(t, "a delivery notice", func(m relayedMail) bool {
		return strings.HasPrefix(m.header("Subject"), "Texted: ")
	})
	if notice.To[0] != "dr.who@clinic.example" || notice.header("In-Reply-To") != "<results-1@clinic.example>" ||
		!strings.Contains(string(notice.Data), "/revoke/") {
		t.Errorf("delivery notice to %v, In-Reply-To %q:\n%s", notice.To, notice.header("In-Reply-To"), notice.Data)
	}

	// The reply reaches the relay, threaded, with the photo.
	r := relay.waitFor(t, "a reply", func(m relayedMail) bool { return m.header("Reply-To") != "" })
	if !r.TLS || len(r.To) != 1 || r.To[0] != "dr.who@clinic.example" {
		t.Errorf("relayed envelope: tls=%v to=%v", r.TLS, r.To)
	}
	if s := r.header("Subject"); s != "Re: Your results" {
		t.Errorf("Subject = %q", s)
	}
	if s := r.header("In-Reply-To"); s != "<results-1@clinic.example>" {
		t.Errorf("In-Reply-To = %q", s)
	}
	if s := r.header("References"); !strings.Contains(s, "<results-1@clinic.example>") {
		t.Errorf("References = %q", s)
	}
	if s := r.header("Reply-To"); !strings.Contains(s, "12125550123+") || !strings.HasSuffix(strings.Trim(s, "<>"), "@secure.text") {
		t.Errorf("Reply-To = %q", s)
	}
	text, photoBytes, photoName := readReply(t, r.Data)
	if !strings.Contains(text, "Here is the rash") || !bytes.Equal(photoBytes, jpg) || photoName != "photo.jpg" {
		t.Errorf("reply mail: text %q, photo %q %d bytes", text, photoName, len(photoBytes))
	}

	// A second link within the idle time opens without a password.
	if err := send(t, m.SubmissionAddr, tc, clinician, "dr.who@clinic.example", []string{"2125550123@secure.text"},
		"From: dr.who@clinic.example\r\nSubject: Follow-up\r\n\r\nPlease book a follow-up.\r\n"); err != nil {
		t.Fatal(err)
	}
	link2 := linkRE.FindStringSubmatch(vonage.waitTexts(t, 2, 10*time.Second)[1].Text)[1]
	navigate(t, ctx, base+"/m/"+link2)
	if loc := location(t, ctx); !strings.Contains(loc, "/c/") || !strings.Contains(pageText(t, ctx), "book a follow-up") {
		t.Fatalf("second link went to %s, want the conversation", loc)
	}
	shot(t, ctx, "04-second-link")

	// After the idle time it asks again.
	time.Sleep(cfg.Portal.IdleTimeout + time.Second)
	navigate(t, ctx, base+"/m/"+link2)
	if body := pageText(t, ctx); !strings.Contains(body, "Enter your password") {
		t.Fatalf("after the idle time: %s", body)
	}
	shot(t, ctx, "05-password-again")
	step(t, ctx, "login", chromedp.SendKeys(chromedp.ID("password"), "maple syrup on pancakes"))
	submit(t, ctx, "main form button[type=submit]")
	if !strings.Contains(pageText(t, ctx), "book a follow-up") {
		t.Fatal("login did not open the conversation")
	}

	// Log out works.
	submit(t, ctx, "nav form button")
	navigate(t, ctx, base+"/m/"+link2)
	if body := pageText(t, ctx); !strings.Contains(body, "Enter your password") {
		t.Fatalf("after logout: %s", body)
	}

	// Five wrong passwords lock out, even the right one afterwards.
	for i := range 5 {
		step(t, ctx, "wrong password", chromedp.SendKeys(chromedp.ID("password"), fmt.Sprintf("wrong guess %d!", i)))
		submit(t, ctx, "main form button[type=submit]")
	}
	if body := pageText(t, ctx); !strings.Contains(body, "Try again in 15 minutes.") {
		t.Fatalf("after five wrong passwords: %s", body)
	}
	shot(t, ctx, "06-locked")
	// The link itself says so, before anything is typed, in minutes.
	navigate(t, ctx, base+"/m/"+link2)
	if body := pageText(t, ctx); !strings.Contains(body, "signing in is paused. Try again in 15 minutes.") || strings.Contains(body, "UTC") {
		t.Fatalf("link page while locked: %s", body)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('input[type=password]').length`)); err != nil || n != 0 {
		t.Errorf("link page while locked has %d password fields (%v)", n, err)
	}
	shot(t, ctx, "06b-link-while-locked")
	// The address given at the first visit is not confirmed yet: no reset
	// is offered; the page says to ask the sender.
	if body := pageText(t, ctx); !strings.Contains(body, "No confirmed email address is on file") || strings.Contains(body, "Forgot your password?\n") {
		t.Fatalf("link page before the address is confirmed: %s", body)
	}

	// The address was sent a confirmation link by the real mail drain;
	// opening it shows a button, and the button confirms.
	confirm := relay.waitFor(t, "a confirmation link", func(m relayedMail) bool { return confirmLinkRE.Match(m.Data) })
	if confirm.To[0] != "patient@home.example" || !strings.Contains(confirm.header("Subject"), "Confirm your email address") {
		t.Fatalf("confirmation mail to %v: %s", confirm.To, confirm.Data)
	}
	navigate(t, ctx, base+"/confirm/"+string(confirmLinkRE.FindSubmatch(confirm.Data)[1]))
	if body := pageText(t, ctx); !strings.Contains(body, "patient@home.example") {
		t.Fatalf("confirmation page: %s", body)
	}
	shot(t, ctx, "06c-confirm-address")
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "Your email address is confirmed") {
		t.Fatalf("after confirming: %s", body)
	}
	shot(t, ctx, "06d-address-confirmed")
	navigate(t, ctx, base+"/m/"+link2)
	if body := pageText(t, ctx); !strings.Contains(body, "Forgot your password?") || strings.Contains(body, "No confirmed email address") {
		t.Fatalf("link page once the address is confirmed: %s", body)
	}

	// A reset link sets a new password.
	navigate(t, ctx, base+"/reset")
	step(t, ctx, "reset request", chromedp.SendKeys(chromedp.ID("phone"), "212-555-0123"))
	submit(t, ctx, "main form button[type=submit]")
	shot(t, ctx, "07-reset-requested")
	reset := relay.waitFor(t, "a reset link", func(m relayedMail) bool { return resetLinkRE.Match(m.Data) })
	if reset.To[0] != "patient@home.example" {
		t.Fatalf("reset mail to %v", reset.To)
	}
	tok := resetLinkRE.FindStringSubmatch(string(reset.Data))
	if tok == nil {
		t.Fatalf("no reset link in %s", reset.Data)
	}
	navigate(t, ctx, base+"/reset/"+tok[1])
	step(t, ctx, "new password",
		chromedp.SendKeys(chromedp.ID("password"), "a brand new long passphrase"),
		chromedp.SendKeys(chromedp.ID("confirm"), "a brand new long passphrase"))
	submit(t, ctx, "main form button[type=submit]")
	// The follow-up joined the first conversation (conversations.continue
	// = "per-sender"): one entry, its latest message the follow-up.
	if body := pageText(t, ctx); !strings.Contains(body, "Follow-up") || strings.Contains(body, "You replied") {
		t.Fatalf("inbox after reset: %s", body)
	}
	shot(t, ctx, "08-inbox-after-reset")
	if err := m.db.AuthenticateRecipient(t.Context(), securetextd.Phone("+12125550123"), "a brand new long passphrase"); err != nil {
		t.Errorf("new password does not work: %v", err)
	}
	// The link is single use.
	navigate(t, ctx, base+"/reset/"+tok[1])
	if body := pageText(t, ctx); strings.Contains(body, "Set password") {
		t.Error("reset link worked twice")
	}
	// The reset ended the lockout: log out, and the new password opens
	// the link at once.
	navigate(t, ctx, base+"/inbox")
	submit(t, ctx, "nav form button")
	navigate(t, ctx, base+"/m/"+link2)
	step(t, ctx, "login after reset", chromedp.SendKeys(chromedp.ID("password"), "a brand new long passphrase"))
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "book a follow-up") {
		t.Fatalf("login with the new password after a lockout and a reset: %s", body)
	}
}

// readReply returns the text, and the first attachment's bytes and name,
// of a relayed reply.
func readReply(t *testing.T, data []byte) (string, []byte, string) {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var text string
	var att []byte
	var name string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			text += string(b)
		case *mail.AttachmentHeader:
			if att == nil {
				att = b
				name, _ = h.Filename()
			}
		}
	}
	return text, att, name
}

func ptr[T any](v T) *T { return &v }
