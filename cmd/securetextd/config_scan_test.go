package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd/internal/clamdtest"
)

// TestConfigScan checks [scan]'s defaults, and that a bad value is
// refused naming its key.
func TestConfigScan(t *testing.T) {
	cfg, err := ParseConfig(nil, ".")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Scan; s.Clamd != "" || s.Timeout != 30*time.Second || s.FailOpen {
		t.Errorf("defaults: %+v", s)
	}
	for _, ok := range []string{`"unix:/run/clamav/clamd.ctl"`, `"tcp:127.0.0.1:3310"`, `"tcp:[::1]:3310"`} {
		if _, err := ParseConfig([]byte("[scan]\nclamd = "+ok+"\n"), "."); err != nil {
			t.Errorf("scan.clamd = %s: %v", ok, err)
		}
	}
	for text, want := range map[string]string{
		"clamd = \"/run/clamav/clamd.ctl\"":   "scan.clamd: \"/run/clamav/clamd.ctl\" is not unix:/path/to/clamd.ctl or tcp:host:port",
		"clamd = \"unix:clamd.ctl\"":          "scan.clamd: \"unix:clamd.ctl\": the socket's path must be absolute",
		"clamd = \"tcp:127.0.0.1\"":           "scan.clamd: \"tcp:127.0.0.1\": give tcp:host:port",
		"clamd = \"http://127.0.0.1:3310\"":   "scan.clamd: \"http://127.0.0.1:3310\": the address must start with unix: or tcp: (as in unix:/run/clamav/clamd.ctl)",
		"timeout = \"0s\"":                    "scan.timeout: 0s is out of range (1s to 10m)",
		"timeout = \"1h\"":                    "scan.timeout: 1h0m0s is out of range (1s to 10m)",
		"fail_open = \"yes\"":                 "scan.fail_open",
		"clamd = \"unix:/x\"\nscanner = true": "scan.scanner: unknown key",
	} {
		_, err := ParseConfig([]byte("[scan]\n"+text+"\n"), ".")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", text, err, want)
		}
	}
}

// TestDoctorScan: doctor asks the configured clamd for its version, and
// fails (or, with fail_open, warns) when it does not answer.
func TestDoctorScan(t *testing.T) {
	srv := clamdtest.Own(t)
	check := func(text string) string {
		t.Helper()
		cfg, err := ParseConfig([]byte(text), ".")
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		doctorScan(cfg, 5*time.Second, func(level, what, detail string) { fmt.Fprintf(&out, "%-4s  %s: %s\n", level, what, detail) })
		return out.String()
	}
	conf := fmt.Sprintf("[scan]\nclamd = %q\n", srv.Addr())
	if out := check(conf); !strings.HasPrefix(out, "ok    scan.clamd: "+srv.Addr()+" answers: ClamAV 1.") || !strings.Contains(out, "StreamMaxLength") {
		t.Errorf("doctor with clamd running: %s", out)
	}
	srv.Halt()
	if out := check(conf); !strings.HasPrefix(out, "FAIL  scan.clamd: "+srv.Addr()+" does not answer") {
		t.Errorf("doctor with clamd stopped: %s", out)
	}
	if out := check(conf + "fail_open = true\n"); !strings.HasPrefix(out, "warn  scan.clamd:") || !strings.Contains(out, "unscanned") {
		t.Errorf("doctor with clamd stopped, fail_open: %s", out)
	}
}
