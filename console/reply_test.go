package console

import (
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestReplies: a patient's reply opens in the console, for the sender of
// its conversation: listed on the message's page, its text on its own page
// and its photo as a download, each read audited. To another sender it is
// a 404 like a reply that does not exist; an admin sees it.
func TestReplies(t *testing.T) {
	rg := newRig(t, RequireNone)
	ctx := t.Context()
	mine := rg.send(t, drWho, "Blood results", "Your results are normal.", "+12125550123")
	rows, _, err := rg.db.SentPage(ctx, securetextd.SentQuery{MessageID: mine})
	if err != nil || len(rows) != 1 {
		t.Fatalf("sent rows %v %v", rows, err)
	}
	var parts iter.Seq2[securetextd.Part, io.Reader] = func(yield func(securetextd.Part, io.Reader) bool) {
		if !yield(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, strings.NewReader("The rash is spreading.")) {
			return
		}
		yield(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "image/jpeg", Filename: "rash.jpg"}, strings.NewReader("JPEGBYTES"))
	}
	reply, err := rg.db.SaveReply(ctx, rows[0].ConversationID, parts)
	if err != nil {
		t.Fatal(err)
	}
	page := securetextd.ConsoleReplyPath(reply.ID)

	doc := rg.browser(t)
	doc.login(drWho)
	code, _, body := doc.get("/m/" + strconv.FormatInt(mine, 10))
	if code != 200 || !strings.Contains(body, `href="`+page+`"`) || !strings.Contains(body, "1 file") || strings.Contains(body, "rash") {
		t.Errorf("the message page lists the reply, without its content (%d):\n%s", code, body)
	}
	code, _, body = doc.get(page)
	if code != 200 || !strings.Contains(body, "The rash is spreading.") || !strings.Contains(body, "rash.jpg") || !strings.Contains(body, "12125550123") {
		t.Errorf("the reply's page (%d):\n%s", code, body)
	}
	if ev, err := rg.db.LastAudit(ctx, securetextd.AuditReplyRead); err != nil || ev.Actor != drWho || ev.MessageID != reply.ID || ev.Detail != "" {
		t.Errorf("reply read audited as %+v, %v", ev, err)
	}
	code, _, body = doc.get(page + "/p/1")
	if code != 200 || body != "JPEGBYTES" {
		t.Errorf("the reply's photo: %d %q", code, body)
	}
	if ev, err := rg.db.LastAudit(ctx, securetextd.AuditReplyRead); err != nil || ev.Detail != "part 1" {
		t.Errorf("photo download audited as %+v, %v", ev, err)
	}

	// Another sender: 404, nothing of it shown, as for no reply at all,
	// the sender's own message, or a file past the end.
	nurseB := rg.browser(t)
	nurseB.login(nurse)
	for _, p := range []string{page, page + "/p/1", page + "/p/0", securetextd.ConsoleReplyPath(mine), securetextd.ConsoleReplyPath(99999)} {
		if code, _, body := nurseB.get(p); code != 404 || strings.Contains(body, "rash") || strings.Contains(body, "JPEG") {
			t.Errorf("GET %s as another sender: %d\n%s", p, code, body)
		}
	}
	if code, _, _ := doc.get(securetextd.ConsoleReplyPath(mine)); code != 404 {
		t.Errorf("a sent message as a reply: %d, want 404", code)
	}
	if code, _, _ := doc.get(page + "/p/2"); code != 404 {
		t.Errorf("a part past the end: %d, want 404", code)
	}
	boss := rg.browser(t)
	boss.login(admin)
	if code, _, body := boss.get(page); code != 200 || !strings.Contains(body, "The rash is spreading.") {
		t.Errorf("admin opening the reply: %d", code)
	}
	// Signed out: to the sign-in page.
	doc.post("/logout", nil)
	if _, path, _ := doc.get(page); path != "/login" {
		t.Errorf("signed out, the reply went to %s", path)
	}
}

// TestReplyPhoto: a photo of a reply is shown on the reply's page, served
// as the image it is (a raster type, inline, sandboxed) and audited as
// read inline; ?inline=1 on anything else is still a download.
func TestReplyPhoto(t *testing.T) {
	rg := newRig(t, RequireNone)
	mine := rg.send(t, drWho, "Blood results", "Your results are normal.", "+12125550123")
	reply, _ := rg.replyTo(t, mine)
	page := securetextd.ConsoleReplyPath(reply)
	doc := rg.browser(t)
	doc.login(drWho)
	if _, _, body := doc.get(page); !strings.Contains(body, `<img src="`+page+`/p/1?inline=1" alt="Photo from the reply: rash.jpg">`) {
		t.Errorf("the reply's page does not show the photo:\n%s", body)
	}
	head := func(path string) http.Header {
		t.Helper()
		res, err := doc.c.Get(doc.base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		return res.Header
	}
	h := head(page + "/p/1?inline=1")
	if h.Get("Content-Type") != "image/jpeg" || h.Get("Content-Disposition") != "inline" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("the photo is served with %v", h)
	}
	if ev, err := rg.db.LastAudit(t.Context(), securetextd.AuditReplyRead); err != nil || ev.Detail != "part 1 inline" {
		t.Errorf("the photo shown audited as %+v, %v", ev, err)
	}
	h = head(page + "/p/0?inline=1")
	if h.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") {
		t.Errorf("the text part asked inline is served with %v", h)
	}
}
