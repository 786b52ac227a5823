package webedge

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// TestResolveClient: the forwarding headers are believed only from a
// trusted proxy, and only as far as the trusted hops go; whatever cannot
// be believed falls back to the peer.
func TestResolveClient(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
	}
	const proxy = "127.0.0.1:40000"
	for _, tc := range []struct {
		name   string
		peer   string
		header [][2]string
		want   string
	}{
		{"untrusted peer, no header", "192.0.2.1:1234", nil, "192.0.2.1"},
		{"untrusted peer's X-Forwarded-For is ignored", "192.0.2.1:1234",
			[][2]string{{"X-Forwarded-For", "198.51.100.7"}}, "192.0.2.1"},
		{"untrusted peer's Forwarded is ignored", "192.0.2.1:1234",
			[][2]string{{"Forwarded", "for=198.51.100.7"}}, "192.0.2.1"},
		{"trusted peer without a header", proxy, nil, "127.0.0.1"},
		{"trusted peer, one hop", proxy,
			[][2]string{{"X-Forwarded-For", "198.51.100.7"}}, "198.51.100.7"},
		{"spoofed entries on the left are not believed", proxy,
			[][2]string{{"X-Forwarded-For", "203.0.113.66, 192.0.2.99,198.51.100.7"}}, "198.51.100.7"},
		{"garbage on the left is never read", proxy,
			[][2]string{{"X-Forwarded-For", "<script>, unknown, " + strings.Repeat("x", 20000) + ", 198.51.100.7"}}, "198.51.100.7"},
		{"trusted hops are skipped", proxy,
			[][2]string{{"X-Forwarded-For", "203.0.113.66, 198.51.100.7, 10.1.2.3, 10.9.9.9"}}, "198.51.100.7"},
		{"several header lines are one list", proxy,
			[][2]string{{"X-Forwarded-For", "203.0.113.66"}, {"X-Forwarded-For", "198.51.100.7, 10.1.2.3"}}, "198.51.100.7"},
		{"all hops trusted: the leftmost", proxy,
			[][2]string{{"X-Forwarded-For", "10.1.2.3, 10.9.9.9"}}, "10.1.2.3"},
		{"empty list elements", proxy,
			[][2]string{{"X-Forwarded-For", " , 198.51.100.7 ,,"}}, "198.51.100.7"},
		{"with a port", proxy,
			[][2]string{{"X-Forwarded-For", "198.51.100.7:5555"}}, "198.51.100.7"},
		{"bare IPv6", proxy,
			[][2]string{{"X-Forwarded-For", "2001:db8:1:2::7"}}, "2001:db8:1:2::7"},
		{"bracketed IPv6 with a port", proxy,
			[][2]string{{"X-Forwarded-For", "[2001:db8:1:2::7]:443"}}, "2001:db8:1:2::7"},
		{"IPv4-mapped IPv6", proxy,
			[][2]string{{"X-Forwarded-For", "::ffff:198.51.100.7"}}, "198.51.100.7"},
		{"trusted IPv6 proxy hop", proxy,
			[][2]string{{"X-Forwarded-For", "198.51.100.7, 2001:db8:ffff:1::1"}}, "198.51.100.7"},
		{"IPv6 peer inside the trusted networks", "[2001:db8:ffff::9]:443",
			[][2]string{{"X-Forwarded-For", "198.51.100.7"}}, "198.51.100.7"},
		{"IPv4-mapped peer", "[::ffff:127.0.0.1]:443",
			[][2]string{{"X-Forwarded-For", "198.51.100.7"}}, "198.51.100.7"},

		{"garbage right of the client: the peer", proxy,
			[][2]string{{"X-Forwarded-For", "198.51.100.7, not-an-address"}}, "127.0.0.1"},
		{"unknown: the peer", proxy,
			[][2]string{{"X-Forwarded-For", "unknown"}}, "127.0.0.1"},
		{"empty header: the peer", proxy,
			[][2]string{{"X-Forwarded-For", ""}}, "127.0.0.1"},
		{"a zone: the peer", proxy,
			[][2]string{{"X-Forwarded-For", "fe80::1%eth0"}}, "127.0.0.1"},
		{"a bracketed IPv4: the peer", proxy,
			[][2]string{{"X-Forwarded-For", "[198.51.100.7]"}}, "127.0.0.1"},
		{"a bad port: the peer", proxy,
			[][2]string{{"X-Forwarded-For", "198.51.100.7:http"}}, "127.0.0.1"},
		{"too many trusted hops: the peer", proxy,
			[][2]string{{"X-Forwarded-For", "198.51.100.7" + strings.Repeat(", 10.0.0.1", maxForwardedHops)}}, "127.0.0.1"},
		{"just enough trusted hops", proxy,
			[][2]string{{"X-Forwarded-For", "198.51.100.7" + strings.Repeat(", 10.0.0.1", maxForwardedHops-1)}}, "198.51.100.7"},
		{"a huge header: the peer", proxy,
			[][2]string{{"X-Forwarded-For", strings.Repeat("1", maxForwardedBytes+1)}}, "127.0.0.1"},

		{"Forwarded", proxy,
			[][2]string{{"Forwarded", "for=198.51.100.7"}}, "198.51.100.7"},
		{"Forwarded, case and parameters", proxy,
			[][2]string{{"Forwarded", `For="198.51.100.7:4711";proto=https;by=10.0.0.1`}}, "198.51.100.7"},
		{"Forwarded, quoted IPv6 with a port", proxy,
			[][2]string{{"Forwarded", `for="[2001:db8::1]:1234"`}}, "2001:db8::1"},
		{"Forwarded, quoted IPv6", proxy,
			[][2]string{{"Forwarded", `for="[2001:db8::1]"`}}, "2001:db8::1"},
		{"Forwarded, chain with spoofed left", proxy,
			[][2]string{{"Forwarded", `for=203.0.113.66, for=198.51.100.7;proto=https, for=10.1.2.3`}}, "198.51.100.7"},
		{"Forwarded, a comma in a quoted string", proxy,
			[][2]string{{"Forwarded", `for=203.0.113.66;host="a,b", for=198.51.100.7`}}, "198.51.100.7"},
		{"Forwarded, obfuscated port", proxy,
			[][2]string{{"Forwarded", `for="198.51.100.7:_abc"`}}, "198.51.100.7"},
		{"Forwarded, unknown: the peer", proxy,
			[][2]string{{"Forwarded", "for=unknown"}}, "127.0.0.1"},
		{"Forwarded, obfuscated node: the peer", proxy,
			[][2]string{{"Forwarded", "for=_hidden"}}, "127.0.0.1"},
		{"Forwarded, unquoted IPv6 with a port: the peer", proxy,
			[][2]string{{"Forwarded", "for=[2001:db8::1]:1234"}}, "127.0.0.1"},
		{"Forwarded, unterminated quote: the peer", proxy,
			[][2]string{{"Forwarded", `for="198.51.100.7`}}, "127.0.0.1"},
		{"Forwarded, a hop without for=: the peer", proxy,
			[][2]string{{"Forwarded", "for=198.51.100.7, proto=https"}}, "127.0.0.1"},
		{"Forwarded, two for= in one element: the peer", proxy,
			[][2]string{{"Forwarded", "for=198.51.100.7;for=203.0.113.66"}}, "127.0.0.1"},
		{"Forwarded, no value: the peer", proxy,
			[][2]string{{"Forwarded", "for="}}, "127.0.0.1"},
		{"Forwarded, garbage: the peer", proxy,
			[][2]string{{"Forwarded", "\x00\xff;;=,"}}, "127.0.0.1"},
		{"Forwarded, a huge header: the peer", proxy,
			[][2]string{{"Forwarded", strings.Repeat("for=10.0.0.1,", maxForwardedBytes/13+1)}}, "127.0.0.1"},
		{"Forwarded, many hops: the rightmost", proxy,
			[][2]string{{"Forwarded", strings.Repeat("for=203.0.113.1,", 200) + "for=198.51.100.7"}}, "198.51.100.7"},

		{"both headers agree", proxy,
			[][2]string{{"X-Forwarded-For", "198.51.100.7"}, {"Forwarded", "for=198.51.100.7"}}, "198.51.100.7"},
		{"both headers disagree: the peer", proxy,
			[][2]string{{"X-Forwarded-For", "198.51.100.7"}, {"Forwarded", "for=203.0.113.66"}}, "127.0.0.1"},
		{"a good header and a bad one: the peer", proxy,
			[][2]string{{"X-Forwarded-For", "198.51.100.7"}, {"Forwarded", "for=unknown"}}, "127.0.0.1"},

		{"an unreadable peer is kept as it is", "pipe", [][2]string{{"X-Forwarded-For", "198.51.100.7"}}, "pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, kv := range tc.header {
				h.Add(kv[0], kv[1])
			}
			c := resolveClient(tc.peer, h, trusted)
			got := c.raw
			if c.addr.IsValid() {
				got = c.addr.String()
			}
			if got != tc.want {
				t.Errorf("client %q, want %q", got, tc.want)
			}
		})
	}
}

