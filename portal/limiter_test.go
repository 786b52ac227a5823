package portal

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
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
		// How long, in minutes, never a clock time in the server's zone.
		mustContain(t, "lockout", w.Body.String(), "Try again in 15 minutes.")
		mustNotContain(t, "lockout", w.Body.String(), "UTC", "00:15")
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
		time.Sleep(14*time.Minute + time.Second)
		if w := login(here, tokenA, password); w.Code != http.StatusTooManyRequests {
			t.Errorf("after 14 minutes: %d", w.Code)
		} else {
			mustContain(t, "lockout at its end", w.Body.String(), "Try again in 1 minute.")
		}
		time.Sleep(time.Minute - time.Second)
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

// TestLockoutOnLinkPage: the link itself says that signing in is paused,
// and for how long, before the patient types anything; reading it changes
// nothing, and a number without a password yet is asked to choose one.
func TestLockoutOnLinkPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, nil)
		f.login(phoneA)
		w := f.get("/m/" + tokenA)
		mustContain(t, "before", w.Body.String(), `action="/m/`+tokenA+`/login"`)
		for range 5 {
			f.post("/m/"+tokenA+"/login", url.Values{"password": {"not my password"}})
		}
		time.Sleep(3*time.Minute + 20*time.Second)
		f.st.Calls()
		for range 3 { // reading it again and again changes nothing
			w = f.get("/m/" + tokenA)
			if w.Code != http.StatusOK {
				t.Fatalf("link while locked: %d", w.Code)
			}
			mustContain(t, "link while locked", w.Body.String(),
				"Too many wrong tries", "signing in is paused", "Try again in 12 minutes.", `href="/reset"`)
			mustNotContain(t, "link while locked", w.Body.String(), `type="password"`, "UTC")
		}
		for _, c := range f.st.Calls() {
			if c != "ConversationByToken" && c != "Recipient" {
				t.Errorf("the link page called %s", c)
			}
		}
		// The same phone from elsewhere is paused too; another phone's
		// link from elsewhere is not.
		f.remote = "198.51.100.7:2000"
		mustContain(t, "same phone elsewhere", f.get("/m/"+tokenA).Body.String(), "Try again in 12 minutes.")
		f.login(phoneB)
		mustContain(t, "another phone elsewhere", f.get("/m/"+tokenB).Body.String(), `type="password"`)
		// A number that has no password yet is asked to choose one.
		f.remote = "192.0.2.1:1234"
		f.st.addConversation("+12125550177", "jane@clinic.example", "linkTokenCCCCCCCCCCCCC")
		mustContain(t, "setup from a locked address", f.get("/m/linkTokenCCCCCCCCCCCCC").Body.String(), "Choose a password")
		// After the window, the form is back.
		time.Sleep(12 * time.Minute)
		f.remote = "192.0.2.1:1234"
		mustContain(t, "after the window", f.get("/m/"+tokenA).Body.String(), `type="password"`)
	})
}

// TestResetEndsLockout: a patient locked out by wrong passwords resets the
// password through the emailed link, and logs in with the new one from the
// same phone at once.
func TestResetEndsLockout(t *testing.T) {
	f := newFixture(t, nil)
	f.login(phoneA)
	for range 5 {
		f.post("/m/"+tokenA+"/login", url.Values{"password": {"not my password"}})
	}
	if w := f.post("/m/"+tokenA+"/login", url.Values{"password": {password}}); w.Code != http.StatusTooManyRequests {
		t.Fatalf("not locked: %d", w.Code)
	}
	f.post("/reset", url.Values{"phone": {string(phoneA)}})
	token := f.st.mailedToken(phoneA)
	if token == "" {
		t.Fatal("no reset link mailed")
	}
	const newPassword = "a brand new long passphrase"
	w := f.post("/reset/"+token, url.Values{"password": {newPassword}, "confirm": {newPassword}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("reset: %d %s", w.Code, w.Body)
	}
	if w := f.get("/m/" + tokenA); strings.Contains(w.Body.String(), "Try again in") {
		t.Errorf("link page after the reset still paused")
	}
	if w := f.post("/m/"+tokenA+"/login", url.Values{"password": {newPassword}}); w.Code != http.StatusSeeOther {
		t.Errorf("login with the new password after a reset: %d, want 303", w.Code)
	}
}
