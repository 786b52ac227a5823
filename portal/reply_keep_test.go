package portal

import (
	"html"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestReplyRefusedKeepsText: whatever refuses a reply — too large, too
// many files, a text too long — the conversation is shown again with the
// reason above the form and what was typed back in the reply box, so that
// the patient does not lose it. (The malware refusals, portal/scan.go,
// already did.)
func TestReplyRefusedKeepsText(t *testing.T) {
	typed := "Dear doctor, the rash is worse since Tuesday & it itches <a lot>."
	many := make([][3]string, maxReplyFiles+1)
	for i := range many {
		many[i] = [3]string{"f" + strconv.Itoa(i) + ".txt", "text/plain", "x"}
	}
	long := strings.Repeat("I am writing a great deal. ", maxReplyText/27+10)
	for _, tc := range []struct {
		name   string
		text   string
		files  [][3]string
		status int
		says   string
		kept   string // what the reply box holds
	}{
		{"too large", typed, [][3]string{{"big.jpg", "image/jpeg", strings.Repeat("x", 2<<20)}}, http.StatusRequestEntityTooLarge, "Your reply is over 1.0 MB", typed},
		{"too many files", typed, many, http.StatusBadRequest, "Send at most 20 files in one reply.", typed},
		{"text too long", long, nil, http.StatusBadRequest, "Your text is too long.", long[:1000]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.MaxReplyBytes = 1 << 20 })
			before := len(f.st.messages(f.convA.ID))
			ctype, form := replyBody(t, tc.text, tc.files...)
			r := httptest.NewRequest("POST", "https://portal.test/c/1/reply", form)
			r.Header.Set("Content-Type", ctype)
			r.AddCookie(f.login(phoneA))
			w := f.do(r)
			body := w.Body.String()
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d\n%s", w.Code, tc.status, body)
			}
			mustContain(t, tc.name, body, tc.says, `<form method="post" action="/c/1/reply"`)
			i := strings.Index(body, `<textarea id="text" name="text"`)
			if i < 0 {
				t.Fatalf("no reply box:\n%s", body)
			}
			box := body[i:]
			box = html.UnescapeString(box[strings.Index(box, ">")+1 : strings.Index(box, "</textarea>")])
			if !strings.HasPrefix(box, tc.kept) {
				t.Errorf("the reply box holds %.80q…, want %.80q…", box, tc.kept)
			}
			if after := len(f.st.messages(f.convA.ID)); after != before {
				t.Errorf("a refused reply was stored")
			}
		})
	}
}