// TestResolveClientOnce: the middleware puts the address in the context,
// the audit trail and the limits read it from there, and a second
// ResolveClient (the portal's own, inside cmd's) leaves it alone.
func TestResolveClientOnce(t *testing.T) {
	var addr, key string
	inner := ResolveClient(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, key = ClientAddr(r), ClientKey(r)
	}))
	h := ResolveClient([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, inner)
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	r.Header.Set("X-Forwarded-For", "2001:db8:1:2:3:4:5:6")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if addr != "2001:db8:1:2:3:4:5:6" || key != "2001:db8:1:2::/64" {
		t.Errorf("client %q, key %q", addr, key)
	}
}

func FuzzResolveClient(f *testing.F) {
	f.Add("198.51.100.7, 10.0.0.1", `for="[2001:db8::1]:1234";proto=https`)
	f.Add("", "for=unknown, for=_x")
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		h := http.Header{"X-Forwarded-For": {xff}, "Forwarded": {fwd}}
		c := resolveClient("127.0.0.1:1", h, trusted)
		if !c.addr.IsValid() {
			t.Fatalf("no address for %q %q", xff, fwd)
		}
		if c.addr.Zone() != "" || c.addr.Is4In6() {
			t.Fatalf("address %v", c.addr)
		}
	})
}
