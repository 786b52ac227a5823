package smtp

// The relay's sender policy: which From addresses a relayed message may
// show, and the DKIM, SPF and DMARC evidence that must back them.
//
// The checked identity is the From header's address, the one the recipient
// is shown. A check passes only for a domain aligned with it (RFC 7489):
// relaxed alignment by organizational domain (golang.org/x/net/publicsuffix)
// unless the domain's DMARC record asks for strict. A valid signature or
// an SPF pass for any other domain is not a pass; neither is a DNS answer
// that is missing, malformed or ambiguous. With the "dmarc" policy the
// gateway is stricter than DMARC itself: it requires an aligned pass even
// when the domain publishes no DMARC record, or p=none.

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	gosmtp "github.com/emersion/go-smtp"
	"golang.org/x/net/publicsuffix"
)

// The relay policies (relay.policy), which say what must back a relayed
// message's From address.
const (
	// PolicyDMARC, the default, requires a DKIM signature that verifies for
	// a domain aligned with the From domain, or an SPF pass for an aligned
	// envelope domain, with the alignment mode of the domain's DMARC record
	// (relaxed without one).
	PolicyDMARC = "dmarc"
	// PolicyDKIM requires an aligned DKIM signature that verifies.
	PolicyDKIM = "dkim"
	// PolicySPF requires an SPF pass for an aligned envelope domain.
	PolicySPF = "spf"
	// PolicyTrustedNetwork checks nothing beyond the client's address and
	// the From domain: for internal servers that neither sign nor publish
	// SPF, and only when chosen explicitly.
	PolicyTrustedNetwork = "trusted-network"
)

// ValidatePolicy returns an error unless p names a relay policy. The empty
// string is PolicyDMARC.
func ValidatePolicy(p string) error {
	switch p {
	case "", PolicyDMARC, PolicyDKIM, PolicySPF, PolicyTrustedNetwork:
		return nil
	}
	return fmt.Errorf("%q is not a policy (dmarc, dkim, spf or trusted-network)", p)
}

// ValidateSenderDomain returns an error unless d is an entry that
// relay.sender_domains accepts: a domain name ("clinic.example"), which
// allows that domain exactly, or "*." and a domain ("*.clinic.example"),
// which allows every subdomain of it but not the domain itself.
func ValidateSenderDomain(d string) error {
	if normalizeDomain(strings.TrimPrefix(d, "*.")) == "" {
		return fmt.Errorf("%q is not a domain name or *.domain", d)
	}
	return nil
}

// senderDomains is relay.sender_domains, ready to match.
type senderDomains struct {
	exact   map[string]bool
	parents []string // ".clinic.example" for "*.clinic.example"
}

func newSenderDomains(list []string) (senderDomains, error) {
	d := senderDomains{exact: make(map[string]bool)}
	for _, e := range list {
		if err := ValidateSenderDomain(e); err != nil {
			return d, err
		}
		if rest, ok := strings.CutPrefix(e, "*."); ok {
			d.parents = append(d.parents, "."+normalizeDomain(rest))
		} else {
			d.exact[normalizeDomain(e)] = true
		}
	}
	return d, nil
}

// allows reports whether From domain (normalized) may send through the
// relay.
func (d senderDomains) allows(domain string) bool {
	if d.exact[domain] {
		return true
	}
	for _, p := range d.parents {
		if strings.HasSuffix(domain, p) {
			return true
		}
	}
	return false
}

// orgDomain returns the organizational domain of d (RFC 7489 3.2): the
// public suffix and one label more. A domain that is itself a public
// suffix is its own.
func orgDomain(d string) string {
	od, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return od
}

// aligned reports whether domain a is aligned with the From domain: equal
// in strict mode, of the same organizational domain in relaxed mode.
func aligned(a, from string, mode dmarc.AlignmentMode) bool {
	a = normalizeDomain(a)
	if a == "" {
		return false
	}
	if a == from {
		return true
	}
	return mode != dmarc.AlignmentStrict && orgDomain(a) == orgDomain(from)
}

// evidence is what the checks of one message found.
type evidence struct {
	from   string // the From domain, normalized
	client netip.Addr

	dkimChecked bool
	dkim        []*dkim.Verification
	dkimErr     error       // the message could not be read for DKIM
	fields      fieldCounts // the shown fields in the header, for DKIM's coverage

	spfChecked bool
	spfDomain  string // the domain SPF checked: MAIL FROM's, or HELO's for <>
	mailFrom   string // MAIL FROM, "" for <>
	helo       string
	spf        spf.Result
	spfErr     error
	dmarc      *dmarc.Record // nil: none published
	dmarcErr   error
}

// verdict is a policy's decision on one message.
type verdict struct {
	// results go into the stored Authentication-Results.
	results []authres.Result
	// refusal is nil when the message passes: a 550 that names the check
	// that failed, or a 451 when a DNS failure may have hidden a pass.
	refusal *gosmtp.SMTPError
}

