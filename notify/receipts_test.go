package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/securetextd/securetextd"
)

func noticeJob(t *testing.T, kind string, mj securetextd.MailJob) *securetextd.Job {
	t.Helper()
	p, err := json.Marshal(mj)
	if err != nil {
		t.Fatal(err)
	}
	return &securetextd.Job{ID: 9, Kind: kind, Payload: p, Created: time.Date(2026, 11, 23, 10, 5, 0, 0, time.UTC)}
}

// TestNotices: each notice goes to the conversation's sender, threaded
// under the original, with its subject and the phone masked, and no
// content.
func TestNotices(t *testing.T) {
	for _, tc := range []struct {
		kind, subject string
		body          []string
	}{
		{securetextd.JobKindNotice, "Texted: Your results", []string{
			"was texted to +1212*****23 at 10:05 UTC on 23 November 2026",
			"https://portal.clinic.example/revoke/REVOKETOKEN123",
			"Reference: conversation 42, message 1.",
		}},
		{securetextd.JobKindRead, "Read: Your results", []string{"to +1212*****23 was opened at 10:05 UTC", "no guarantee"}},
		{securetextd.JobKindUndelivered, "Not delivered: Your results", []string{"could not be texted to +1212*****23", "send the message again"}},
	} {
		r := startRelay(t, relayOptions{tls: true})
		m := relayMailer(t, r, newMailStore(t, "Your results", "x.jpg"))
		job := noticeJob(t, tc.kind, securetextd.MailJob{MessageID: 1, ConversationID: 42, Token: "REVOKETOKEN123"})
		if err := m.Send(t.Context(), job); err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		got := r.received()
		if len(got) != 1 || got[0].to != testClinician {
			t.Fatalf("%s: relayed %+v", tc.kind, got)
		}
		p := parseMail(t, got[0].data)
		h := p.header
		if s, _ := h.Subject(); s != tc.subject {
			t.Errorf("%s: Subject %q", tc.kind, s)
		}
		if ids, _ := h.MsgIDList("In-Reply-To"); len(ids) != 1 || ids[0] != "orig-1@clinic.example" {
			t.Errorf("%s: In-Reply-To %v", tc.kind, ids)
		}
		if ids, _ := h.MsgIDList("References"); strings.Join(ids, " ") != "root@clinic.example orig-1@clinic.example" {
			t.Errorf("%s: References %v", tc.kind, ids)
		}
		if id, _ := h.MessageID(); id != tc.kind+".42.1.9@clinic.example" {
			t.Errorf("%s: Message-ID %q", tc.kind, id)
		}
		if h.Get("Auto-Submitted") != "auto-replied" {
			t.Errorf("%s: Auto-Submitted %q", tc.kind, h.Get("Auto-Submitted"))
		}
		if to, _ := h.AddressList("To"); len(to) != 1 || to[0].Address != testClinician || to[0].Name != "Dr. Ann Smith" {
			t.Errorf("%s: To %v", tc.kind, to)
		}
		for _, want := range tc.body {
			if !strings.Contains(p.text, want) {
				t.Errorf("%s: body lacks %q:\n%s", tc.kind, want, p.text)
			}
		}
		if strings.Contains(p.text, "Your results are in") || strings.Contains(p.text, "12125550123") {
			t.Errorf("%s: body carries content or the full number:\n%s", tc.kind, p.text)
		}
	}
}

// TestMDN: the disposition notification is RFC 8098's multipart/report.
func TestMDN(t *testing.T) {
	r := startRelay(t, relayOptions{tls: true})
	m := relayMailer(t, r, newMailStore(t, "Your results", "x.jpg"))
	if err := m.Send(t.Context(), noticeJob(t, securetextd.JobKindMDN, securetextd.MailJob{MessageID: 1, ConversationID: 42})); err != nil {
		t.Fatal(err)
	}
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("%d mails", len(got))
	}
	e, err := message.Read(bytes.NewReader(got[0].data))
	if err != nil {
		t.Fatal(err)
	}
	h := mail.Header{Header: e.Header}
	if s, _ := h.Subject(); s != "Read: Your results" {
		t.Errorf("Subject %q", s)
	}
	if mt, params, _ := e.Header.ContentType(); mt != "multipart/report" || params["report-type"] != "disposition-notification" {
		t.Fatalf("Content-Type %s %v", mt, params)
	}
	mr := e.MultipartReader()
	var types []string
	var human, report string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		mt, _, _ := p.Header.ContentType()
		types = append(types, mt)
		b, _ := io.ReadAll(p.Body)
		switch mt {
		case "text/plain":
			human = string(b)
		case "message/disposition-notification":
			report = string(b)
		}
	}
	if strings.Join(types, " ") != "text/plain message/disposition-notification" {
		t.Errorf("parts %v", types)
	}
	if !strings.Contains(human, "\u201cYour results\u201d, was displayed to its recipient +1212*****23") {
		t.Errorf("human part %q", human)
	}
	want := "Reporting-UA: " + m.hello + "; securetextd " + securetextd.Version + "\r\n" +
		"Original-Recipient: rfc822;12125550123@secure.text\r\n" +
		"Final-Recipient: rfc822;12125550123@secure.text\r\n" +
		"Original-Message-ID: <orig-1@clinic.example>\r\n" +
		"Disposition: automatic-action/MDN-sent-automatically; displayed\r\n"
	if report != want {
		t.Errorf("disposition notification\n%q\nwant\n%q", report, want)
	}
}

