package console

import (
	"bytes"
	"io"
	"iter"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// answerPost is an answer as a browser sends it: the text, then a file
// (none when fileName is ""), then any extra fields.
type answerPost struct {
	text     string
	fileName string
	file     []byte
	extra    [][2]string
}

// answer posts f to reply id's answer form and returns the status, the
// final path and the page.
func (b *browser) answer(id int64, f answerPost, header ...string) (int, string, string) {
	b.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("text", f.text)
	w, err := mw.CreateFormFile("files", f.fileName)
	if err != nil {
		b.t.Fatal(err)
	}
	w.Write(f.file)
	for _, kv := range f.extra {
		mw.WriteField(kv[0], kv[1])
	}
	mw.Close()
	req, err := http.NewRequest("POST", b.base+securetextd.ConsoleReplyPath(id)+"/answer", &buf)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Request.URL.Path + "?" + res.Request.URL.RawQuery, string(page)
}

// replyTo has the patient of mine's conversation reply with a text and a
// photo, as the portal does, and returns the reply's id and its
// conversation.
func (rg *rig) replyTo(t *testing.T, mine int64) (int64, int64) {
	t.Helper()
	rows, _, err := rg.db.SentPage(t.Context(), securetextd.SentQuery{MessageID: mine})
	if err != nil || len(rows) != 1 {
		t.Fatalf("sent rows %v %v", rows, err)
	}
	var parts iter.Seq2[securetextd.Part, io.Reader] = func(yield func(securetextd.Part, io.Reader) bool) {
		if !yield(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, strings.NewReader("The rash is spreading.")) {
			return
		}
		yield(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "image/jpeg", Filename: "rash.jpg"}, strings.NewReader("JPEGBYTES"))
	}
	reply, err := rg.db.SaveReply(t.Context(), rows[0].ConversationID, parts)
	if err != nil {
		t.Fatal(err)
	}
	return reply.ID, rows[0].ConversationID
}

// TestAnswer: the clinician answers a reply from its page, with text
// (line breaks kept) and a file; the answer joins the reply's
// conversation, as a mailed answer does: stored sealed after the reply,
// "Re:" the subject and threaded, the conversation renewed, a fresh link
// texted to the patient, accepted in the trail as the clinician's; the
// reply's page then lists it.
func TestAnswer(t *testing.T) {
	rg := newRig(t, RequireNone)
	ctx := t.Context()
	mine := rg.send(t, drWho, "Blood results", "Your results are normal.", "+12125550123")
	reply, conv := rg.replyTo(t, mine)

	doc := rg.browser(t)
	doc.login(drWho)
	code, _, body := doc.get(securetextd.ConsoleReplyPath(reply))
	if code != 200 || !strings.Contains(body, `action="/r/`+strconv.FormatInt(reply, 10)+`/answer"`) || !strings.Contains(body, `enctype="multipart/form-data"`) {
		t.Fatalf("the reply's page has no answer form (%d):\n%s", code, body)
	}
	code, path, body := doc.answer(reply, answerPost{text: "Dear patient,\nput the cream on twice a day.\n\nDr Who", fileName: "advice.pdf", file: pdf})
	if code != 200 || !strings.HasPrefix(path, "/m/") || !strings.Contains(path, "done=answered") {
		t.Fatalf("answer: %d %s\n%s", code, path, body)
	}
	id := messageIDOf(t, path[:strings.Index(path, "?")])
	for _, want := range []string{"Answered.", "Re: Blood results", "put the cream on twice a day.\n\nDr Who", "advice.pdf", "12125550123"} {
		if !strings.Contains(body, want) {
			t.Errorf("the answer's page lacks %q:\n%s", want, body)
		}
	}
	msgs, err := rg.db.ConversationMessages(ctx, conv)
	if err != nil || len(msgs) != 3 || msgs[0].ID != mine || msgs[1].ID != reply || msgs[2].ID != id {
		t.Fatalf("the conversation holds %v (%v), want message, reply, answer", msgs, err)
	}
	m := msgs[2]
	if m.Sender != drWho || m.Direction != securetextd.Inbound || m.Auth != "console" || m.Subject != "Re: Blood results" ||
		len(m.Parts) != 2 || m.Parts[1].Filename != "advice.pdf" || len(m.References) != 2 || m.References[0] != "Blood results@clinic.example" {
		t.Errorf("the answer is stored as %+v", m)
	}
	rows, _, err := rg.db.SentPage(ctx, securetextd.SentQuery{MessageID: id, Sender: drWho})
	if err != nil || len(rows) != 1 || rows[0].ConversationID != conv || rows[0].Phone != "+12125550123" || rows[0].State != securetextd.TextQueued {
		t.Errorf("the answer's text to the patient: %+v %v", rows, err)
	}
	if ev, err := rg.db.LastAudit(ctx, securetextd.AuditMessageAccepted); err != nil || ev.MessageID != id || ev.Actor != drWho || !strings.Contains(ev.Detail, "auth=console") {
		t.Errorf("acceptance audited as %+v, %v", ev, err)
	}
	if ev, err := rg.db.LastAudit(ctx, securetextd.AuditTextQueued); err != nil || ev.MessageID != id || ev.ConversationID != conv {
		t.Errorf("text queued as %+v, %v", ev, err)
	}
	_, _, body = doc.get(securetextd.ConsoleReplyPath(reply))
	if !strings.Contains(body, `href="/m/`+strconv.FormatInt(id, 10)+`">Your answer</a>`) {
		t.Errorf("the reply's page does not list the answer:\n%s", body)
	}
}

