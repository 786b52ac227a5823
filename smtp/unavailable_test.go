package smtp

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
)

// TestAuthDatabaseDown: AUTH while the database is down (the store's
// EUNAVAILABLE, as a PostgreSQL server that is failing over gives) is a
// 451 4.3.0 that says to try again, not an internal error with an id;
// the failure counts against nobody, and AUTH works when the database is
// back. (cmd/securetextd's TestFailover takes RCPT and DATA through a real
// outage.)
func TestAuthDatabaseDown(t *testing.T) {
	var down atomic.Bool
	ts := newTestServerWith(t, nil, func(s *Server) {
		check := s.checkPassword
		s.checkPassword = func(ctx context.Context, user, pass string) (*securetextd.Sender, error) {
			if down.Load() {
				return nil, fmt.Errorf("store: authenticate sender: %w: %w",
					securetextd.Errorf(securetextd.EUNAVAILABLE, "The gateway's database is unreachable; try again later."),
					errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"))
			}
			return check(ctx, user, pass)
		}
	})
	down.Store(true)
	for range 3 {
		c, err := gosmtp.DialStartTLS(ts.addr, ts.tls)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Auth(sasl.NewPlainClient("", testAccount, testPassword))
		c.Close()
		wantCode(t, err, 451, "database is unreachable; try again later")
		if se := err.(*gosmtp.SMTPError); se.EnhancedCode != (gosmtp.EnhancedCode{4, 3, 0}) {
			t.Errorf("enhanced code %v, want 4.3.0", se.EnhancedCode)
		}
	}
	ts.mu.Lock()
	slept := len(ts.sleeps)
	ts.mu.Unlock()
	if slept != 0 {
		t.Errorf("%d delays: the outage counted as failed logins", slept)
	}
	down.Store(false)
	ts.dial(t) // logs in
}
