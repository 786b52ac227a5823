package smtp

// Decoders of a part's content: its Content-Transfer-Encoding
// (quoted-printable leniently, base64 through base64.go) and its charset to
// UTF-8, with stray 8-bit bytes in text that claims UTF-8 read as
// Windows-1252.

import (
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/transform"
)

// transferDecoder returns a reader of body decoded from the
// Content-Transfer-Encoding cte, and false for an encoding it does not know.
func transferDecoder(cte string, body io.Reader) (io.Reader, bool) {
	cte, _, _ = strings.Cut(cte, ";")
	switch strings.ToLower(strings.Trim(cte, " \t\"")) {
	case "", "7bit", "8bit", "binary":
		return body, true
	case "quoted-printable":
		return transform.NewReader(body, qpDecoder{}), true
	case "base64":
		return newBase64Reader(body), true
	}
	return body, false
}

// qpDecoder decodes quoted-printable (RFC 2045) leniently, as mail readers
// do: an "=" not followed by two hex digits or a line end is itself, and
// raw 8-bit and control bytes pass through. (mime/quotedprintable fails on
// both, and on lines over 4 KiB.)
type qpDecoder struct{ transform.NopResetter }

func (qpDecoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		if nDst >= len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		c := src[nSrc]
		if c != '=' {
			dst[nDst] = c
			nDst++
			nSrc++
			continue
		}
		rest := src[nSrc+1:]
		if len(rest) >= 2 && isHexDigit(rest[0]) && isHexDigit(rest[1]) {
			dst[nDst] = unhexDigit(rest[0])<<4 | unhexDigit(rest[1])
			nDst++
			nSrc += 3
			continue
		}
		// A soft line break: "=", maybe white space, a line end.
		i := 0
		for i < len(rest) && i < 80 && (rest[i] == ' ' || rest[i] == '\t') {
			i++
		}
		switch {
		case i < len(rest) && rest[i] == '\n':
			nSrc += 1 + i + 1
			continue
		case i+1 < len(rest) && rest[i] == '\r' && rest[i+1] == '\n':
			nSrc += 1 + i + 2
			continue
		case atEOF && (i == len(rest) || i+1 == len(rest) && rest[i] == '\r'):
			nSrc = len(src) // a soft line break at the very end
			continue
		case !atEOF && i < 80 && (i == len(rest) || i+1 == len(rest) && rest[i] == '\r' ||
			i == 0 && len(rest) == 1 && isHexDigit(rest[0])):
			return nDst, nSrc, transform.ErrShortSrc // cannot tell yet
		}
		dst[nDst] = '='
		nDst++
		nSrc++
	}
	return nDst, nSrc, nil
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhexDigit(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// textDecoder returns a reader of r converted from charset cs to UTF-8,
// and false for a charset it does not know. UTF-8, US-ASCII and an absent
// charset all read as UTF-8, repaired by utf8Repair.
func textDecoder(cs string, r io.Reader) (io.Reader, bool) {
	if isUTF8(cs) {
		return transform.NewReader(r, utf8Repair{}), true
	}
	cr, err := charset.Reader(cs, r)
	if err != nil {
		return nil, false
	}
	return cr, true
}

// isUTF8 reports whether charset cs (lowercase) is read as UTF-8: UTF-8,
// US-ASCII, or none given.
func isUTF8(cs string) bool {
	switch strings.TrimSpace(cs) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return true
	}
	return false
}

// utf8Repair passes valid UTF-8 through and reads every other byte as
// Windows-1252: text that claims to be UTF-8 or ASCII (or claims nothing)
// but has stray 8-bit bytes was nearly always written in it.
type utf8Repair struct{ transform.NopResetter }

func (utf8Repair) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		c := src[nSrc]
		if c < utf8.RuneSelf {
			if nDst >= len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			dst[nDst] = c
			nDst++
			nSrc++
			continue
		}
		r, size := utf8.DecodeRune(src[nSrc:])
		if r == utf8.RuneError && size == 1 {
			if !atEOF && !utf8.FullRune(src[nSrc:]) {
				return nDst, nSrc, transform.ErrShortSrc
			}
			r = charmap.Windows1252.DecodeByte(c)
		}
		if nDst+utf8.RuneLen(r) > len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += utf8.EncodeRune(dst[nDst:], r)
		nSrc += size
	}
	return nDst, nSrc, nil
}
