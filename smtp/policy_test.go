package smtp

import (
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dmarc"

	"github.com/securetextd/securetextd"
)

func TestAlignment(t *testing.T) {
	tests := []struct {
		a, from string
		mode    dmarc.AlignmentMode
		want    bool
	}{
		{"clinic.example", "clinic.example", dmarc.AlignmentStrict, true},
		{"CLINIC.example.", "clinic.example", dmarc.AlignmentStrict, true},
		{"mail.clinic.example", "clinic.example", dmarc.AlignmentRelaxed, true},
		{"mail.clinic.example", "clinic.example", dmarc.AlignmentStrict, false},
		{"clinic.example", "ward.clinic.example", dmarc.AlignmentRelaxed, true},
		{"other.example", "clinic.example", dmarc.AlignmentRelaxed, false},
		// The organizational domain sits under the public suffix.
		{"nhs.co.uk", "hospital.co.uk", dmarc.AlignmentRelaxed, false},
		{"mail.hospital.co.uk", "hospital.co.uk", dmarc.AlignmentRelaxed, true},
		{"co.uk", "hospital.co.uk", dmarc.AlignmentRelaxed, false},
		{"a.github.io", "b.github.io", dmarc.AlignmentRelaxed, false},
		{"", "clinic.example", dmarc.AlignmentRelaxed, false},
		{"bad domain", "clinic.example", dmarc.AlignmentRelaxed, false},
	}
	for _, tt := range tests {
		if got := aligned(tt.a, tt.from, tt.mode); got != tt.want {
			t.Errorf("aligned(%q, %q, %s) = %v, want %v", tt.a, tt.from, tt.mode, got, tt.want)
		}
	}
}

func TestSenderDomains(t *testing.T) {
	d, err := newSenderDomains([]string{"Clinic.Example", "*.hospital.example"})
	if err != nil {
		t.Fatal(err)
	}
	for domain, want := range map[string]bool{
		"clinic.example":          true,
		"ward.clinic.example":     false, // exact entries are exact
		"hospital.example":        false, // *. is subdomains only
		"ward.hospital.example":   true,
		"a.b.hospital.example":    true,
		"evilhospital.example":    false,
		"hospital.example.evil":   false,
		"clinic.example.evil.org": false,
	} {
		if got := d.allows(domain); got != want {
			t.Errorf("allows(%q) = %v, want %v", domain, got, want)
		}
	}
	for _, bad := range []string{"", "*", "*.", "clinic", "*.*.example", "clinic.example/24", "foo*.example", "a..b"} {
		if ValidateSenderDomain(bad) == nil {
			t.Errorf("ValidateSenderDomain(%q) = nil", bad)
		}
	}
	for _, p := range []string{"", "dmarc", "dkim", "spf", "trusted-network"} {
		if err := ValidatePolicy(p); err != nil {
			t.Errorf("ValidatePolicy(%q) = %v", p, err)
		}
	}
	if ValidatePolicy("none") == nil {
		t.Error(`ValidatePolicy("none") = nil`)
	}
}

func TestLookupDMARC(t *testing.T) {
	d := newTestDNS(t)
	d.set("_dmarc.clinic.example", "v=spf1 -all", "v=DMARC1; p=reject; adkim=s")
	d.set("_dmarc.hospital.example", "v=DMARC1; p=quarantine")
	d.set("_dmarc.bad.example", "v=DMARC1; p=sometimes")
	d.set("_dmarc.two.example", "v=DMARC1; p=none", "v=DMARC1; p=reject")
	r := checkResolver{r: d.resolver()}
	ctx := t.Context()

	rec, err := lookupDMARC(ctx, r, "clinic.example")
	if err != nil || rec == nil || rec.Policy != dmarc.PolicyReject || rec.DKIMAlignment != dmarc.AlignmentStrict {
		t.Errorf("clinic.example: %+v, %v", rec, err)
	}
	// A subdomain without a record falls back to its organizational domain.
	rec, err = lookupDMARC(ctx, r, "ward.hospital.example")
	if err != nil || rec == nil || rec.Policy != dmarc.PolicyQuarantine {
		t.Errorf("ward.hospital.example: %+v, %v", rec, err)
	}
	if rec, err := lookupDMARC(ctx, r, "none.example"); rec != nil || err != nil {
		t.Errorf("none.example: %+v, %v", rec, err)
	}
	for domain, want := range map[string]string{
		"bad.example": "_dmarc.bad.example:",
		"two.example": "has 2 DMARC records",
	} {
		if _, err := lookupDMARC(ctx, r, domain); err == nil || isTempDNS(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a permanent error with %q", domain, err, want)
		}
	}
	d.stop()
	if _, err := lookupDMARC(ctx, r, "clinic.example"); !isTempDNS(err) {
		t.Errorf("server down: %v, want a temporary error", err)
	}
}

