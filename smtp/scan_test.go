package smtp

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd/clamd"
	"github.com/securetextd/securetextd/internal/clamdtest"
	"github.com/securetextd/securetextd/internal/storetest"
)

// scanningServer is a submission server whose store scans with the
// clamd at addr.
func scanningServer(t *testing.T, addr string, failOpen bool) *testServer {
	t.Helper()
	c, err := clamd.New(addr, 10*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return newTestServerWith(t, func(c *Config) { c.MaxMessageBytes = 8 << 20 }, func(s *Server) {
		s.db.Scanner, s.db.ScanFailOpen = c, failOpen
	})
}

// attachmentMail is a message from the test account with a text and the
// given files, each base64-encoded.
func attachmentMail(files map[string][]byte, order ...string) []byte {
	var b bytes.Buffer
	b.WriteString("From: " + testAccount + "\r\nSubject: Your results\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nYour results are attached.\r\n")
	for _, name := range order {
		b.WriteString("--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" +
			"Content-Disposition: attachment; filename=\"" + name + "\"\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(files[name])
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--B--\r\n")
	return b.Bytes()
}

func sendMail(t *testing.T, ts *testServer, msg []byte) error {
	t.Helper()
	c := ts.dial(t)
	return c.SendMail(testAccount, []string{"2125550123@secure.text"}, bytes.NewReader(msg))
}

// TestScanRefusesMalware sends the EICAR file, and the test-made sample
// (found by its hash, so only if the scanner got the whole decoded file),
// after a clean 2 MiB file: 554 5.7.1 naming what was found and the file,
// and nothing stored, not even the clean file's pending blobs. A clean
// message goes through.
func TestScanRefusesMalware(t *testing.T) {
	ts := scanningServer(t, clamdtest.Shared(t).Addr(), false)
	clean := make([]byte, 2<<20)
	rand.Read(clean)
	for _, tc := range []struct {
		name, file string
		content    []byte
		found      string
	}{
		{"eicar", "eicar.com", clamdtest.EICAR(), clamdtest.EICARName},
		{"sample", "résultats.bin", clamdtest.Sample(), clamdtest.SampleName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sendMail(t, ts, attachmentMail(map[string][]byte{"scan.pdf": clean, tc.file: tc.content}, "scan.pdf", tc.file))
			wantCode(t, err, 554, "malware found ("+tc.found+")")
			se := err.(*gosmtp.SMTPError)
			if se.EnhancedCode != (gosmtp.EnhancedCode{5, 7, 1}) {
				t.Errorf("enhanced code %v", se.EnhancedCode)
			}
			if want := replyText(`the file "` + tc.file + `"`); !strings.Contains(se.Message, want) {
				t.Errorf("reply %q does not name %s", se.Message, want)
			}
			if n := countMessages(t, ts.db); n != 0 {
				t.Fatalf("%d messages stored", n)
			}
			if n, err := ts.db.SweepOrphans(t.Context(), time.Now().Add(time.Hour)); err != nil || n != 0 {
				t.Fatalf("%d pending blobs left behind (%v)", n, err)
			}
		})
	}
	if err := sendMail(t, ts, attachmentMail(map[string][]byte{"scan.pdf": clean}, "scan.pdf")); err != nil {
		t.Fatalf("a clean message: %v", err)
	}
	if n := countMessages(t, ts.db); n != 1 {
		t.Fatalf("%d messages stored, want the clean one", n)
	}
}

// TestScanRelay: mail from a trusted mail server is scanned too.
func TestScanRelay(t *testing.T) {
	c, err := clamd.New(clamdtest.Shared(t).Addr(), 10*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.Open(t, storetest.Keys(t))
	db.Scanner = c
	rs := newRelayServerOn(t, newTestDNS(t), db, func(c *RelayConfig) {
		c.Policy = PolicyTrustedNetwork
		c.SenderDomains = []string{"clinic.example"}
	})
	msg := attachmentMail(map[string][]byte{"eicar.com": clamdtest.EICAR()}, "eicar.com")
	err = rs.send(testAccount, "2125550123@secure.text", bytes.NewReader(msg))
	wantCode(t, err, 554, "malware found ("+clamdtest.EICARName+`) in the file "eicar.com"`)
	if n := countMessages(t, db); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	clean := attachmentMail(map[string][]byte{"scan.pdf": []byte("%PDF-1.4 clean")}, "scan.pdf")
	if err := rs.send(testAccount, "2125550123@secure.text", bytes.NewReader(clean)); err != nil {
		t.Fatalf("a clean message: %v", err)
	}
}

// TestScanUnavailable stops clamd: a message gets 451 4.7.1 (try later)
// and nothing is stored; once clamd is back the same message goes
// through. With fail_open it goes through while clamd is down.
func TestScanUnavailable(t *testing.T) {
	srv := clamdtest.Own(t)
	ts := scanningServer(t, srv.Addr(), false)
	open := scanningServer(t, srv.Addr(), true)
	msg := attachmentMail(map[string][]byte{"eicar.com": clamdtest.EICAR()}, "eicar.com")

	srv.Halt()
	err := sendMail(t, ts, msg)
	wantCode(t, err, 451, "could not be checked for malware")
	if se := err.(*gosmtp.SMTPError); se.EnhancedCode != (gosmtp.EnhancedCode{4, 7, 1}) {
		t.Errorf("enhanced code %v", se.EnhancedCode)
	}
	if n := countMessages(t, ts.db); n != 0 {
		t.Fatalf("%d messages stored unscanned", n)
	}
	if err := sendMail(t, open, msg); err != nil {
		t.Fatalf("fail_open: %v", err)
	}
	if n := countMessages(t, open.db); n != 1 {
		t.Fatalf("fail_open: %d messages stored", n)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, sendMail(t, ts, msg), 554, clamdtest.EICARName)
}
