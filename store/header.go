package store

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"filippo.io/age"
)

// age v1.3.2 unwraps a header (ExtractHeader, DecryptHeader) and wraps a
// file key (a Recipient's Wrap), but does not write a header for a file
// key of one's own choosing: its header writer is internal. The store needs
// that twice: the commit writes each part's header for its place
// (datakey.go), and rekey writes new headers for old file keys (rekey.go).
// newHeader writes it as the age specification (C2SP age,
// "age-encryption.org/v1") lays it out: the intro line, each stanza (its
// type and arguments on a "-> " line, then its body in base64 without
// padding, in lines of 64 columns, the last one shorter and so empty when
// the body fills its lines), and the footer "---" with an HMAC-SHA-256 of
// all that under HKDF-SHA-256(file key, salt empty, "header"), in base64.
//
// It runs once per part committed, so it appends into one buffer sized up
// front; headerPlain in the tests writes the same bytes the obvious way,
// and TestHeaderFormat and FuzzHeaderFormat hold the two equal. age's own
// parser checks the result in TestNewHeaderIsAge, and rekey checks every
// header it writes with DecryptHeader before storing it.

// ageIntro starts every age file.
const ageIntro = "age-encryption.org/v1\n"

var b64 = base64.RawStdEncoding

// newHeader writes an age v1 header that wraps fileKey to r.
func newHeader(fileKey []byte, r age.Recipient) ([]byte, error) {
	stanzas, err := r.Wrap(fileKey)
	if err != nil {
		return nil, fmt.Errorf("wrap file key: %w", err)
	}
	return formatHeader(fileKey, stanzas)
}

// formatHeader writes the age header of stanzas, its MAC keyed by
// fileKey.
func formatHeader(fileKey []byte, stanzas []*age.Stanza) ([]byte, error) {
	n := len(ageIntro) + len("--- ") + b64.EncodedLen(sha256.Size) + 1
	for _, s := range stanzas {
		n += len("-> ") + len(s.Type) + 1 + b64.EncodedLen(len(s.Body)) + len(s.Body)/48 + 1
		for _, a := range s.Args {
			n += 1 + len(a)
		}
	}
	h := make([]byte, 0, n)
	h = append(h, ageIntro...)
	for _, s := range stanzas {
		h = append(h, "-> "...)
		h = append(h, s.Type...)
		for _, a := range s.Args {
			h = append(h, ' ')
			h = append(h, a...)
		}
		h = append(h, '\n')
		body := s.Body
		for len(body) >= 48 { // 48 bytes are 64 columns of base64
			h = b64.AppendEncode(h, body[:48])
			h = append(h, '\n')
			body = body[48:]
		}
		h = b64.AppendEncode(h, body)
		h = append(h, '\n')
	}
	h = append(h, "---"...)
	macKey, err := hkdf.Key(sha256.New, fileKey, nil, "header", sha256.Size)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, macKey)
	mac.Write(h)
	var sum [sha256.Size]byte
	h = append(h, ' ')
	h = b64.AppendEncode(h, mac.Sum(sum[:0]))
	return append(h, '\n'), nil
}
