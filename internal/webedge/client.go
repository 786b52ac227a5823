package webedge

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Who is the client? Behind a reverse proxy every connection comes from
// the proxy, so every per-address limit (the lockout, the reset limit,
// the audit-flood limit) and the audit trail's client field would name the
// proxy: one attacker's wrong passwords would lock out every patient. The
// proxy names the client in a header, but anyone can send that header, so
// it is believed only from a peer inside the configured trusted networks
// (portal.trusted_proxies, console.trusted_proxies), and even then only as far as the chain of
// trusted hops goes: each proxy appends the address it saw, so the
// rightmost address that is not itself a trusted proxy is the first one
// nobody could forge. Anything left of it is the client's own say.
//
// ResolveClient works this out once per request and puts it in the
// request's context; everything else asks clientAddr or clientKey.

// maxForwardedHops bounds how many entries of a forwarding header are
// looked at, from the right. A longer run of trusted proxies than this is
// not a deployment but a header stuffed by someone: the peer is used.
const maxForwardedHops = 16

// maxForwardedBytes bounds how much of a forwarding header is read. The
// server's header limit bounds it anyway; this keeps the parse small
// whatever that limit is.
const maxForwardedBytes = 8 << 10

// clientContextKey keys the request's client in its context.
type clientContextKey struct{}

// client is a request's client as resolved by ResolveClient.
type client struct {
	addr netip.Addr // invalid when the peer's address could not be read
	raw  string     // the peer's address as given, then
}

// ResolveClient returns next with the client's address of every request
// resolved once and kept in its context: the peer's address, or, when the
// peer is inside trusted, the address the forwarding headers
// (X-Forwarded-For, or RFC 7239's Forwarded) name as explained above.
// Headers it cannot make sense of (unparsable entries, too many hops, two
// headers that disagree) are ignored and the peer's address is used. A
// request already resolved (a handler nested in another that resolved
// it) is passed on as it is.
func ResolveClient(trusted []netip.Prefix, next http.Handler) http.Handler {
	trusted = append([]netip.Prefix(nil), trusted...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Value(clientContextKey{}).(client); ok {
			next.ServeHTTP(w, r)
			return
		}
		c := resolveClient(r.RemoteAddr, r.Header, trusted)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientContextKey{}, c)))
	})
}

// clientOf returns the request's resolved client, or its peer when no
// ResolveClient ran.
func clientOf(r *http.Request) client {
	if c, ok := r.Context().Value(clientContextKey{}).(client); ok {
		return c
	}
	return peerOf(r.RemoteAddr)
}

// ClientIP is the client's IP address, not valid when the peer's address
// could not be read (a unix socket, say).
func ClientIP(r *http.Request) netip.Addr { return clientOf(r).addr }

// ClientAddr is the client's IP address as the audit trail keeps it: the
// whole address.
func ClientAddr(r *http.Request) string {
	c := clientOf(r)
	if !c.addr.IsValid() {
		return c.raw
	}
	return c.addr.String()
}

// ClientKey names the client for rate limits: the IPv4 address, or the
// /64 an IPv6 client can pick addresses from at will.
func ClientKey(r *http.Request) string {
	c := clientOf(r)
	switch {
	case !c.addr.IsValid():
		return c.raw
	case c.addr.Is6():
		p, _ := c.addr.Prefix(64)
		return p.String()
	}
	return c.addr.String()
}

// peerOf reads a RemoteAddr ("192.0.2.1:443", "[2001:db8::1]:443").
func peerOf(remote string) client {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return client{raw: host}
	}
	return client{addr: a.Unmap()}
}

