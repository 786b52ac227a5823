package store

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestNumberedLinks: a link token names its row and carries 16 random
// bytes; it opens its conversation, and nothing opens with its id and
// other bytes, with another link's id, or with an id past the last. A
// link of the older form, kept by its hash in links, opens as before.
// New links are appended: their rows' ids follow one another.
func TestNumberedLinks(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	commitTest(t, db, &securetextd.Message{Sender: drWho}, nil, patient, "+447911123456")
	jobs := drainJobs(t, db)
	if len(jobs) != 2 {
		t.Fatalf("%d jobs", len(jobs))
	}
	a, b := jobs[0].Token, jobs[1].Token
	ida, oka := linkID(a)
	idb, okb := linkID(b)
	if !oka || !okb || idb != ida+1 {
		t.Fatalf("link ids %d (%v), %d (%v): want two in a row", ida, oka, idb, okb)
	}
	for _, tok := range []string{a, b} {
		if len(tok) != 23 {
			t.Errorf("token %q: %d characters, want 23 (a one-byte id and 16 random bytes)", tok, len(tok))
		}
	}
	c, err := db.ConversationByToken(ctx, a)
	if err != nil || c.ID != jobs[0].ConversationID {
		t.Fatalf("token a: %+v, %v", c, err)
	}

	raw, _ := base64.RawURLEncoding.DecodeString(a)
	rawb, _ := base64.RawURLEncoding.DecodeString(b)
	other := append([]byte(nil), raw...)
	other[len(other)-1] ^= 1
	swapped := append(append([]byte(nil), rawb[:1]...), raw[1:]...) // b's id, a's secret
	past := append([]byte{0x7f}, raw[1:]...)                        // an id no link has
	enc := base64.RawURLEncoding.EncodeToString
	for name, bad := range map[string]string{
		"a secret byte changed":   enc(other),
		"another link's id":       enc(swapped),
		"an id past the last":     enc(past),
		"no secret":               enc(raw[:1]),
		"a byte short":            enc(raw[:len(raw)-1]),
		"a byte more":             enc(append(append([]byte(nil), raw...), 0)),
		"id zero":                 enc(append([]byte{0}, raw[1:]...)),
		"not base64":              "!!" + a[2:],
		"uppercased":              strings.ToUpper(a),
		"empty":                   "",
		"an overlong varint":      enc(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, raw[1:]...)),
		"the older form, unknown": newToken(linkTokenBytes),
	} {
		if _, err := db.ConversationByToken(ctx, bad); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
			t.Errorf("%s (%q): %v, want ENOTFOUND", name, bad, err)
		}
	}

	legacy := newToken(linkTokenBytes)
	hash := hashToken(legacy)
	if _, err := db.write.ExecContext(ctx, `INSERT INTO links (token_hash, conversation_id, created) VALUES (?, ?, ?)`,
		hash[:], jobs[1].ConversationID, nanos(db.Now())); err != nil {
		t.Fatal(err)
	}
	if c, err := db.ConversationByToken(ctx, legacy); err != nil || c.ID != jobs[1].ConversationID {
		t.Errorf("a link of the older form: %+v, %v", c, err)
	}
}
