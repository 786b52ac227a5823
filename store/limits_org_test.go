package store

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestDailyOrgLimit: limits.daily_org counts the texts of every sender
// together, on the SMTP path (CommitTargets) and the API's (CommitAPI),
// and CheckLimits asks the same question; the window slides.
func TestDailyOrgLimit(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{DailyOrg: 3})
	ctx := t.Context()
	from := func(sender, subject string, api bool, phones ...securetextd.Phone) error {
		t.Helper()
		d := db.NewDraft()
		defer d.Discard()
		w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "Your results are normal.")
		w.Close()
		m := &securetextd.Message{Sender: sender, Subject: subject, MessageID: subject + "@clinic.example", Received: db.Now(), Auth: "smtp-auth"}
		if api {
			_, _, err = d.CommitAPI(ctx, m, phones, nil)
			return err
		}
		_, err = d.Commit(ctx, m, phones)
		return err
	}
	if err := from(drWho, "1", false, "+12025550101", "+12025550102"); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour)
	if err := from("nurse@clinic.example", "2", true, "+12025550103"); err != nil {
		t.Fatal(err)
	}
	err := from("nurse@clinic.example", "3", true, "+12025550104")
	wantCode(t, err, securetextd.ELIMIT)
	if msg := securetextd.ErrorMessage(err); !strings.Contains(msg, "Organization's daily limit reached: 3 texts in 24 hours, 3 sent") ||
		!strings.Contains(msg, "resets for this message at 09:00 UTC on 3 March 2026") {
		t.Errorf("org limit: %q", msg)
	}
	wantCode(t, from("other@clinic.example", "4", false, "+12025550105"), securetextd.ELIMIT)
	if err := db.CheckLimits(ctx, "someone@clinic.example", []Target{{Phone: "+12025550106"}}); securetextd.ErrorCode(err) != securetextd.ELIMIT {
		t.Errorf("CheckLimits: %v", err)
	}
	wantCode(t, from(drWho, "5", false, "+12025550101", "+12025550102", "+12025550103", "+12025550104"), securetextd.EINVALID)

	// Once the first message leaves the window, two texts may go.
	clk.t = time.Date(2026, 3, 3, 9, 0, 0, 1, time.UTC)
	if err := from("other@clinic.example", "6", false, "+12025550105", "+12025550106"); err != nil {
		t.Fatalf("after 24 hours: %v", err)
	}
}
