package smtp

// Parameters of Content-Type and Content-Disposition: parsing them as
// mail readers do, salvaging what mime.ParseMediaType gives up on, RFC 2231
// extended and continued values in any charset, RFC 2047 encoded words in
// names, and Content-ID.

import (
	"bytes"
	"io"
	"mime"
	"strconv"
	"strings"
	"unicode"

	"github.com/emersion/go-message/charset"
)

// parseParams parses a Content-Type or Content-Disposition value into its
// lowercase value ("text/plain", "attachment") and parameters. Where
// mime.ParseMediaType gives up on mail found in the wild, it keeps what it
// can: a parameter that does not parse is skipped rather than losing them
// all, a missing ";" before the parameters is tolerated, an unquoted value
// with 8-bit or special characters is taken as it is, and an RFC 2231 value
// in a charset other than UTF-8 is decoded.
func parseParams(v string) (string, map[string]string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	typ, params, err := mime.ParseMediaType(v)
	if err != nil {
		typ, params = salvageParams(v)
	}
	for _, key := range []string{"filename", "name"} {
		if s, isUTF8 := rfc2231(v, key); s != "" && (params[key] == "" || !isUTF8) {
			params[key] = s
		}
	}
	return typ, params
}

func salvageParams(v string) (string, map[string]string) {
	base, rest, _ := strings.Cut(v, ";")
	base = strings.TrimSpace(base)
	if i := strings.IndexAny(base, " \t"); i >= 0 {
		rest = base[i:] + ";" + rest
		base = base[:i]
	}
	typ, _, err := mime.ParseMediaType(base)
	if err != nil {
		typ = ""
	}
	params := make(map[string]string)
	for _, piece := range splitParams(rest) {
		if _, p, err := mime.ParseMediaType("x/x; " + piece); err == nil {
			for k, val := range p {
				if _, dup := params[k]; !dup {
					params[k] = val
				}
			}
			continue
		}
		k, val, ok := strings.Cut(piece, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" || strings.ContainsAny(k, "*\" \t") {
			continue
		}
		if _, dup := params[k]; !dup {
			params[k] = strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return typ, params
}

// splitParams splits s at the semicolons outside quoted strings.
func splitParams(s string) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\' && quoted:
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	out = append(out, s[start:])
	pieces := out[:0]
	for _, p := range out {
		if p = strings.TrimSpace(p); p != "" {
			pieces = append(pieces, p)
		}
	}
	return pieces
}

// rfc2231 decodes the parameter key from its RFC 2231 form in the raw value
// v: key*=charset'language'value, or continued as key*0*, key*1, …, and
// reports whether its charset is UTF-8 or ASCII. It decodes what
// mime.ParseMediaType drops or mangles: other charsets.
func rfc2231(v, key string) (value string, isUTF8 bool) {
	lower := strings.ToLower(v)
	if !strings.Contains(lower, key+"*") {
		return "", true
	}
	type section struct {
		value    string
		extended bool
	}
	sections := make(map[int]section)
	for _, piece := range splitParams(v) {
		k, val, ok := strings.Cut(piece, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || !strings.HasPrefix(k, key+"*") {
			continue
		}
		rest := k[len(key)+1:]
		ext := rest == "" || strings.HasSuffix(rest, "*")
		idx := 0
		if n := strings.TrimSuffix(rest, "*"); n != "" {
			i, err := strconv.Atoi(n)
			if err != nil || i < 0 || i > 1000 {
				continue
			}
			idx = i
		}
		sections[idx] = section{strings.Trim(strings.TrimSpace(val), `"`), ext}
	}
	var raw []byte
	cs := ""
	for i := 0; ; i++ {
		s, ok := sections[i]
		if !ok {
			break
		}
		if !s.extended {
			raw = append(raw, s.value...)
			continue
		}
		val := s.value
		if i == 0 {
			parts := strings.SplitN(val, "'", 3)
			if len(parts) != 3 {
				return "", true
			}
			cs, val = strings.ToLower(parts[0]), parts[2]
		}
		for j := 0; j < len(val); j++ {
			if val[j] == '%' && j+2 < len(val) && isHexDigit(val[j+1]) && isHexDigit(val[j+2]) {
				raw = append(raw, unhexDigit(val[j+1])<<4|unhexDigit(val[j+2]))
				j += 2
				continue
			}
			raw = append(raw, val[j])
		}
	}
	if len(raw) == 0 {
		return "", true
	}
	switch cs {
	case "", "utf-8", "utf8", "us-ascii":
		return string(raw), true
	}
	r, err := charset.Reader(cs, bytes.NewReader(raw))
	if err != nil {
		return string(raw), false // repaired by sanitizeFilename
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return string(raw), false
	}
	return string(out), false
}

// decodeWords decodes the RFC 2047 encoded-words in s, as Outlook writes
// filenames (name="=?iso-8859-1?Q?...?="), or returns s.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	out, err := dec.DecodeHeader(s)
	if err != nil {
		return s
	}
	return out
}

// contentID returns a Content-ID without its angle brackets.
func contentID(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "<")
	v = strings.TrimSuffix(v, ">")
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, v)
	return truncateUTF8(v, 998)
}
