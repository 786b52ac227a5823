package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// certWarning is how long before its expiry doctor warns about a
// certificate: time for a renewal that needs a person.
const certWarning = 30 * 24 * time.Hour

// doctorConfigDir says what the relative paths of the configuration are
// relative to: the file's directory (Config.Path), or, for the embedded
// default, the working directory.
func doctorConfigDir(cfg Config, configPath string) string {
	dir, err := filepath.Abs(cfg.dir)
	if err != nil {
		dir = cfg.dir
	}
	if configPath == "" {
		return "relative paths in it are relative to the working directory, " + dir
	}
	return "relative paths in it are relative to its directory, " + dir
}

// doctorCerts prints the subject and expiry of each configured TLS
// certificate: smtp.tls_cert (or, when it is empty, the self-signed one
// serve makes), portal.tls_cert and console.tls_cert.
func doctorCerts(cfg Config, now time.Time, line func(level, what, detail string)) {
	if cfg.SMTP.TLSCert != "" {
		doctorCert("smtp.tls_cert", cfg.Path(cfg.SMTP.TLSCert), cfg.Path(cfg.SMTP.TLSKey), "", now, line)
	} else {
		// The directory run.go generates it into.
		dir := filepath.Dir(cfg.Path(cfg.Store.Path))
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		crt := filepath.Join(dir, "tls-selfsigned.crt")
		if _, err := os.Stat(crt); errors.Is(err, fs.ErrNotExist) {
			line("ok", "smtp.tls_cert", "empty: serve makes a self-signed certificate in "+dir+" on first start")
		} else {
			doctorCert("smtp.tls_cert", crt, filepath.Join(dir, "tls-selfsigned.key"), "empty, so self-signed: ", now, line)
		}
	}
	if cfg.Portal.TLSCert != "" {
		doctorCert("portal.tls_cert", cfg.Path(cfg.Portal.TLSCert), cfg.Path(cfg.Portal.TLSKey), "", now, line)
	}
	if cfg.Console.Listen != "" && cfg.Console.TLSCert != "" {
		doctorCert("console.tls_cert", cfg.Path(cfg.Console.TLSCert), cfg.Path(cfg.Console.TLSKey), "", now, line)
	}
}

// doctorCert reads one certificate file and its key, as serve will, and
// prints the first certificate's subject and expiry: a warning within
// certWarning of it, a failure once it is past or when the files do not
// load.
func doctorCert(key, certFile, keyFile, note string, now time.Time, line func(level, what, detail string)) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		line("FAIL", key, "cannot read it: "+err.Error())
		return
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		line("FAIL", key, certFile+" holds no PEM certificate")
		return
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		line("FAIL", key, certFile+": "+err.Error())
		return
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		line("FAIL", key, fmt.Sprintf("%s with its key %s: %v", certFile, keyFile, err))
		return
	}
	detail := fmt.Sprintf("%s%s: subject %s, ", note, certFile, c.Subject)
	expiry := c.NotAfter.UTC().Format("2006-01-02 15:04 UTC")
	switch left := c.NotAfter.Sub(now); {
	case left <= 0:
		line("FAIL", key, detail+"expired on "+expiry+": renew it, then send SIGHUP")
	case left < certWarning:
		line("warn", key, fmt.Sprintf("%sexpires %s, in %d days: renew it, then send SIGHUP", detail, expiry, int(left.Hours()/24)))
	default:
		line("ok", key, fmt.Sprintf("%sexpires %s (in %d days)", detail, expiry, int(left.Hours()/24)))
	}
}
