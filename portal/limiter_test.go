package portal

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestLockout counts wrong passwords per phone number and per client
// address, and lifts the lockout after the window, under a fake clock.
func TestLockout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, nil)
		f.login(phoneA)
		f.login(phoneB)
		login := func(addr, token, pw string) *httptest.ResponseRecorder {
			f.remote = addr
			return f.post("/m/"+token+"/login", url.Values{"password": {pw}})
		}
		const here, there = "192.0.2.1:1000", "198.51.100.7:2000"
		for i := 1; i <= 4; i++ {
			w := login(here, tokenA, "not my password")
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("wrong password %d: %d", i, w.Code)
			}
			if left := 5 - i; left <= 2 {
				mustContain(t, "tries left", w.Body.String(), strconv.Itoa(left)+" tr")
			}
		}
		w := login(here, tokenA, "not my password")
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("fifth wrong password: %d", w.Code)
		}
		// synctest's clock starts at midnight UTC on 1 January 2000.
		mustContain(t, "lockout", w.Body.String(), "Try again after", "00:15 UTC on Saturday 1 January", `datetime="2000-01-01T00:15:00Z"`)
		if w.Header().Get("Retry-After") != "900" {
			t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
		}
		for _, tc := range []struct {
			name, addr, token string
			code              int
		}{
			{"right password, same phone and address", here, tokenA, http.StatusTooManyRequests},
			{"same phone from elsewhere", there, tokenA, http.StatusTooManyRequests},
			{"another phone from the same address", here, tokenB, http.StatusTooManyRequests},
			{"another phone from elsewhere", there, tokenB, http.StatusSeeOther},
		} {
			if w := login(tc.addr, tc.token, password); w.Code != tc.code {
				t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.code)
			}
		}
		time.Sleep(14 * time.Minute)
		if w := login(here, tokenA, password); w.Code != http.StatusTooManyRequests {
			t.Errorf("after 14 minutes: %d", w.Code)
		}
		time.Sleep(time.Minute)
		if w := login(here, tokenA, password); w.Code != http.StatusSeeOther {
			t.Errorf("after the window: %d", w.Code)
		}
	})
}

// TestLockedLoginNeverChecksThePassword: while locked, the store is not
// asked, so a right guess cannot be told from a wrong one.
func TestLockedLoginNeverChecksThePassword(t *testing.T) {
	f := newFixture(t, nil)
	f.login(phoneA)
	for range 5 {
		f.post("/m/"+tokenA+"/login", url.Values{"password": {"guess guess guess"}})
	}
	f.st.Calls()
	f.post("/m/"+tokenA+"/login", url.Values{"password": {password}})
	for _, c := range f.st.Calls() {
		if c == "AuthenticateRecipient" || c == "CreateSession" {
			t.Errorf("locked login called %s", c)
		}
	}
}

func TestIdleTimeoutAndLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, nil)
		c := f.login(phoneA)
		for i := range 3 {
			if w := f.get("/c/1", c); w.Code != 200 {
				t.Fatalf("active %d: %d", i, w.Code)
			}
			time.Sleep(14 * time.Minute)
		}
		time.Sleep(2 * time.Minute)
		if w := f.get("/c/1", c); w.Code != http.StatusNotFound {
			t.Errorf("after 16 idle minutes: %d", w.Code)
		}
		mustContain(t, "link after idle", f.get("/m/"+tokenA, c).Body.String(), "Enter your password")

		c = f.login(phoneA)
		start := time.Now()
		for time.Since(start) < 12*time.Hour {
			if w := f.get("/c/1", c); w.Code != 200 {
				t.Fatalf("after %v: %d", time.Since(start), w.Code)
			}
			time.Sleep(10 * time.Minute)
		}
		time.Sleep(time.Minute)
		if w := f.get("/c/1", c); w.Code != http.StatusNotFound {
			t.Errorf("after 12 active hours: %d", w.Code)
		}
	})
}

func TestLimiterStaysBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(3, time.Minute, 100)
	for range 3 {
		l.strike(now, "victim")
	}
	for i := range 1000 {
		l.strike(now.Add(time.Duration(i)*time.Millisecond), "k"+strconv.Itoa(i))
	}
	if len(l.keys) > 100 {
		t.Errorf("%d keys kept", len(l.keys))
	}
	if l.lockedUntil(now.Add(time.Second), "victim").IsZero() {
		t.Error("a flood of keys lifted a lockout")
	}
	// Quiet keys are swept once their window has passed.
	l.strike(now.Add(time.Hour), "late")
	if len(l.keys) != 1 {
		t.Errorf("%d keys after an hour", len(l.keys))
	}
}

func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.1:443":                   "192.0.2.1",
		"[::ffff:192.0.2.1]:443":          "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443":      "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:ffff:0:1]:80": "2001:db8:1:2::/64",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		if got := clientKey(r); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}
