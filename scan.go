package securetextd

import (
	"context"
	"io"
)

// A Scanner looks for malware in content as it streams past: every body
// and file of every message and reply is written to a scan while it is
// sealed, and the scan's verdict decides whether the message may be
// committed. The clamd package implements it with ClamAV's daemon.
type Scanner interface {
	// Scan starts the scan of one body or file.
	Scan(ctx context.Context) (ScanStream, error)
}

// A ScanStream is one body or file being scanned. Its content is written
// to it in order, in pieces of any size; Verdict then ends it. A scan
// that will get no verdict (its part failed) must be aborted.
type ScanStream interface {
	io.Writer
	// Verdict ends the content and waits for the scanner's answer: the
	// name of the malware found, or "" when the content is clean. An
	// error means there is no verdict: the scanner is down, timed out, or
	// refused the content (too large for it).
	Verdict() (found string, err error)
	// Abort drops the scan without a verdict. It may be called after
	// Verdict, as a no-op.
	Abort()
}

// AuditMessageUnscanned records a message stored with parts the scanner
// gave no verdict on, as scan.fail_open allows. Detail: how many parts.
const AuditMessageUnscanned = "message.unscanned"