// decide applies policy to the evidence.
func decide(policy string, ev *evidence) verdict {
	var v verdict
	adkim, aspf := dmarc.AlignmentMode(dmarc.AlignmentRelaxed), dmarc.AlignmentMode(dmarc.AlignmentRelaxed)
	if policy == PolicyDMARC {
		switch {
		case isTempDNS(ev.dmarcErr):
			v.results = append(v.results, &authres.DMARCResult{Value: authres.ResultTempError, From: ev.from})
			v.refusal = tempRefusal(fmt.Sprintf("the DMARC record of %s could not be fetched (%s)", ev.from, shortError(ev.dmarcErr)))
			return v
		case ev.dmarcErr != nil:
			v.results = append(v.results, &authres.DMARCResult{Value: authres.ResultPermError, From: ev.from})
			v.refusal = &gosmtp.SMTPError{
				Code:         550,
				EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
				Message:      replyText("Message refused: the DMARC record of " + ev.from + " is not usable: " + shortError(ev.dmarcErr)),
			}
			return v
		case ev.dmarc != nil:
			adkim, aspf = ev.dmarc.DKIMAlignment, ev.dmarc.SPFAlignment
		}
	}

	var reasons []string
	dkimPass, spfPass, temp := false, false, false
	dkimUnaligned := false
	// An aligned signature that verifies but does not cover what the
	// recipient is shown is not a pass (see coverage.go).
	uncovered := false
	if ev.dkimChecked {
		if len(ev.dkim) == 0 {
			v.results = append(v.results, &authres.DKIMResult{Value: authres.ResultNone})
			if ev.dkimErr != nil {
				reasons = append(reasons, "the message could not be read for DKIM: "+shortError(ev.dkimErr))
			} else {
				reasons = append(reasons, "no DKIM signature")
			}
		}
		for _, d := range ev.dkim {
			r := &authres.DKIMResult{Value: dkimValue(d.Err), Domain: d.Domain, Identifier: d.Identifier}
			ok := aligned(d.Domain, ev.from, adkim)
			switch {
			case d.Err == nil && ok:
				if gap := ev.fields.uncovered(d.HeaderKeys); gap != "" {
					uncovered = true
					r.Value, r.Reason = authres.ResultPolicy, "header not fully signed"
					reasons = append(reasons, fmt.Sprintf("DKIM signature by %s does not sign every instance of %s, so a field added above the signed one would be what the recipient sees", d.Domain, gap))
					break
				}
				dkimPass = true
			case isBodyLength(d.Err):
				uncovered = uncovered || ok
				r.Value, r.Reason = authres.ResultPolicy, "body length limit (l=)"
				reasons = append(reasons, fmt.Sprintf("DKIM signature for %s signs only the first part of the body (l=), so text added after it would be shown unsigned", d.Domain))
			case d.Err == nil:
				dkimUnaligned = true
				reasons = append(reasons, fmt.Sprintf("DKIM signature by %s is valid but not aligned with From domain %s", d.Domain, ev.from))
			case dkim.IsTempFail(d.Err):
				temp = temp || ok
				r.Reason = shortError(d.Err)
				reasons = append(reasons, fmt.Sprintf("DKIM key for %s could not be fetched (%s)", d.Domain, shortError(d.Err)))
			default:
				r.Reason = shortError(d.Err)
				reasons = append(reasons, fmt.Sprintf("DKIM signature for %s did not verify: %s", d.Domain, shortError(d.Err)))
			}
			v.results = append(v.results, r)
		}
	}
	if ev.spfChecked {
		r := &authres.SPFResult{Value: authres.ResultValue(ev.spf), From: ev.mailFrom}
		if ev.mailFrom == "" {
			r.Helo = ev.helo
		}
		ok := aligned(ev.spfDomain, ev.from, aspf)
		switch ev.spf {
		case spf.Pass:
			if ok {
				spfPass = true
			} else {
				reasons = append(reasons, fmt.Sprintf("SPF pass for %s is not aligned with From domain %s", ev.spfDomain, ev.from))
			}
		case spf.Fail, spf.SoftFail, spf.Neutral:
			reasons = append(reasons, fmt.Sprintf("SPF %s for %s from %s", ev.spf, ev.spfDomain, ev.client))
		case spf.None:
			reasons = append(reasons, fmt.Sprintf("no SPF record for %s", ev.spfDomain))
		case spf.TempError:
			temp = temp || ok
			reasons = append(reasons, fmt.Sprintf("SPF check for %s could not be completed (%s)", ev.spfDomain, shortError(ev.spfErr)))
		default:
			reasons = append(reasons, fmt.Sprintf("SPF record for %s is not usable (%s)", ev.spfDomain, shortError(ev.spfErr)))
		}
		v.results = append(v.results, r)
	}

	var pass bool
	var code gosmtp.EnhancedCode
	var what string
	switch policy {
	case PolicyDMARC:
		pass = dkimPass || spfPass
		code = gosmtp.EnhancedCode{5, 7, 26} // multiple authentication checks failed
		what = "no DKIM signature or SPF pass aligned with From domain " + ev.from
		if ev.dmarc != nil {
			what += fmt.Sprintf(" (DMARC p=%s)", ev.dmarc.Policy)
		} else {
			what += " (it publishes no DMARC record; this gateway requires alignment anyway)"
		}
		value := authres.ResultValue(authres.ResultFail)
		if pass {
			value = authres.ResultPass
		} else if temp {
			value = authres.ResultTempError
		}
		v.results = append(v.results, &authres.DMARCResult{Value: value, From: ev.from})
	case PolicyDKIM:
		pass = dkimPass
		what = "no valid DKIM signature aligned with From domain " + ev.from
		code = gosmtp.EnhancedCode{5, 7, 20} // no passing DKIM signature found
		if dkimUnaligned {
			code = gosmtp.EnhancedCode{5, 7, 22} // no valid author-matched DKIM signature found
		}
	case PolicySPF:
		pass = spfPass
		what = "no SPF pass for an envelope domain aligned with From domain " + ev.from
		code = gosmtp.EnhancedCode{5, 7, 23} // SPF validation failed
	}
	if uncovered && !temp {
		// The signature was there; what it leaves unsigned is the reason.
		code = gosmtp.EnhancedCode{5, 7, 1}
	}
	switch {
	case pass:
	case temp:
		v.refusal = tempRefusal(fmt.Sprintf("From domain %s could not be checked: %s", ev.from, strings.Join(reasons, "; ")))
	default:
		v.refusal = &gosmtp.SMTPError{
			Code:         550,
			EnhancedCode: code,
			Message:      replyText("Message refused: " + what + ": " + strings.Join(reasons, "; ")),
		}
	}
	return v
}

