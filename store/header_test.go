package store

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"filippo.io/age"
)

// headerPlain is formatHeader written the obvious way, one string at a
// time: the reference that the fast version is held to.
func headerPlain(fileKey []byte, stanzas []*age.Stanza) []byte {
	var h bytes.Buffer
	h.WriteString(ageIntro)
	for _, s := range stanzas {
		h.WriteString("-> " + s.Type)
		for _, a := range s.Args {
			h.WriteString(" " + a)
		}
		h.WriteString("\n")
		body := b64.EncodeToString(s.Body)
		for len(body) >= 64 {
			h.WriteString(body[:64] + "\n")
			body = body[64:]
		}
		h.WriteString(body + "\n")
	}
	h.WriteString("---")
	macKey, _ := hkdf.Key(sha256.New, fileKey, nil, "header", 32)
	mac := hmac.New(sha256.New, macKey)
	mac.Write(h.Bytes())
	h.WriteString(" " + b64.EncodeToString(mac.Sum(nil)) + "\n")
	return h.Bytes()
}

func checkHeaderFormat(t *testing.T, fileKey []byte, stanzas []*age.Stanza) {
	t.Helper()
	got, err := formatHeader(fileKey, stanzas)
	if err != nil {
		t.Fatal(err)
	}
	if want := headerPlain(fileKey, stanzas); !bytes.Equal(got, want) {
		t.Fatalf("formatHeader:\n%q\nheaderPlain:\n%q", got, want)
	}
	if cap(got) != len(got) {
		t.Errorf("sized %d up front, wrote %d", cap(got), len(got))
	}
}

// TestHeaderFormat holds formatHeader to headerPlain for bodies around
// the 48-byte line boundary and for several stanzas, and checks that age
// opens what it writes.
func TestHeaderFormat(t *testing.T) {
	key := randomBytes(31, 16)
	for _, n := range []int{0, 1, 47, 48, 49, 56, 95, 96, 97, 1120} {
		checkHeaderFormat(t, key, []*age.Stanza{{Type: "x", Args: []string{"a", "bc"}, Body: randomBytes(uint64(n), n)}})
	}
	checkHeaderFormat(t, key, []*age.Stanza{{Type: "one", Body: randomBytes(1, 32)}, {Type: "two", Args: []string{"1"}, Body: randomBytes(2, 48)}})

	dk := testDataKeys(t, 1)
	at := partPlace{7, 1, 9}
	h, err := newHeader(key, dk.recipient.at(at))
	if err != nil {
		t.Fatal(err)
	}
	got, err := age.DecryptHeader(h, dk.part(at))
	if err != nil || !bytes.Equal(got, key) {
		t.Errorf("age does not open the header: %v\n%s", err, h)
	}
}

// FuzzHeaderFormat holds formatHeader to headerPlain for any stanza.
func FuzzHeaderFormat(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), "securetextd-dk", "3", "12", []byte("body"))
	f.Add([]byte{}, "X25519", "", "", bytes.Repeat([]byte{0xff}, 96))
	f.Fuzz(func(t *testing.T, fileKey []byte, typ, arg1, arg2 string, body []byte) {
		args := []string{}
		for _, a := range []string{arg1, arg2} {
			if a != "" {
				args = append(args, a)
			}
		}
		checkHeaderFormat(t, fileKey, []*age.Stanza{{Type: typ, Args: args, Body: body}})
	})
}
