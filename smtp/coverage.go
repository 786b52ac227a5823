package smtp

// What a relayed message's check vouches for must be what the recipient
// sees. A DKIM signature verifies the header fields its h= tag lists,
// picking each name's instances from the bottom of the header up, and
// the body up to its l= length if it has one; a mail reader shows the top
// instance of a field, and the whole body. So a signed message could be
// replayed with a Subject: or Content-Type: added above the signed one,
// or text added after the signed body, and still verify. The relay's
// rules, for the fields in shownFields:
//
//  1. Each may appear at most once in the top-level header, whatever the
//     policy (RFC 5322 3.6 and RFC 2045 allow one). A message with two is
//     refused, 550 5.7.1. (Two From fields have their own reply, in
//     relayFrom.)
//  2. A DKIM signature counts as a pass only when its h= lists each of
//     them at least as many times as the header holds it: a signer that
//     lists a field once more than it uses ("oversigning") keeps any more
//     from being added. One that verifies but falls short is reported as
//     dkim=policy, and when no other check passes the message is refused
//     550 5.7.1 naming the field.
//  3. A signature with a body length (l=) is not a pass either: the text
//     after that length is unsigned. go-msgauth refuses every l= tag,
//     even one equal to the body's length; that is kept, as such a tag
//     buys the signer nothing.
//  4. When the message passes by SPF alone (policy "spf", or "dmarc"
//     without a covering signature) or by "trusted-network", there is no
//     signature whose coverage could fall short: the check vouches for the
//     server that sent it, not for fields, and that server is in
//     relay.trusted_networks. Rule 1 still holds.

import (
	"fmt"
	"strings"

	gosmtp "github.com/emersion/go-smtp"
)

// checkShownFields applies rule 1.
func checkShownFields(f *fieldCounts) error {
	name, n := f.duplicate()
	if n < 2 {
		return nil
	}
	return &gosmtp.SMTPError{
		Code:         550,
		EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
		Message: replyText(fmt.Sprintf("Message refused: it has %d %s: header fields; a message may have one (RFC 5322), "+
			"and a second one is how a signed message is altered in transit", n, name)),
	}
}

// isBodyLength reports whether a DKIM verification failed because the
// signature has an l= tag. go-msgauth has no exported error for it, only
// this text; TestRelayCoverage holds it to the library.
func isBodyLength(err error) bool {
	return err != nil && strings.Contains(err.Error(), "insecure body length tag")
}
