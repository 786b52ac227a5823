package console

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/storetest"
)

// TestPageErrorID: an internal error on a console page shows an error id
// of the one shape of every transport (securetextd.IsErrorID), new each
// time, the id the log files the details under; the page holds nothing
// of the error.
func TestPageErrorID(t *testing.T) {
	var logs bytes.Buffer // written and read by this goroutine only
	rules := securetextd.PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US"}}
	s, err := New(Config{Org: "North Clinic", ParsePhone: rules.Parse, Location: time.UTC, MaxMessageBytes: 1 << 20},
		storetest.Open(t, storetest.Keys(t)), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "database is locked at /var/lib/securetextd/db password=hunter2"
	idRE := regexp.MustCompile(`this code: ([^.<\s]*)\.`)
	var ids []string
	for range 2 {
		rec := httptest.NewRecorder()
		s.fail(rec, httptest.NewRequest("GET", "/sent", nil), "sent", errors.New(secret))
		body := rec.Body.String()
		m := idRE.FindStringSubmatch(body)
		if rec.Code != http.StatusInternalServerError || m == nil || !securetextd.IsErrorID(m[1]) {
			t.Fatalf("%d, no error id of the shape in\n%s", rec.Code, body)
		}
		for _, bad := range []string{"hunter2", "/var/lib", "locked"} {
			if strings.Contains(body, bad) {
				t.Errorf("the page tells the error (%q)", bad)
			}
		}
		if !strings.Contains(logs.String(), "error_id="+m[1]) {
			t.Errorf("no log line under error id %s:\n%s", m[1], logs.String())
		}
		ids = append(ids, m[1])
	}
	if ids[0] == ids[1] {
		t.Errorf("two failures, one error id %s", ids[0])
	}
}
