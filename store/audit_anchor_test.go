package store

import (
	"strings"
	"testing"
)

// TestAuditAnchor: the head that VerifyAudit finds, written as SEQ:HASH
// and read back, is held by the trail; an anchor past the end of the
// trail, or whose row has another hash, is named for what it is; and what
// is not SEQ:HASH does not parse.
func TestAuditAnchor(t *testing.T) {
	db := trail(t)
	ctx := t.Context()
	check, err := db.VerifyAudit(ctx)
	if err != nil || !check.OK() {
		t.Fatalf("verify: %+v %v", check, err)
	}
	head := AnchorOf(check.Head)
	written := head.String()
	if !strings.HasPrefix(written, "6:") || len(written) != len("6:")+64 {
		t.Errorf("head written %q, want 6: and 64 hex digits", written)
	}
	a, err := ParseAuditAnchor(written)
	if err != nil || a != head {
		t.Fatalf("read back %+v %v, want %+v", a, err, head)
	}
	if err := db.CheckAuditAnchor(ctx, a); err != nil {
		t.Errorf("the head: %v", err)
	}
	if err := db.CheckAuditAnchor(ctx, AuditAnchor{Seq: a.Seq, Hash: strings.ToUpper(a.Hash)}); err != nil {
		t.Errorf("the head in capitals: %v", err)
	}
	if err := db.CheckAuditAnchor(ctx, AuditAnchor{Seq: 60, Hash: a.Hash}); err == nil ||
		err.Error() != "audit trail does not reach the anchor: The audit trail has no row 60." {
		t.Errorf("an anchor past the end: %v", err)
	}
	// The history rewritten from row 3 on: the anchor of row 3 recorded
	// before no longer holds.
	row3, err := db.AuditRow(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	anchor3 := AnchorOf(*row3)
	tamper(t, db, `UPDATE audit SET hash = prev WHERE seq = 3`)
	if err := db.CheckAuditAnchor(ctx, anchor3); err == nil ||
		err.Error() != "audit trail broken: row 3 no longer has the hash of the anchor (rewritten since)" {
		t.Errorf("a rewritten row: %v", err)
	}
	for _, bad := range []string{"", "6", "six:abc", ":abc", "6;abc"} {
		if _, err := ParseAuditAnchor(bad); err == nil {
			t.Errorf("ParseAuditAnchor(%q) took it", bad)
		}
	}
}
