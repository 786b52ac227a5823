package console

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd/clamd"
	"github.com/securetextd/securetextd/internal/clamdtest"
)

// TestComposeScanned: with clamd set, a composed message's files are
// scanned as SMTP's and the API's are, as they stream into the draft: a
// file with malware is refused, named, and nothing is stored; a clean one
// goes.
func TestComposeScanned(t *testing.T) {
	rg := newRig(t, RequireNone)
	c, err := clamd.New(clamdtest.Shared(t).Addr(), 10*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rg.db.Scanner = c
	doc := rg.browser(t)
	doc.login(drWho)
	f := composeForm{rows: [][2]string{{"+12125550123", ""}}, subject: "Forms", text: "See the file.", fileName: "eicar.com", file: clamdtest.EICAR()}
	code, _, body := doc.compose(f)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, clamdtest.EICARName) {
		t.Errorf("a file with malware: %d\n%s", code, body)
	}
	if n, _ := rg.db.CountMessages(t.Context()); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	f.fileName, f.file = "results.pdf", pdf
	if code, _, body := doc.compose(f); code != 200 {
		t.Errorf("a clean file: %d\n%s", code, body)
	}
}
