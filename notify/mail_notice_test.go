package notify

import (
	"bytes"
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestMailReplyNotice: by default (mail.reply_mode = "notice") the email
// about a reply says who replied and when, and links to it in the console,
// threaded as the content email is; none of the reply's words or files,
// nor its filename, is anywhere in the bytes sent, and no part is opened.
func TestMailReplyNotice(t *testing.T) {
	r := startRelay(t, relayOptions{tls: true})
	st := newMailStore(t, "Your results", "photo.jpg")
	c := mailConfig()
	c.ReplyMode = "" // the default
	c.Relay = r.addr
	c.TLSConfig = &tls.Config{RootCAs: r.pool}
	mailer, err := NewMailer(c, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := mailer.Send(t.Context(), replyJob(t, 1)); err != nil {
		t.Fatalf("Send = %v", err)
	}
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("relay received %d mails, want 1", len(got))
	}
	raw := got[0].data
	if st.opened != 0 {
		t.Errorf("opened %d parts of the reply; a notice needs none", st.opened)
	}
	for _, secret := range []string{"Thank you", "doctor", "photo", "attached", "+12125550123"} {
		if bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(secret))) {
			t.Errorf("the notice holds %q:\n%s", secret, raw)
		}
	}
	for _, part := range st.content[2] {
		if len(part) > 8 && bytes.Contains(raw, part[:8]) {
			t.Errorf("the notice holds the reply's bytes")
		}
	}

	p := parseMail(t, raw)
	h := p.header
	for key, want := range map[string]string{
		"From":           `"Acme Clinic secure reply" <securetextd@clinic.example>`,
		"To":             `"Dr. Ann Smith" <dr.smith@clinic.example>`,
		"Reply-To":       "<12125550123+42@secure.text>",
		"Message-Id":     "<reply-2@secure.text>",
		"Auto-Submitted": "auto-generated",
	} {
		if v := h.Get(key); v != want {
			t.Errorf("%s: %q, want %q", key, v, want)
		}
	}
	if s, _ := h.Subject(); s != "Re: Your results" {
		t.Errorf("Subject %q", s)
	}
	if ids, _ := h.MsgIDList("In-Reply-To"); !slices.Equal(ids, []string{"orig-1@clinic.example"}) {
		t.Errorf("In-Reply-To %q", ids)
	}
	if ids, _ := h.MsgIDList("References"); !slices.Equal(ids, []string{"root@clinic.example", "orig-1@clinic.example"}) {
		t.Errorf("References %q", ids)
	}
	if ct, _, _ := h.ContentType(); ct != "text/plain" {
		t.Errorf("Content-Type %s, want text/plain (no attachments)", ct)
	}
	if len(p.files) != 0 {
		t.Errorf("%d attachments, want none", len(p.files))
	}
	want := "+1212*****23 replied at 11:00 UTC on 23 November 2026. The reply stays sealed on the gateway: this email holds none of its words or files.\r\n\r\n" +
		"Read it in the console (sign-in required):\r\n\r\n" +
		"https://console.clinic.example/r/2\r\n\r\n" +
		"To answer, reply to this email: your answer joins the same secure conversation.\r\n\r\n" +
		"Reference: conversation 42, reply 2.\r\n"
	if p.text != want {
		t.Errorf("text %q, want %q", p.text, want)
	}
}

// TestMailReplyThreadingBothModes: the threading headers are the same
// whatever the reply mode.
func TestMailReplyThreadingBothModes(t *testing.T) {
	headers := map[string]map[string]string{}
	for _, mode := range []string{ReplyNotice, ReplyContent} {
		r := startRelay(t, relayOptions{tls: true})
		c := mailConfig()
		c.ReplyMode = mode
		c.Relay = r.addr
		c.TLSConfig = &tls.Config{RootCAs: r.pool}
		mailer, err := NewMailer(c, newMailStore(t, "Your results", "photo.jpg"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := mailer.Send(t.Context(), replyJob(t, 1)); err != nil {
			t.Fatalf("%s: Send = %v", mode, err)
		}
		h := parseMail(t, r.received()[0].data).header
		headers[mode] = map[string]string{}
		for _, k := range []string{"In-Reply-To", "References", "Reply-To", "Message-Id", "Subject", "To"} {
			headers[mode][k] = h.Get(k)
			if strings.TrimSpace(h.Get(k)) == "" {
				t.Errorf("%s: no %s", mode, k)
			}
		}
	}
	for k, v := range headers[ReplyContent] {
		if headers[ReplyNotice][k] != v {
			t.Errorf("%s: notice %q, content %q", k, headers[ReplyNotice][k], v)
		}
	}
}

// TestNoticesCarryNoContent: the read receipts and delivery notices follow
// the notice's rule in every mode — no part of any message is opened, and
// none of the reply's words, its filename or the full number is in the
// bytes sent. (They already did; this keeps it so.)
func TestNoticesCarryNoContent(t *testing.T) {
	for _, mode := range []string{ReplyNotice, ReplyContent} {
		for _, kind := range []string{securetextd.JobKindNotice, securetextd.JobKindMDN, securetextd.JobKindRead, securetextd.JobKindUndelivered} {
			r := startRelay(t, relayOptions{tls: true})
			st := newMailStore(t, "Your results", "photo.jpg")
			c := mailConfig()
			c.ReplyMode = mode
			c.Relay = r.addr
			c.TLSConfig = &tls.Config{RootCAs: r.pool}
			mailer, err := NewMailer(c, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			job := noticeJob(t, kind, securetextd.MailJob{MessageID: 1, ConversationID: 42, Token: "REVOKETOKEN123"})
			if err := mailer.Send(t.Context(), job); err != nil {
				t.Fatalf("%s %s: %v", mode, kind, err)
			}
			raw := r.received()[0].data
			if st.opened != 0 {
				t.Errorf("%s %s: opened %d parts", mode, kind, st.opened)
			}
			for _, secret := range []string{"Thank you", "photo", "+12125550123", "12125550123@"} {
				if bytes.Contains(raw, []byte(secret)) && !(kind == securetextd.JobKindMDN && secret == "12125550123@") {
					t.Errorf("%s %s holds %q:\n%s", mode, kind, secret, raw)
				}
			}
		}
	}
}
