package main

import (
	"strings"
	"testing"

	"github.com/securetextd/securetextd/notify"
)

// TestReplyModeConfig: the defaults are a notice and per-sender
// conversations; a bad value of either key is refused, naming it.
func TestReplyModeConfig(t *testing.T) {
	c := DefaultConfig()
	if c.Mail.ReplyMode != notify.ReplyNotice || c.Conversations.Continue != continuePerSender {
		t.Errorf("defaults: reply_mode %q, continue %q; want notice and per-sender", c.Mail.ReplyMode, c.Conversations.Continue)
	}
	if !c.policy().ContinuePerSender {
		t.Error("the default policy does not continue conversations")
	}
	_, err := ParseConfig([]byte("[mail]\nreply_mode = \"full\"\n[conversations]\ncontinue = \"always\"\n"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `mail.reply_mode: "full"`) || !strings.Contains(err.Error(), `conversations.continue: "always"`) {
		t.Errorf("bad values: %v", err)
	}
	for _, text := range []string{"[mail]\nreply_mode = \"content\"\n", "[conversations]\ncontinue = \"never\"\n"} {
		c, err := ParseConfig([]byte(text), t.TempDir())
		if err != nil {
			t.Errorf("%q: %v", text, err)
		} else if strings.Contains(text, "never") && c.policy().ContinuePerSender {
			t.Errorf("continue = never still continues")
		}
	}
}
