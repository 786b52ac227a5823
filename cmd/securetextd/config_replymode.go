package main

import (
	"fmt"

	"github.com/securetextd/securetextd/notify"
)

// The values of conversations.continue.
const (
	continuePerSender = "per-sender"
	continueNever     = "never"
)

// ConversationsConfig is the [conversations] section.
type ConversationsConfig struct {
	// Continue is "per-sender" (a new message from a sender to a phone
	// joins their latest conversation, unless it was withdrawn or
	// deleted) or "never" (each message starts its own).
	Continue string `toml:"continue"`
}

func replyModeDefaults(c *Config) {
	c.Mail.ReplyMode = notify.ReplyNotice
	c.Conversations.Continue = continuePerSender
}

// validateReplyMode checks mail.reply_mode and conversations.continue.
func (c *Config) validateReplyMode() []string {
	var p []string
	switch c.Mail.ReplyMode {
	case notify.ReplyNotice, notify.ReplyContent:
	default:
		p = append(p, fmt.Sprintf("mail.reply_mode: %q: use \"notice\" or \"content\"", c.Mail.ReplyMode))
	}
	switch c.Conversations.Continue {
	case continuePerSender, continueNever:
	default:
		p = append(p, fmt.Sprintf("conversations.continue: %q: use \"per-sender\" or \"never\"", c.Conversations.Continue))
	}
	return p
}

// consoleURL is where a reply notice links to: console.public_url, or ""
// when the console is off (console.listen = "").
func (c *Config) consoleURL() string {
	if c.Console.Listen == "" {
		return ""
	}
	return c.Console.PublicURL
}
