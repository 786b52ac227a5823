package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/securetextd/securetextd"
)

// Anchors of the audit trail. The chain proves that no row was altered,
// removed or inserted since the one before it; it cannot prove that the
// whole history was not rewritten, its hashes recomputed. An anchor can:
// a row's sequence number and hash (SEQ:HASH), recorded somewhere the
// database's owner cannot reach (the daemon logs one a day, `securetextd
// audit verify` prints the head), that a later trail must still hold.

// AuditAnchor is a row of the trail as an operator recorded it.
type AuditAnchor struct {
	Seq  int64
	Hash string // hexadecimal, as recorded; compared without regard to case
}

// AnchorOf returns the anchor of row ev, to record.
func AnchorOf(ev securetextd.AuditEvent) AuditAnchor {
	return AuditAnchor{Seq: ev.Seq, Hash: hex.EncodeToString(ev.Hash)}
}

// String writes the anchor as SEQ:HASH, as ParseAuditAnchor reads it.
func (a AuditAnchor) String() string { return strconv.FormatInt(a.Seq, 10) + ":" + a.Hash }

// errAnchorSyntax is ParseAuditAnchor's answer to what is not SEQ:HASH.
var errAnchorSyntax = errors.New("an anchor is SEQ:HASH, as `audit verify` printed it")

// ParseAuditAnchor reads an anchor written SEQ:HASH. The hash is not
// judged here: one that is not the row's is what CheckAuditAnchor reports.
func ParseAuditAnchor(s string) (AuditAnchor, error) {
	seqText, hash, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || err != nil {
		return AuditAnchor{}, errAnchorSyntax
	}
	return AuditAnchor{Seq: seq, Hash: hash}, nil
}

// CheckAuditAnchor reports whether the trail still holds anchor a: nil
// when its row a.Seq has a's hash, and otherwise an error that says, in
// words for an operator, that the trail does not reach the anchor (it was
// shortened, or the anchor belongs to another trail) or that the row was
// rewritten. Check the chain first (VerifyAudit): an anchor vouches for
// the rows before it only if the chain does.
func (db *DB) CheckAuditAnchor(ctx context.Context, a AuditAnchor) error {
	row, err := db.AuditRow(ctx, a.Seq)
	if err != nil {
		return fmt.Errorf("audit trail does not reach the anchor: %s", securetextd.ErrorMessage(err))
	}
	if !strings.EqualFold(hex.EncodeToString(row.Hash), a.Hash) {
		return fmt.Errorf("audit trail broken: row %d no longer has the hash of the anchor (rewritten since)", a.Seq)
	}
	return nil
}
