package main

import (
	"strings"
)

// validateProduction refuses, for a gateway whose portal is public
// (portal.public_url is https), the settings that only make sense for a
// demo on loopback: no mail relay (mail to senders is sealed into mail.dir
// and never sent) and the console SMS provider (texts are printed, never
// sent). Either would accept patients' messages and tell nobody.
func (c *Config) validateProduction() []string {
	if !strings.HasPrefix(c.Portal.PublicURL, "https://") {
		return nil
	}
	var p []string
	if c.Mail.Relay == "" {
		p = append(p, `mail.relay: must be set when portal.public_url is https: without a relay, replies, reset links and notices are only sealed into mail.dir, for a demo`)
	}
	if c.SMS.Provider == "console" {
		p = append(p, `sms.provider: "console" only prints texts, for a demo: use "vonage" when portal.public_url is https`)
	}
	return p
}
