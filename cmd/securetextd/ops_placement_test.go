package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestOpsEndpointsPlacement: /metrics and /readyz are served on the portal
// listener only for a development portal (http:// on loopback); with an
// https:// public_url they are served only on ops.listen, and the start-up
// log says so when ops.listen is empty. /healthz stays on the portal
// unless ops.listen takes it.
func TestOpsEndpointsPlacement(t *testing.T) {
	// A production configuration: an https:// portal, with what that
	// requires besides (a mail relay, a real SMS provider, signed receipts).
	const httpsConfig = `
[smtp]
submission_listen = "127.0.0.1:0"
[store]
path = "data/db.sqlite"
key_file = "data/key.txt"
[portal]
listen = "127.0.0.1:0"
public_url = "https://portal.clinic.example"
[mail]
relay = "127.0.0.1:1"
[sms]
provider = "vonage"
[sms.vonage]
api_key = "abcd1234"
api_secret = "s3cret-s3cret"
from = "TestClinic"
base_url = "%s"
signature_secret = "0123456789abcdef0123456789abcdef"
`
	for _, tc := range []struct {
		name, config    string
		onPortal, onOps []string // paths answered 200
		offPortal       []string // paths the portal does not serve
		warn            bool
	}{
		{
			name:     "development",
			config:   testConfigText(t, "%s"),
			onPortal: []string{"/healthz", "/metrics", "/readyz"},
		},
		{
			name:      "https",
			config:    httpsConfig,
			onPortal:  []string{"/healthz"},
			offPortal: []string{"/metrics", "/readyz"},
			warn:      true,
		},
		{
			name:      "https with ops.listen",
			config:    httpsConfig + "[ops]\nlisten = \"127.0.0.1:0\"\n",
			onOps:     []string{"/healthz", "/metrics", "/readyz"},
			offPortal: []string{"/healthz", "/metrics", "/readyz"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vonage := newFakeVonage(t)
			text := withTestEngine(t, strings.ReplaceAll(tc.config, "%s", vonage.URL))
			cfg, err := ParseConfig([]byte(text), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			var log syncBuffer
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&log, nil))}
			if err := m.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				m.Close(ctx)
			})
			for _, p := range tc.onPortal {
				if line, resp := rawGet(t, m.PortalAddr, p); line != status200 {
					t.Errorf("portal %s:\n%s", p, resp)
				}
			}
			for _, p := range tc.offPortal {
				if line, resp := rawGet(t, m.PortalAddr, p); line != "HTTP/1.1 404 Not Found" {
					t.Errorf("portal serves %s:\n%.300s", p, resp)
				}
			}
			for _, p := range tc.onOps {
				if line, resp := rawGet(t, m.OpsAddr, p); line != status200 {
					t.Errorf("ops %s:\n%s", p, resp)
				}
			}
			warned := strings.Contains(log.String(), "/metrics and /readyz are not served") &&
				strings.Contains(log.String(), "ops.listen")
			if warned != tc.warn {
				t.Errorf("start-up warning naming ops.listen: %v, want %v\n%s", warned, tc.warn, log.String())
			}
		})
	}
}
