package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/securetextd/securetextd"
)

// TestConversationsContinue: through the real SMTP listener, a second
// email from the same sender to the same phone lands in the same
// conversation (conversations.continue = "per-sender", the default), and
// in one of its own with "never"; once the conversation is withdrawn, the
// next email starts a new one.
func TestConversationsContinue(t *testing.T) {
	const phone = securetextd.Phone("+12125550123")
	for _, mode := range []string{"", continueNever} {
		name := mode
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			vonage := newFakeVonage(t)
			cfg := testConfig(t, t.TempDir(), vonage.URL)
			if mode != "" {
				cfg.Conversations.Continue = mode
			}
			m := startMain(t, cfg)
			ctx := t.Context()
			if err := m.db.CreateSender(ctx, "dr.who@clinic.example", "correct horse battery"); err != nil {
				t.Fatal(err)
			}
			tc := tlsConfigFor(t, cfg)
			mail := func(n int) {
				t.Helper()
				msg := fmt.Sprintf("From: Dr Who <dr.who@clinic.example>\r\nTo: 2125550123@secure.text\r\n"+
					"Subject: Note %d\r\nMessage-ID: <conv-%d@clinic.example>\r\n\r\nNote number %d.\r\n", n, n, n)
				if err := send(t, m.SubmissionAddr, tc, sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery"),
					"dr.who@clinic.example", []string{"2125550123@secure.text"}, msg); err != nil {
					t.Fatalf("send %d: %v", n, err)
				}
			}
			inbox := func() []securetextd.InboxEntry {
				t.Helper()
				entries, err := m.db.Inbox(ctx, phone)
				if err != nil {
					t.Fatal(err)
				}
				return entries
			}

			mail(1)
			mail(2)
			entries := inbox()
			if mode == continueNever {
				if len(entries) != 2 || entries[0].Messages != 1 || entries[1].Messages != 1 {
					t.Fatalf("never: inbox %+v, want two conversations of one message", entries)
				}
				return
			}
			if len(entries) != 1 || entries[0].Messages != 2 {
				t.Fatalf("per-sender: inbox %+v, want one conversation of two messages", entries)
			}
			first := entries[0].Conversation.ID
			// Each message is texted: the patient is told of the new one.
			vonage.waitTexts(t, 2, 10*time.Second)

			if err := m.db.RevokeConversation(ctx, first); err != nil {
				t.Fatal(err)
			}
			mail(3)
			entries = inbox()
			if len(entries) != 1 || entries[0].Conversation.ID == first || entries[0].Messages != 1 {
				t.Fatalf("after withdrawal: inbox %+v, want a new conversation (not %d) of one message", entries, first)
			}
		})
	}
}
