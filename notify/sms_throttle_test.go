package notify

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestVonageRetryAfter: Vonage throttles with an HTTP 429 and a
// Retry-After, or with status 1 in its JSON answer. Both are a
// *ThrottledError, temporary, carrying how long to wait when the answer
// says it.
func TestVonageRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		body       string
		want       time.Duration
	}{
		{"429 seconds", http.StatusTooManyRequests, "30", `{}`, 30 * time.Second},
		{"429 without Retry-After", http.StatusTooManyRequests, "", `{}`, 0},
		{"429 unreadable Retry-After", http.StatusTooManyRequests, "soon", `{}`, 0},
		{"429 longer than an hour", http.StatusTooManyRequests, "86400", `{}`, time.Hour},
		{"status 1", http.StatusOK, "", vonageReply("1", "Throttled"), 0},
		{"status 1 with Retry-After", http.StatusOK, "2", vonageReply("1", "Throttled"), 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer ts.Close()
			err := newTestVonage(t, ts.URL, 0).SendSMS(t.Context(), testPhone, testText)
			var te *ThrottledError
			if !errors.As(err, &te) || IsPermanent(err) {
				t.Fatalf("SendSMS = %v (%T), want a temporary *ThrottledError", err, err)
			}
			if te.After != tt.want {
				t.Errorf("After = %v, want %v", te.After, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		" 7 ":                           7 * time.Second,
		"-5":                            0,
		"Mon, 23 Nov 2026 10:01:30 GMT": 90 * time.Second,
		"Mon, 23 Nov 2026 09:00:00 GMT": 0, // in the past
		"99999999999":                   0, // not a 32-bit number of seconds
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}
