package smtp

import (
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// TestAuditAndReceipts: refusals are audit events with the client and the
// reply; an accepted message is one too (the store's), with the client;
// Disposition-Notification-To reaches the store as a receipt request.
func TestAuditAndReceipts(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true })
	ts.db.Policy = store.Policy{ReadReceipts: securetextd.ReceiptsMDN, DailyPerSender: 1}
	s := newRawSession(t, ts)
	s.cmd("MAIL FROM:<dr.who@clinic.example>", "250")
	s.cmd("RCPT TO:<someone@example.org>", "550")
	s.cmd("RCPT TO:<2125550123@secure.text>", "250")
	if line := s.data("From: dr.who@clinic.example\r\nDisposition-Notification-To: <x@elsewhere.example>\r\n" +
		"Subject: s\r\n\r\nhi\r\n.\r\n"); !strings.HasPrefix(line, "250") {
		t.Fatalf("DATA: %s", line)
	}
	s.cmd("MAIL FROM:<dr.who@clinic.example>", "250")
	s.cmd("RCPT TO:<2125550199@secure.text>", "250")
	if line := s.data("Subject: over\r\n\r\nhi\r\n.\r\n"); !strings.HasPrefix(line, "452 4.5.3 Daily limit reached") {
		t.Fatalf("over the limit: %s", line)
	}

	var evs []securetextd.AuditEvent
	ts.db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		evs = append(evs, ev)
		return nil
	})
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Event+" "+ev.Actor+" "+ev.Client+" "+strings.SplitN(ev.Detail, " ", 3)[0])
	}
	want := []string{
		"message.refused dr.who@clinic.example 127.0.0.1 RCPT",
		"message.accepted dr.who@clinic.example 127.0.0.1 auth=smtp-auth",
		"text.queued dr.who@clinic.example 127.0.0.1 to=+1212*****23",
		"message.refused dr.who@clinic.example 127.0.0.1 DATA",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := evs[len(evs)-1].Detail; !strings.HasPrefix(d, "DATA 452 4.5.3 Daily limit reached") {
		t.Errorf("refusal detail %q", d)
	}

	// The request was kept: the first view queues an MDN.
	sent, err := ts.db.SentMessages(t.Context(), "", time.Time{})
	if err != nil || len(sent) != 1 {
		t.Fatalf("%v %v", sent, err)
	}
	if err := ts.db.MarkViewed(t.Context(), sent[0].ConversationID, []int64{sent[0].MessageID}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.NextJob(t.Context(), time.Now(), securetextd.JobKindMDN); err != nil {
		t.Errorf("no MDN queued: %v", err)
	}
}
