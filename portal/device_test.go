package portal

import (
	"net/http/httptest"
	"testing"
)

// TestDeviceOf: the account page names a browser and its system from the
// User-Agents patients' phones send, the borrowed tokens notwithstanding.
func TestDeviceOf(t *testing.T) {
	for _, tt := range []struct{ ua, want string }{
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", "Chrome on iPhone"},
		{"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
		{"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0", "Firefox on Android"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on Mac"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36", "Chrome on Linux"},
		{"curl/8.5.0", "A browser on an unknown system"},
		{"", "Unknown device"},
	} {
		if got := deviceOf(tt.ua); got != tt.want {
			t.Errorf("deviceOf(%q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

// TestSignInOf: the network of a sign-in is the /24 or the /48 of the
// client's address, with whether it is private; nothing is looked up.
func TestSignInOf(t *testing.T) {
	for _, tt := range []struct {
		remote, network string
		private         bool
	}{
		{"198.51.100.77:5555", "198.51.100.0/24", false},
		{"10.1.2.3:5555", "10.1.2.0/24", true},
		{"[2001:db8:1234:5678::1]:443", "2001:db8:1234::/48", false},
		{"[fd00:1:2:3::9]:443", "fd00:1:2::/48", true},
		{"[::ffff:192.0.2.9]:443", "192.0.2.0/24", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if in := signInOf(r); in.Network != tt.network || in.Private != tt.private {
			t.Errorf("%s: %+v, want %s private=%v", tt.remote, in, tt.network, tt.private)
		}
	}
}