// resolveClient is ResolveClient's decision for one request.
func resolveClient(remote string, h http.Header, trusted []netip.Prefix) client {
	peer := peerOf(remote)
	if !peer.addr.IsValid() || !isTrusted(peer.addr, trusted) {
		return peer
	}
	xff, xffState := fromXForwardedFor(h.Values("X-Forwarded-For"), trusted)
	fwd, fwdState := fromForwarded(h.Values("Forwarded"), trusted)
	switch {
	case xffState == hopsBad || fwdState == hopsBad:
		return peer
	case xffState == hopsFound && fwdState == hopsFound:
		// A proxy that writes one header passes the other through as the
		// client sent it: when they disagree, neither can be believed.
		if xff != fwd {
			return peer
		}
		return client{addr: xff}
	case xffState == hopsFound:
		return client{addr: xff}
	case fwdState == hopsFound:
		return client{addr: fwd}
	}
	return peer
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hopsState is what a forwarding header said.
type hopsState int

const (
	hopsAbsent hopsState = iota // no such header
	hopsFound                   // an address
	hopsBad                     // something that cannot be believed
)

// walker decides, hop by hop from the right, which address a forwarding
// header names: the first that is not a trusted proxy, or, when every hop
// is one, the leftmost (a client inside the trusted networks itself). An
// entry that is not an address ("unknown", an obfuscated name, garbage)
// met on the way, or more trusted hops than maxForwardedHops, make the
// header bad.
type walker struct {
	trusted []netip.Prefix
	hops    int
	last    netip.Addr
	state   hopsState
}

// hop takes the next entry leftwards and reports whether the walk is over.
func (w *walker) hop(entry string) (done bool) {
	w.hops++
	a, ok := parseNode(entry)
	if !ok || w.hops > maxForwardedHops {
		w.state = hopsBad
		return true
	}
	w.last = a
	if !isTrusted(a, w.trusted) {
		w.state = hopsFound
		return true
	}
	return false
}

// result is the walk's answer once the entries ran out or it ended.
func (w *walker) result() (netip.Addr, hopsState) {
	switch {
	case w.state != hopsAbsent:
		return w.last, w.state
	case w.hops == 0:
		return netip.Addr{}, hopsBad // the header was there, and empty
	}
	return w.last, hopsFound // every hop a trusted proxy
}

// fromXForwardedFor reads X-Forwarded-For ("client, proxy1, proxy2";
// several header lines are one list) from the right, so that whatever a
// client put on the left of the first untrusted hop is never even read.
func fromXForwardedFor(values []string, trusted []netip.Prefix) (netip.Addr, hopsState) {
	if len(values) == 0 {
		return netip.Addr{}, hopsAbsent
	}
	w := walker{trusted: trusted}
	read := 0
	for v := len(values) - 1; v >= 0; v-- {
		s := values[v]
		for {
			i := strings.LastIndexByte(s, ',')
			if read += len(s) - i; read > maxForwardedBytes {
				return netip.Addr{}, hopsBad
			}
			// An empty list element is allowed, and means nothing.
			if entry := strings.TrimSpace(s[i+1:]); entry != "" && w.hop(entry) {
				return w.result()
			}
			if i < 0 {
				break
			}
			s = s[:i]
		}
	}
	return w.result()
}

// fromForwarded reads RFC 7239's Forwarded header and walks the for=
// values of its elements from the right.
func fromForwarded(values []string, trusted []netip.Prefix) (netip.Addr, hopsState) {
	hs := forwardedElements(values)
	if !hs.present {
		return netip.Addr{}, hopsAbsent
	}
	if hs.bad {
		return netip.Addr{}, hopsBad
	}
	w := walker{trusted: trusted}
	for i := len(hs.nodes) - 1; i >= 0; i-- {
		if w.hop(hs.nodes[i]) {
			break
		}
	}
	return w.result()
}

// hops is the for= values of a Forwarded header, rightmost last: at most
// the rightmost 2*maxForwardedHops, which is more than a walk reads.
type hops struct {
	present bool
	bad     bool
	nodes   []string
}

// forwardedElements reads RFC 7239's Forwarded header
// ("for=192.0.2.60;proto=https, for=\"[2001:db8::1]:4711\"") into the for=
// value of each element, rightmost last. Quoted strings are read as
// quoted strings (a comma inside one does not end an element); an element
// without for=, or a header that does not follow the grammar, makes it
// bad. It reads left to right, so it reads at most maxForwardedBytes and
// keeps only the rightmost entries.
func forwardedElements(values []string) hops {
	hs := hops{present: len(values) > 0}
	total := 0
	for _, v := range values {
		if total += len(v); total > maxForwardedBytes {
			hs.bad = true
			return hs
		}
		p := fwdParser{s: v}
		for {
			forValue, ok := p.element()
			if !ok {
				hs.bad = true
				return hs
			}
			if forValue != "" || !p.emptyElement {
				if forValue == "" {
					hs.bad = true // a hop that did not say whom it saw
					return hs
				}
				hs.nodes = append(hs.nodes, forValue)
				if len(hs.nodes) > 2*maxForwardedHops {
					hs.nodes = append(hs.nodes[:0], hs.nodes[len(hs.nodes)-maxForwardedHops-1:]...)
				}
			}
			if p.done() {
				break
			}
		}
	}
	return hs
}

// fwdParser reads one Forwarded header value, element by element.
type fwdParser struct {
	s            string
	i            int
	emptyElement bool // the last element read was empty (",,")
}

func (p *fwdParser) done() bool { return p.i >= len(p.s) }

func (p *fwdParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// element reads one element (pairs separated by ";") and the comma after
// it, and returns its for= value, "" when it has none.
func (p *fwdParser) element() (forValue string, ok bool) {
	p.emptyElement = true
	for {
		p.skipSpace()
		if p.done() {
			return forValue, true
		}
		if p.s[p.i] == ',' {
			p.i++
			return forValue, true
		}
		p.emptyElement = false
		name := p.token()
		p.skipSpace()
		if name == "" || p.done() || p.s[p.i] != '=' {
			return "", false
		}
		p.i++
		p.skipSpace()
		value, ok := p.value()
		if !ok {
			return "", false
		}
		if strings.EqualFold(name, "for") {
			if forValue != "" {
				return "", false // two for= in one element
			}
			if value == "" {
				return "", false
			}
			forValue = value
		}
		p.skipSpace()
		if !p.done() && p.s[p.i] == ';' {
			p.i++
			continue
		}
		if !p.done() && p.s[p.i] != ',' {
			return "", false
		}
	}
}

// token reads an RFC 9110 token.
func (p *fwdParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted string (its escapes undone).
func (p *fwdParser) value() (string, bool) {
	if p.done() || p.s[p.i] != '"' {
		v := p.token()
		return v, v != ""
	}
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			return b.String(), true
		case c == '\\':
			if p.i >= len(p.s) {
				return "", false
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false // unterminated
}

func isTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseNode reads one hop's address: "192.0.2.60", "192.0.2.60:4711",
// "[2001:db8::1]", "[2001:db8::1]:4711", or a bare "2001:db8::1" (as
// X-Forwarded-For writes it). "unknown", obfuscated names ("_hidden"),
// zones and anything else are not addresses.
func parseNode(s string) (netip.Addr, bool) {
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			if port[0] != ':' {
				return netip.Addr{}, false
			}
			port = port[1:]
			if port == "" {
				return netip.Addr{}, false
			}
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
		if port == "" {
			return netip.Addr{}, false
		}
	}
	if port != "" && !validNodePort(port) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	if strings.HasPrefix(s, "[") && !a.Is6() {
		return netip.Addr{}, false // "[192.0.2.1]" is no address form
	}
	return a.Unmap(), true
}

// validNodePort accepts RFC 7239's node-port: 1 to 5 digits, or an
// obfuscated port ("_" and letters, digits, ".", "_", "-").
func validNodePort(s string) bool {
	if s[0] == '_' {
		for _, c := range []byte(s[1:]) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
		return len(s) > 1
	}
	if len(s) > 5 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
