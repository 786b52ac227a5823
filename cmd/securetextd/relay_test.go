package main

import (
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// TestRelayListenerWired starts the gateway with a relay listener (policy
// trusted-network, so that no DNS is needed: the policies themselves are
// tested in package smtp, with a real Postfix) and relays a message from
// loopback without AUTH: it is texted like submitted mail.
func TestRelayListenerWired(t *testing.T) {
	vonage := newFakeVonage(t)
	cfg, err := ParseConfig([]byte(testConfigText(t, vonage.URL)+`
[relay]
listen = "127.0.0.1:0"
trusted_networks = ["127.0.0.0/8"]
policy = "trusted-network"
sender_domains = ["clinic.example"]
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	if m.RelayAddr == "" {
		t.Fatal("no relay listener")
	}
	c, err := gosmtp.DialStartTLS(m.RelayAddr, tlsConfigFor(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("the relay offers AUTH")
	}
	msg := "From: Dr Who <dr.who@clinic.example>\r\nSubject: Results\r\n\r\nAll normal.\r\n"
	if err := c.SendMail("dr.who@clinic.example", []string{"2125550123@secure.text"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("relay: %v", err)
	}
	texts := vonage.waitTexts(t, 1, 10*time.Second)
	if len(texts) != 1 || texts[0].To != "12125550123" {
		t.Fatalf("texts: %+v", texts)
	}
	// A From domain not in relay.sender_domains is refused.
	err = c.SendMail("ceo@other.example", []string{"2125550123@secure.text"},
		strings.NewReader("From: ceo@other.example\r\nSubject: x\r\n\r\nx\r\n"))
	if se, ok := err.(*gosmtp.SMTPError); !ok || se.Code != 550 {
		t.Errorf("foreign From domain: %v", err)
	}
}
