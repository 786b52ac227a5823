package smtp

import (
	"context"
	"io"
	"net"
	"net/netip"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dkim"
)

// maxDKIMSignatures bounds the signatures verified per message; each costs
// a DNS lookup and a hash of the body.
const maxDKIMSignatures = 5

// spfTimeout bounds a whole SPF evaluation (up to 10 DNS lookups).
const spfTimeout = 30 * time.Second

// dkimVerifier checks a message's DKIM signatures as it streams past: the
// message is written to it (an io.TeeReader in front of the MIME walk) and
// go-msgauth reads it from a pipe in a goroutine, hashing the body as it
// goes, so that a large message is never held in memory for it. A write
// blocks until the verifier has taken the bytes, which keeps the two in
// step; the verifier reads everything it is given, whatever it decides.
type dkimVerifier struct {
	pw     *io.PipeWriter
	cancel context.CancelFunc
	done   chan struct{}
	verifs []*dkim.Verification
	err    error
}

func startDKIM(r checkResolver) *dkimVerifier {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	v := &dkimVerifier{pw: pw, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(v.done)
		v.verifs, v.err = dkim.VerifyWithOptions(pr, &dkim.VerifyOptions{
			LookupTXT:        r.lookupTXTFunc(ctx),
			MaxVerifications: maxDKIMSignatures,
		})
		if v.err == dkim.ErrTooManySignatures {
			v.err = nil // the first ones were verified; one of them may pass
		}
		// With no signature, or after a failed key lookup, go-msgauth
		// stops reading: the rest must still be taken off the pipe.
		io.Copy(io.Discard, pr)
	}()
	return v
}

func (v *dkimVerifier) Write(p []byte) (int, error) { return v.pw.Write(p) }

// finish ends the message (readErr nil: it was complete; otherwise the
// key lookups under way are abandoned) and returns the verifications.
func (v *dkimVerifier) finish(readErr error) ([]*dkim.Verification, error) {
	if readErr != nil {
		v.cancel()
	}
	v.pw.CloseWithError(readErr)
	<-v.done
	v.cancel()
	return v.verifs, v.err
}

// spfCheck is an SPF evaluation running beside the DATA transfer.
type spfCheck struct {
	cancel context.CancelFunc
	done   chan struct{}
	result spf.Result
	err    error
}

// startSPF checks whether client may send for the MAIL FROM domain (the
// HELO name for the null sender), per RFC 7208.
func startSPF(r checkResolver, client netip.Addr, helo, mailFrom string) *spfCheck {
	ctx, cancel := context.WithTimeout(context.Background(), spfTimeout)
	c := &spfCheck{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.result, c.err = spf.CheckHostWithSender(net.IP(client.AsSlice()), helo, mailFrom,
			spf.WithResolver(r), spf.WithContext(ctx))
	}()
	return c
}

func (c *spfCheck) wait() (spf.Result, error) {
	<-c.done
	c.cancel()
	return c.result, c.err
}

// stop abandons the check and waits for its goroutine.
func (c *spfCheck) stop() {
	c.cancel()
	<-c.done
}
