package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/securetextd/securetextd"
)

// Scanning. With DB.Scanner set, every part of every draft (a message by
// mail or the API, a reply on the portal) is written to a scan as it is
// written to age: the content goes to the scanner while it is sealed,
// never held whole. When a part is closed the scan's verdict is awaited:
// a finding fails the draft with a *MalwareError (EMALWARE), so that it
// can only be discarded, which deletes the pending blobs it wrote. Nothing
// of it is ever committed.
//
// A scanner that cannot give a verdict (down, timed out, the part too
// large for it) fails the draft with EUNSCANNED, unless DB.ScanFailOpen:
// then the draft goes on without scanning, and its commit records
// AuditMessageUnscanned in the same transaction. After one such failure
// the draft does not ask the scanner again: a scanner that timed out on
// one part would make each later part wait as long.

// MalwareError is the error of a draft one of whose parts the scanner
// found malware in. Its code is EMALWARE, and its message names the part
// (the file's name, or "the message text") and what was found, for the
// person who sent it; errors.As finds it for a transport that words its
// own answer. Filename is content: it must not be logged.
type MalwareError struct {
	Part     int    // the part's index in the draft
	Filename string // the file's name; "" for a body text
	Found    string // the name of the malware, as the scanner gives it
}

// Error names the part by its index only, so that a log of the error
// never holds the file's name; ErrorMessage gives the message that names it.
func (e *MalwareError) Error() string {
	return fmt.Sprintf("securetextd: %s: part %d contains malware (%s)", securetextd.EMALWARE, e.Part, e.Found)
}

// Unwrap makes ErrorCode and ErrorMessage see an EMALWARE *securetextd.Error.
func (e *MalwareError) Unwrap() error {
	return &securetextd.Error{Code: securetextd.EMALWARE, Message: e.message()}
}

// What names the part: `the file "name"` or "the message text".
func (e *MalwareError) What() string {
	if e.Filename == "" {
		return "the message text"
	}
	return "the file " + strconv.Quote(e.Filename)
}

func (e *MalwareError) message() string {
	w := e.What()
	return "T" + w[1:] + " contains malware (" + e.Found + ")."
}

// errUnscanned is the domain error of content that could not be scanned.
var errUnscanned = &securetextd.Error{
	Code:    securetextd.EUNSCANNED,
	Message: "The content could not be checked for malware just now. Try again in a few minutes.",
}

// startScan starts the scan of w's part, if the store scans.
func (d *Draft) startScan(w *partWriter) error {
	if d.db.Scanner == nil || d.scanFailed {
		return nil
	}
	// The draft has no context (see draftWriter.write): the scanner's
	// own timeout bounds each wait on it.
	s, err := d.db.Scanner.Scan(context.Background())
	if err != nil {
		return d.scanFailure(w, err)
	}
	w.scan = s
	return nil
}

// scanWrite hands b, just sealed, to w's scan.
func (d *Draft) scanWrite(w *partWriter, b []byte) error {
	if w.scan == nil {
		return nil
	}
	if _, err := w.scan.Write(b); err != nil {
		return d.scanFailure(w, err)
	}
	return nil
}

// verdict ends w's scan and judges its part.
func (d *Draft) verdict(w *partWriter) error {
	if w.scan == nil {
		return nil
	}
	found, err := w.scan.Verdict()
	w.scan = nil
	if err != nil {
		return d.scanFailure(w, err)
	}
	if found != "" {
		err := &MalwareError{Part: w.p.index, Filename: w.p.part.Filename, Found: found}
		if w.p.part.Kind == securetextd.PartText || w.p.part.Kind == securetextd.PartHTML {
			err.Filename = ""
		}
		d.err = err
		return err
	}
	return nil
}

// scanFailure deals with a scanner that gave no verdict on w's part: the
// draft fails, or with ScanFailOpen goes on unscanned from this part on.
func (d *Draft) scanFailure(w *partWriter, err error) error {
	if w.scan != nil {
		w.scan.Abort()
		w.scan = nil
	}
	if d.db.ScanFailOpen {
		if !d.scanFailed {
			d.scanFailed = true
			d.unscannedFrom = w.p.index
		}
		return nil
	}
	d.err = errors.Join(errUnscanned, err)
	return fmt.Errorf("store: scan part %d: %w", w.p.index, d.err)
}

// auditUnscanned records, in the commit's transaction, that the message
// was let through with parts unscanned.
func (d *Draft) auditUnscanned(ctx context.Context, tx *sql.Tx, message int64) error {
	if !d.scanFailed {
		return nil
	}
	return d.db.audit(ctx, tx, securetextd.AuditEvent{
		Event:     securetextd.AuditMessageUnscanned,
		MessageID: message,
		Detail: fmt.Sprintf("%d of %d parts stored unscanned: the malware scanner failed and scan.fail_open is on",
			len(d.parts)-d.unscannedFrom, len(d.parts)),
	})
}
