package console

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd/clamd"
	"github.com/securetextd/securetextd/internal/clamdtest"
)

// TestAnswerScanned: with clamd set, an answer's files are scanned as a
// mailed answer's are, as they stream into the draft: a file with malware
// is refused, named, the answer's text kept on the page, and nothing is
// stored; a clean one goes.
func TestAnswerScanned(t *testing.T) {
	rg := newRig(t, RequireNone)
	mine := rg.send(t, drWho, "Blood results", "Your results are normal.", "+12125550123")
	reply, _ := rg.replyTo(t, mine)
	c, err := clamd.New(clamdtest.Shared(t).Addr(), 10*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rg.db.Scanner = c
	doc := rg.browser(t)
	doc.login(drWho)
	f := answerPost{text: "See the form.", fileName: "eicar.com", file: clamdtest.EICAR()}
	code, _, body := doc.answer(reply, f)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, clamdtest.EICARName) || !strings.Contains(body, "See the form.") {
		t.Errorf("an answer with malware: %d\n%s", code, body)
	}
	if n, _ := rg.db.CountMessages(t.Context()); n != 2 {
		t.Fatalf("%d messages stored, want the message and its reply only", n)
	}
	f.fileName, f.file = "form.pdf", pdf
	if code, path, body := doc.answer(reply, f); code != 200 || !strings.Contains(path, "done=answered") {
		t.Errorf("a clean file: %d %s\n%s", code, path, body)
	}
}
