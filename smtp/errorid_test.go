package smtp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
)

// lockedBuffer is a log that the server writes and the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInternalErrorID: an internal error reaches a real SMTP client as a
// 451 4.3.0 whose error id has the one shape of every transport
// (securetextd.IsErrorID), is new each time, and is the id the log files
// the details under; the reply holds nothing of the error.
func TestInternalErrorID(t *testing.T) {
	logs := &lockedBuffer{}
	const secret = "dial 10.9.8.7:5432 as gateway password=hunter2"
	ts := newTestServerWith(t, nil, func(s *Server) {
		s.logger = slog.New(slog.NewTextHandler(logs, nil))
		s.checkPassword = func(context.Context, string, string) (*securetextd.Sender, error) {
			return nil, errors.New(secret)
		}
	})
	idRE := regexp.MustCompile(`\(error id ([^)]*)\)`)
	var ids []string
	for range 2 {
		c, err := gosmtp.DialStartTLS(ts.addr, ts.tls)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Auth(sasl.NewPlainClient("", testAccount, testPassword))
		c.Close()
		var se *gosmtp.SMTPError
		if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (gosmtp.EnhancedCode{4, 3, 0}) {
			t.Fatalf("AUTH: %v, want 451 4.3.0", err)
		}
		m := idRE.FindStringSubmatch(se.Message)
		if m == nil || !securetextd.IsErrorID(m[1]) {
			t.Fatalf("reply %q: no error id of the shape", se.Message)
		}
		if strings.Contains(se.Message, "hunter2") || strings.Contains(se.Message, "10.9.8.7") {
			t.Errorf("the reply tells the error: %q", se.Message)
		}
		if !strings.Contains(logs.String(), "error_id="+m[1]) {
			t.Errorf("no log line under error id %s:\n%s", m[1], logs)
		}
		ids = append(ids, m[1])
	}
	if ids[0] == ids[1] {
		t.Errorf("two failures, one error id %s", ids[0])
	}
}
