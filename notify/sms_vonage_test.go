package notify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

const (
	testKey    = "abcd1234"
	testSecret = "s3cr3t-s3cr3t"
	testPhone  = securetextd.Phone("+12125550123")
	testText   = "Acme: you have a secure message. Open https://s.example/m/SECRETTOKEN123"
)

// fakeVonage speaks the wire format of Vonage's SMS API: POST /sms/json
// with a form, answered with JSON.
type fakeVonage struct {
	*httptest.Server
	mu    sync.Mutex
	forms []url.Values
}

// newFakeVonage starts a server that answers every send with status and
// body. A status of 200 writes body as JSON.
func newFakeVonage(t *testing.T, status int, body string) *fakeVonage {
	f := &fakeVonage{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/sms/json" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.forms = append(f.forms, r.PostForm)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(f.Close)
	return f
}

func vonageReply(status, errorText string) string {
	if status == "0" {
		return `{"message-count":"1","messages":[{"to":"12125550123","message-id":"0A0000000123ABCD1",` +
			`"status":"0","remaining-balance":"3.14159265","message-price":"0.03330000","network":"12345"}]}`
	}
	return `{"message-count":"1","messages":[{"status":"` + status + `","error-text":"` + errorText + `"}]}`
}

func newTestVonage(t *testing.T, baseURL string, timeout time.Duration) *Vonage {
	t.Helper()
	v, err := NewVonage(VonageConfig{
		APIKey: testKey, APISecret: testSecret, From: "AcmeClinic",
		BaseURL: baseURL, Timeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVonageSuccess(t *testing.T) {
	f := newFakeVonage(t, http.StatusOK, vonageReply("0", ""))
	v := newTestVonage(t, f.URL+"/", 0) // the trailing slash is dropped
	if err := v.SendSMS(t.Context(), testPhone, testText); err != nil {
		t.Fatalf("SendSMS: %v", err)
	}
	if len(f.forms) != 1 {
		t.Fatalf("server got %d requests, want 1", len(f.forms))
	}
	want := map[string]string{
		"api_key":    testKey,
		"api_secret": testSecret,
		"from":       "AcmeClinic",
		"to":         "12125550123",
		"text":       testText,
	}
	for k, v := range want {
		if got := f.forms[0].Get(k); got != v {
			t.Errorf("form field %s = %q, want %q", k, got, v)
		}
	}
}

func TestVonageErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		permanent bool
		want      string
	}{
		{"throttled", http.StatusOK, vonageReply("1", "Throttled"), false, "status 1: Throttled"},
		{"bad credentials", http.StatusOK, vonageReply("4", "Bad Credentials"), true, "status 4: Bad Credentials"},
		{"invalid message", http.StatusOK, vonageReply("6", "Invalid Message"), true, "status 6: Invalid Message"},
		{"vonage internal", http.StatusOK, vonageReply("5", "Internal Error"), false, "status 5: Internal Error"},
		{"http 500", http.StatusInternalServerError, `{}`, false, "500"},
		{"http 503", http.StatusServiceUnavailable, `{}`, false, "503"},
		{"http 401", http.StatusUnauthorized, `{}`, true, "401"},
		{"http 429", http.StatusTooManyRequests, `{}`, false, "429"},
		{"no messages", http.StatusOK, `{"message-count":"0","messages":[]}`, false, "no messages"},
		{"no messages key", http.StatusOK, `{}`, false, "no messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVonage(t, tt.status, tt.body)
			err := newTestVonage(t, f.URL, 0).SendSMS(t.Context(), testPhone, testText)
			if err == nil {
				t.Fatal("SendSMS = nil, want an error")
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent(%q) = %v, want %v", err, !tt.permanent, tt.permanent)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "SECRETTOKEN") || strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q quotes the text or the secret", err)
			}
		})
	}
}

// hangingServer accepts requests and never answers them, until the client
// gives up. (The server notices the client leaving only once the request
// body has been read.)
func hangingServer(t *testing.T) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestVonageTimeout(t *testing.T) {
	ts := hangingServer(t)
	v := newTestVonage(t, ts.URL, 100*time.Millisecond)
	start := time.Now()
	err := v.SendSMS(t.Context(), testPhone, testText)
	if err == nil || IsPermanent(err) {
		t.Fatalf("SendSMS = %v, want a temporary error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("SendSMS took %v with a 100ms timeout", d)
	}
}

func TestVonageContextCancel(t *testing.T) {
	ts := hangingServer(t)
	v := newTestVonage(t, ts.URL, time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := v.SendSMS(ctx, testPhone, testText)
	if err == nil || IsPermanent(err) {
		t.Fatalf("SendSMS = %v, want a temporary error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SendSMS = %v, want it to wrap context.DeadlineExceeded", err)
	}
}

func TestVonageBadNumber(t *testing.T) {
	f := newFakeVonage(t, http.StatusOK, vonageReply("0", ""))
	err := newTestVonage(t, f.URL, 0).SendSMS(t.Context(), "+12345", testText)
	if !IsPermanent(err) {
		t.Errorf("SendSMS to a 5-digit number = %v, want a permanent error", err)
	}
	if len(f.forms) != 0 {
		t.Errorf("server got %d requests, want none", len(f.forms))
	}
}

func TestNewVonageValidates(t *testing.T) {
	good := VonageConfig{APIKey: testKey, APISecret: testSecret, From: "Acme"}
	tests := []struct {
		name string
		edit func(*VonageConfig)
		want string
	}{
		{"short key", func(c *VonageConfig) { c.APIKey = "abc12" }, "8 characters"},
		{"long key", func(c *VonageConfig) { c.APIKey = "abcd12345" }, "8 characters"},
		{"no secret", func(c *VonageConfig) { c.APISecret = "" }, "secret"},
		{"no from", func(c *VonageConfig) { c.From = "" }, "from"},
		{"bad url", func(c *VonageConfig) { c.BaseURL = "rest.nexmo.com" }, "base url"},
	}
	if _, err := NewVonage(good); err != nil {
		t.Fatalf("NewVonage(good) = %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			_, err := NewVonage(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewVonage = %v, want an error about %s", err, tt.want)
			}
		})
	}
}