// tempRefusal is the reply when DNS failed: the relaying server keeps the
// message and tries again.
func tempRefusal(why string) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{
		Code:         451,
		EnhancedCode: gosmtp.EnhancedCode{4, 7, 0},
		Message:      replyText("Temporary DNS failure, try again later: " + why),
	}
}

// dkimValue returns the Authentication-Results value of one verification.
func dkimValue(err error) authres.ResultValue {
	switch {
	case err == nil:
		return authres.ResultPass
	case dkim.IsTempFail(err):
		return authres.ResultTempError
	case dkim.IsPermFail(err):
		return authres.ResultPermError
	}
	return authres.ResultFail
}

// lookupDMARC returns the DMARC record that governs the From domain: its
// own, or else its organizational domain's (RFC 7489 6.6.3). It returns
// nil and no error when neither publishes one. Two records, or a record
// that does not parse, is an error: an ambiguous or malformed answer is
// not a pass.
func lookupDMARC(ctx context.Context, r checkResolver, domain string) (*dmarc.Record, error) {
	rec, err := lookupDMARCAt(ctx, r, domain)
	if rec != nil || err != nil {
		return rec, err
	}
	if od := orgDomain(domain); od != domain {
		return lookupDMARCAt(ctx, r, od)
	}
	return nil, nil
}

func lookupDMARCAt(ctx context.Context, r checkResolver, domain string) (*dmarc.Record, error) {
	txts, err := r.LookupTXT(ctx, "_dmarc."+domain)
	if isTempDNS(err) {
		return nil, err
	}
	if err != nil {
		return nil, nil // no such name: no record
	}
	var records []string
	for _, t := range txts {
		// RFC 7489 6.6.3: records that do not start with v=DMARC1 are
		// discarded. (go-msgauth's lookup keeps the first one that parses.)
		if strings.HasPrefix(t, "v=DMARC1") {
			records = append(records, t)
		}
	}
	switch len(records) {
	case 0:
		return nil, nil
	case 1:
		rec, err := dmarc.Parse(records[0])
		if err != nil {
			return nil, fmt.Errorf("_dmarc.%s: %s", domain, strings.TrimPrefix(err.Error(), "dmarc: "))
		}
		return rec, nil
	}
	return nil, fmt.Errorf("_dmarc.%s has %d DMARC records; it must have one", domain, len(records))
}

// shortError returns err's text without the library prefixes, for a reply.
func shortError(err error) string {
	if err == nil {
		return "no details"
	}
	s := err.Error()
	for _, p := range []string{"dkim: ", "dmarc: ", "spf: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// maxReplyText bounds the text of a reply line (RFC 5321 allows 512
// octets per reply line, code included).
const maxReplyText = 480

// replyText makes s safe for a reply line: printable ASCII only (domains
// and reasons come from the sender's DNS and headers), and short enough.
func replyText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > maxReplyText {
		b = append(b[:maxReplyText-3], "..."...)
	}
	return string(b)
}
