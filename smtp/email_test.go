package smtp

import (
	"fmt"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
)

// TestEmailRecipients: with email recipients on, submission takes an
// address of another domain beside a phone, keyed in lowercase, and
// refuses one that is not an address; an answer to email+<id>@domain
// joins that email recipient's conversation, and no other. Off (the
// default), the address is refused as before: 550 5.7.1 Relay access
// denied.
func TestEmailRecipients(t *testing.T) {
	off := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true })
	s := newRawSession(t, off)
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	if reply := s.cmd("RCPT TO:<jane@example.net>", "550"); !strings.HasPrefix(reply, "550 5.7.1 Relay access denied") {
		t.Errorf("off: %q", reply)
	}

	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true; c.EmailRecipients = true })
	s = newRawSession(t, ts)
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	s.cmd("RCPT TO:<2125550123@secure.text>", "250")
	s.cmd("RCPT TO:<Jane@Example.NET>", "250")
	for _, bad := range []string{"RCPT TO:<jane@localhost>", `RCPT TO:<"jane doe"@example.net>`} {
		if reply := s.cmd(bad, "550"); !strings.HasPrefix(reply, "550 5.1.3") || !strings.Contains(reply, "not an email address") {
			t.Errorf("%s: %q", bad, reply)
		}
	}
	if reply := s.data("From: " + testAccount + "\r\nSubject: first\r\n\r\nhello\r\n.\r\n"); !strings.HasPrefix(reply, "250") {
		t.Fatal(reply)
	}
	ctx := t.Context()
	var janes *securetextd.Conversation
	for id := int64(1); id <= 2; id++ {
		c, err := ts.db.Conversation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Phone == "jane@example.net" {
			janes = c
		}
	}
	if janes == nil {
		t.Fatal("no conversation with jane@example.net")
	}
	if _, err := ts.db.NextJob(ctx, ts.db.Now(), securetextd.JobKindEmail); err != nil {
		t.Errorf("no notice email queued: %v", err)
	}

	// The sender answers a reply of Jane's: into her conversation.
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	s.cmd(fmt.Sprintf("RCPT TO:<email+%d@secure.text>", janes.ID), "250")
	if reply := s.data("From: " + testAccount + "\r\nSubject: Re: first\r\n\r\nand again\r\n.\r\n"); !strings.HasPrefix(reply, "250") {
		t.Fatal(reply)
	}
	msgs, err := ts.db.ConversationMessages(ctx, janes.ID)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Jane's conversation has %d messages (%v), want 2", len(msgs), err)
	}
	// Not into a phone's conversation, nor an unknown one.
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	for _, id := range []int64{3 - janes.ID, 99} {
		if reply := s.cmd(fmt.Sprintf("RCPT TO:<email+%d@secure.text>", id), "550"); !strings.HasPrefix(reply, "550 5.1.1") {
			t.Errorf("email+%d: %q", id, reply)
		}
	}
}

// TestRelayEmailRecipients: on the relay an email recipient is taken at
// RCPT, and the message is stored only when it passes the relay's policy,
// as any is.
func TestRelayEmailRecipients(t *testing.T) {
	d := newTestDNS(t)
	relayZone(d)
	rs := newRelayServer(t, d, func(c *RelayConfig) { c.EmailRecipients = true })
	drWho := "Dr Who <dr.who@clinic.example>"
	// Unsigned, from a client SPF does not list: refused whole.
	err := rs.send("bounces@elsewhere.example", "jane@example.net", strings.NewReader(string(clinicMail(drWho))))
	if se, ok := err.(*gosmtp.SMTPError); !ok || se.Code != 550 {
		t.Fatalf("unchecked message: %v, want 550", err)
	}
	if n := countMessages(t, rs.db); n != 0 {
		t.Fatalf("%d messages stored from an unchecked sender", n)
	}
	msg := sign(t, clinicMail(drWho), "clinic.example", "rsa", "rsa")
	if err := rs.send("bounces@elsewhere.example", "jane@example.net", strings.NewReader(string(msg))); err != nil {
		t.Fatal(err)
	}
	c, err := rs.db.Conversation(t.Context(), 1)
	if err != nil || c.Phone != "jane@example.net" || c.Sender != "dr.who@clinic.example" {
		t.Fatalf("conversation %+v, %v", c, err)
	}
}