// TestNoticeErrors: jobs that cannot become a notice fail for good.
func TestNoticeErrors(t *testing.T) {
	r := startRelay(t, relayOptions{tls: true})
	m := relayMailer(t, r, newMailStore(t, "s", "x.jpg"))
	for _, job := range []*securetextd.Job{
		noticeJob(t, securetextd.JobKindNotice, securetextd.MailJob{MessageID: 1, ConversationID: 42}), // no token
		noticeJob(t, securetextd.JobKindMDN, securetextd.MailJob{MessageID: 2, ConversationID: 42}),    // a reply
		noticeJob(t, securetextd.JobKindMDN, securetextd.MailJob{MessageID: 1, ConversationID: 43}),    // no conversation
		noticeJob(t, "carrier-pigeon", securetextd.MailJob{MessageID: 1, ConversationID: 42}),
	} {
		if err := m.Send(t.Context(), job); !IsPermanent(err) {
			t.Errorf("%s %s: %v, want a permanent error", job.Kind, job.Payload, err)
		}
	}
	if n := len(r.received()); n != 0 {
		t.Errorf("%d mails sent", n)
	}
}

// TestVonageTracked: the provider returns Vonage's message ids and passes
// the client reference and the receipt callback.
func TestVonageTracked(t *testing.T) {
	f := newFakeVonage(t, http.StatusOK, vonageReply("0", ""))
	v, err := NewVonage(VonageConfig{
		APIKey: testKey, APISecret: testSecret, From: "AcmeClinic", BaseURL: f.URL,
		Callback: "https://portal.clinic.example/hooks/vonage/dlr",
	})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := v.SendTrackedSMS(t.Context(), testPhone, testText, "17")
	if err != nil || len(ids) != 1 || ids[0] != "0A0000000123ABCD1" {
		t.Fatalf("SendTrackedSMS: %v %v", ids, err)
	}
	form := f.forms[0]
	if form.Get("client-ref") != "17" || form.Get("callback") != "https://portal.clinic.example/hooks/vonage/dlr" ||
		form.Get("status-report-req") != "true" {
		t.Errorf("form %v", form)
	}
}

// trackingOutbox is a fakeOutbox that keeps the ids CompleteTextClaim gets.
type trackingOutbox struct {
	*fakeOutbox
	ids map[int64][]string
}

func (o *trackingOutbox) CompleteTextClaim(ctx context.Context, job *securetextd.Job, providerIDs []string) error {
	o.mu.Lock()
	o.ids[job.ID] = providerIDs
	o.mu.Unlock()
	return o.CompleteClaim(ctx, job)
}

// trackingSMS is a fakeSMS that tracks texts: it gives each an id and
// records the reference it was given.
type trackingSMS struct {
	fakeSMS
	refs []string
}

func (s *trackingSMS) SendTrackedSMS(ctx context.Context, to securetextd.Phone, text, ref string) ([]string, error) {
	if err := s.SendSMS(ctx, to, text); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs = append(s.refs, ref)
	return []string{"ID-" + ref + "-a", "ID-" + ref + "-b"}, nil
}

// TestWorkerKeepsProviderIDs: a text sent through a tracking provider is
// completed with the provider's ids, for its delivery reports; the job id
// is the reference.
func TestWorkerKeepsProviderIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &trackingOutbox{fakeOutbox: newFakeOutbox(), ids: map[int64][]string{}}
		sms := &trackingSMS{}
		j := o.add(t, "+12125550123", "TOKEN123")
		startWorker(t, newWorker(o, sms))
		synctest.Wait()
		if state, _, _ := o.state(j); state != "done" {
			t.Fatalf("job %s", state)
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if ids := o.ids[j.job.ID]; strings.Join(ids, " ") != "ID-1-a ID-1-b" || strings.Join(sms.refs, " ") != "1" {
			t.Errorf("ids %v, refs %v", ids, sms.refs)
		}
	})
}
