package portal

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// secretError is an internal error whose text must reach no client.
const secretError = "database is locked at /var/lib/securetextd/db password=hunter2"

// TestPageErrorID: an internal error on a portal page shows an error id
// of the one shape of every transport (securetextd.IsErrorID), new each
// time, the id the log files the details under; the page holds nothing
// of the error.
func TestPageErrorID(t *testing.T) {
	f := newFixture(t, nil)
	f.st.failLinks = errorString(secretError)
	idRE := regexp.MustCompile(`this code: ([^.<\s]*)\.`)
	var ids []string
	for range 2 {
		w := f.get("/m/" + tokenA)
		body := w.Body.String()
		m := idRE.FindStringSubmatch(body)
		if w.Code != http.StatusInternalServerError || m == nil || !securetextd.IsErrorID(m[1]) {
			t.Fatalf("%d, no error id of the shape in\n%s", w.Code, body)
		}
		mustNotContain(t, "500", body, "hunter2", "/var/lib", "locked")
		if !strings.Contains(f.logs.String(), "error_id="+m[1]) {
			t.Errorf("no log line under error id %s", m[1])
		}
		ids = append(ids, m[1])
	}
	if ids[0] == ids[1] {
		t.Errorf("two failures, one error id %s", ids[0])
	}
}

// TestAPIErrorID: the API's internal error is a JSON problem whose
// error_id has the same shape, new each time, and is the log's.
func TestAPIErrorID(t *testing.T) {
	logs := &syncBuffer{}
	a, err := NewAPI(APIConfig{ParsePhone: securetextd.PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US"}}.Parse},
		nil, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 2 {
		rec := httptest.NewRecorder()
		a.fail(rec, httptest.NewRequest("GET", "/api/v1/messages/1", nil), "message report", errorString(secretError))
		var p problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusInternalServerError {
			t.Fatalf("%d %s (%v)", rec.Code, rec.Body, err)
		}
		if !securetextd.IsErrorID(p.ErrorID) {
			t.Fatalf("error_id %q: not the shape of an error id", p.ErrorID)
		}
		if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "/var/lib") {
			t.Errorf("the problem tells the error: %s", rec.Body)
		}
		if !strings.Contains(logs.String(), "error_id="+p.ErrorID) {
			t.Errorf("no log line under error id %s", p.ErrorID)
		}
		ids = append(ids, p.ErrorID)
	}
	if ids[0] == ids[1] {
		t.Errorf("two failures, one error id %s", ids[0])
	}
}