// TestAnswerRefused: through the HTTP layer, another sender cannot answer
// (404, as for a reply that does not exist), nor can an admin in the
// sender's name (403, no form shown); an empty answer, phone numbers, a
// form that is not multipart or is too large, and a cross-site post are
// refused; a withdrawn or deleted conversation takes no answer, with a
// page that says so. Nothing of any of them is stored.
func TestAnswerRefused(t *testing.T) {
	rg := newRig(t, RequireNone)
	ctx := t.Context()
	mine := rg.send(t, drWho, "Blood results", "Your results are normal.", "+12125550123")
	reply, conv := rg.replyTo(t, mine)
	ok := answerPost{text: "ANSWER-MARKER", fileName: "advice.pdf", file: pdf}
	stored := func(t *testing.T) {
		t.Helper()
		if n, err := rg.db.CountMessages(ctx); err != nil || n != 2 {
			t.Fatalf("%d messages stored (%v), want the message and its reply only", n, err)
		}
	}

	nurseB := rg.browser(t)
	nurseB.login(nurse)
	if code, _, body := nurseB.answer(reply, ok); code != http.StatusNotFound || strings.Contains(body, "rash") {
		t.Errorf("another sender's answer: %d, want 404\n%s", code, body)
	}
	boss := rg.browser(t)
	boss.login(admin)
	if _, _, body := boss.get(securetextd.ConsoleReplyPath(reply)); strings.Contains(body, "/answer\"") || !strings.Contains(body, "Only "+drWho) {
		t.Errorf("an admin is offered the sender's answer form:\n%s", body)
	}
	if code, _, body := boss.answer(reply, ok); code != http.StatusForbidden || !strings.Contains(body, "Only the sender can answer") {
		t.Errorf("an admin's answer: %d, want 403\n%s", code, body)
	}
	stored(t)

	doc := rg.browser(t)
	doc.login(drWho)
	if code, _, body := doc.answer(reply, answerPost{text: " \n ", fileName: ""}); code != http.StatusUnprocessableEntity || !strings.Contains(body, "write an answer or add a file") || !strings.Contains(body, "The rash is spreading.") {
		t.Errorf("an empty answer: %d\n%s", code, body)
	}
	withTo := ok
	withTo.extra = [][2]string{{"to", "+12125550188"}}
	if code, _, body := doc.answer(reply, withTo); code != http.StatusUnprocessableEntity || !strings.Contains(body, "takes no phone numbers") || !strings.Contains(body, "ANSWER-MARKER") {
		t.Errorf("an answer naming a phone: %d\n%s", code, body)
	}
	big := ok
	big.file = bytes.Repeat([]byte("x"), int(rg.srv.cfg.MaxMessageBytes)+formFraming)
	if code, _, _ := doc.answer(reply, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("over max_message_bytes: %d", code)
	}
	if code, _, _ := doc.post(securetextd.ConsoleReplyPath(reply)+"/answer", map[string][]string{"text": {"hi"}}); code != http.StatusUnsupportedMediaType {
		t.Errorf("a form that is not multipart: %d", code)
	}
	if code, _, _ := doc.answer(reply, ok, "Sec-Fetch-Site", "cross-site"); code != http.StatusForbidden {
		t.Errorf("a cross-site answer: %d, want 403", code)
	}
	stored(t)

	// Withdrawn: no form, and a post is refused with a page that says
	// why and offers compose. Deleted: the same.
	if err := rg.db.RevokeConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	if _, _, body := doc.get(securetextd.ConsoleReplyPath(reply)); strings.Contains(body, "/answer\"") || !strings.Contains(body, "was withdrawn") {
		t.Errorf("a withdrawn conversation's reply offers the form:\n%s", body)
	}
	if code, _, body := doc.answer(reply, ok); code != http.StatusGone || !strings.Contains(body, "was withdrawn") || !strings.Contains(body, `href="/compose"`) {
		t.Errorf("an answer to a withdrawn conversation: %d\n%s", code, body)
	}
	stored(t)
	if _, err := rg.db.DeleteConversation(ctx, conv, drWho); err != nil {
		t.Fatal(err)
	}
	if code, _, body := doc.answer(reply, ok); code != http.StatusGone || !strings.Contains(body, "was deleted") {
		t.Errorf("an answer to a deleted conversation: %d\n%s", code, body)
	}
	stored(t)
}