// nopPart swallows the parts of a message.
type nopPart struct{}

func (nopPart) CreatePart(securetextd.Part) (io.WriteCloser, error) {
	return nopCloser{io.Discard}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// TestRelayFrom checks which From headers the relay accepts: the header as
// the MIME walk and the strict reader beside it see it, as in Data.
func TestRelayFrom(t *testing.T) {
	tests := []struct {
		header       string
		addr, name   string
		refusedUnder string
	}{
		{header: "From: Dr Who <dr.who@Clinic.Example>\r\n", addr: "dr.who@clinic.example", name: "Dr Who"},
		{header: "From: =?utf-8?q?Dr_W=C3=B6?= <dr@clinic.example>\r\n", addr: "dr@clinic.example", name: "Dr W\u00f6"},
		{header: "Subject: x\r\nFROM : Dr Who\r\n <dr.who@clinic.example>\r\n", addr: "dr.who@clinic.example", name: "Dr Who"},
		{header: "From: \"x@bank.example\" <dr.who@clinic.example>\r\n", addr: "dr.who@clinic.example"},
		{header: "From: a@clinic.example\r\nfrom: b@clinic.example\r\n", refusedUnder: "2 From: header fields"},
		{header: "From: a@clinic.example\r\nFrom\t: b@clinic.example\r\n", refusedUnder: "2 From: header fields"},
		{header: "Subject: x\r\n", refusedUnder: "no From: header field"},
		{header: "From: undisclosed\r\n", refusedUnder: "no address that can be read"},
		{header: "From: a@clinic.example, b@clinic.example\r\n", refusedUnder: "lists 2 addresses"},
		{header: "From: root@localhost\r\n", refusedUnder: "no domain that can be checked"},
		{header: "From: x@[127.0.0.1]\r\n", refusedUnder: "no domain that can be checked"},
		// Headers the walk reads leniently and DKIM reads otherwise: an
		// indented first line (the walk takes it as the whole header, DKIM
		// as a field before the signed From), an mbox line, a line that is
		// not a field.
		{header: " From: ceo@clinic.example\r\nFrom: dr.who@clinic.example\r\n", refusedUnder: "its header is not well formed: its first line is indented"},
		{header: "From dr@clinic.example Mon Nov 23 10:00:00 2026\r\nFrom: dr@clinic.example\r\n", refusedUnder: "line 1 is not a header field"},
		{header: "From: dr@clinic.example\r\nSubject: x\r\nnot a field\r\nFrom: ceo@clinic.example\r\n", refusedUnder: "line 3 is not a header field"},
	}
	for _, tt := range tests {
		g := &headerGuard{}
		h, err := walkMessage(io.TeeReader(strings.NewReader(tt.header+"\r\nbody\r\n"), g), nopPart{}, mimeLimits{})
		if err != nil {
			t.Fatalf("%q: %v", tt.header, err)
		}
		addr, name, err := relayFrom(h, g)
		if tt.refusedUnder != "" {
			if err == nil || !strings.Contains(err.Error(), tt.refusedUnder) {
				t.Errorf("%q: %q, %v; want refused with %q", tt.header, addr, err, tt.refusedUnder)
			}
			continue
		}
		if err != nil || addr != tt.addr || name != tt.name {
			t.Errorf("%q: %q %q %v, want %q %q", tt.header, addr, name, err, tt.addr, tt.name)
		}
	}
}

func TestReplyText(t *testing.T) {
	got := replyText("DKIM signature by ev\u00efl\r\n.example" + strings.Repeat("x", 1000))
	if strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r > 0x7e }) || len(got) != maxReplyText {
		t.Errorf("replyText = %q (%d bytes)", got, len(got))
	}
}
