package notify

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultTemplate is the text sent when the operator configures none. With
// a short organization name and link it fits one GSM-7 segment.
const DefaultTemplate = "{org}: you have a secure message. Open {link}"

// Template is the text of an SMS with two placeholders: {org}, replaced by
// the organization's name, and {link}, replaced by the link to the message.
// There is deliberately no placeholder for anything about the message
// itself: a text is read on a lock screen, and must reveal nothing.
type Template struct {
	pieces []piece
}

// A piece is a literal run of text or one placeholder.
type piece struct {
	literal     string
	placeholder string // "org" or "link"; empty for a literal
}

// ParseTemplate reads a template. {link} must appear (a text without it is
// useless) and {org} may; any other word in braces is an error, so that a
// typo such as {Link} is caught at start rather than texted to patients.
// A '}' on its own is kept as written.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{}
	hasLink := false
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			t.pieces = append(t.pieces, piece{literal: s})
			break
		}
		if i > 0 {
			t.pieces = append(t.pieces, piece{literal: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("notify: template: %q has no closing '}'", s[i:])
		}
		switch name := s[i+1 : i+j]; name {
		case "org", "link":
			hasLink = hasLink || name == "link"
			t.pieces = append(t.pieces, piece{placeholder: name})
		default:
			return nil, fmt.Errorf("notify: template: unknown placeholder %q: use {org} and {link}", s[i:i+j+1])
		}
		s = s[i+j+1:]
	}
	if !hasLink {
		return nil, errors.New("notify: template: {link} is missing: the text must carry the link")
	}
	return t, nil
}

// Render returns the text for one recipient. The values are inserted as
// they are: braces in them are not read as placeholders.
func (t *Template) Render(org, link string) string {
	var b strings.Builder
	for _, p := range t.pieces {
		switch p.placeholder {
		case "org":
			b.WriteString(org)
		case "link":
			b.WriteString(link)
		default:
			b.WriteString(p.literal)
		}
	}
	return b.String()
}

// sampleToken stands for a link token in Check: 27 characters, the length
// of a link's id (up to 268 million, four bytes as a uvarint) and 128
// random bits, in unpadded base64url (store.newLink).
const sampleToken = "gICAAQx7vR2kT9mW4pL6nB3cY8a"

// Check renders the template as a real text would be, with publicURL and a
// token of realistic length, and returns warnings for an operator: when the
// text needs more than one segment (each is billed, and some phones show
// them apart), and when a character forces the whole text out of GSM-7,
// which cuts a segment from 160 characters to 70. It returns nil when the
// text fits one GSM-7 segment.
func (t *Template) Check(org, publicURL string) []string {
	text := t.Render(org, linkFor(publicURL, sampleToken))
	var warnings []string
	segments, gsm7 := Segments(text)
	if !gsm7 {
		for _, r := range text {
			if gsmSeptets(r) == 0 {
				warnings = append(warnings, fmt.Sprintf(
					"the text contains %q (%U), which GSM-7 cannot encode: it will be sent as UCS-2, "+
						"70 characters per segment instead of 160", string(r), r))
				break
			}
		}
	}
	if segments > 1 {
		length, unit := utf16Len(text), "UTF-16 code units"
		if gsm7 {
			length, unit = septets(text), "GSM-7 septets"
		}
		warnings = append(warnings, fmt.Sprintf(
			"the text is %d %s long and will be sent as %d segments, each billed: "+
				"shorten the template or the organization name", length, unit, segments))
	}
	return warnings
}

// GSM 03.38 alphabet, as Unicode. gsmBasic holds the 127 characters of the
// default table (escape excluded) that cost one septet; gsmExtension those
// of the extension table, which cost two (escape, then the character).
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtension = "^{}\\[~]|€\f"
)

// gsmSeptets returns how many septets r costs in GSM-7, or 0 if GSM-7 has
// no encoding for it.
func gsmSeptets(r rune) int {
	switch {
	case strings.ContainsRune(gsmBasic, r):
		return 1
	case strings.ContainsRune(gsmExtension, r):
		return 2
	}
	return 0
}

// utf16Units returns how many UTF-16 code units r costs in UCS-2 as
// phones actually send it: two for a character outside the BMP (an emoji).
func utf16Units(r rune) int {
	if r > 0xFFFF {
		return 2
	}
	return 1
}

// Segments returns how many SMS segments text needs, and whether it can be
// sent in GSM-7.
//
// A GSM-7 text holds 160 septets in a single SMS; the extension characters
// ^{}\[~]|€ and form feed cost two. A longer text is split into parts of
// 153 septets (the rest holds the header that joins them). A text with any
// other character is sent whole in UCS-2: 70 UTF-16 code units, or 67 per
// part, where an emoji counts two. Neither an escape pair nor a surrogate
// pair is split across parts, which can add a part to a naive count.
func Segments(text string) (segments int, gsm7 bool) {
	gsm7 = true
	for _, r := range text {
		if gsmSeptets(r) == 0 {
			gsm7 = false
			break
		}
	}
	if gsm7 {
		return countParts(text, 160, 153, gsmSeptets), true
	}
	return countParts(text, 70, 67, utf16Units), false
}

// countParts returns the number of segments for text when one segment
// holds single units and each part of a longer text holds part units.
func countParts(text string, single, part int, cost func(rune) int) int {
	total := 0
	for _, r := range text {
		total += cost(r)
	}
	if total <= single {
		return 1
	}
	n, used := 1, 0
	for _, r := range text {
		c := cost(r)
		if used+c > part {
			n++
			used = 0
		}
		used += c
	}
	return n
}

func septets(text string) int {
	n := 0
	for _, r := range text {
		n += gsmSeptets(r)
	}
	return n
}

func utf16Len(text string) int {
	n := 0
	for _, r := range text {
		n += utf16Units(r)
	}
	return n
}

// linkFor returns the portal address of a message: the public URL without
// its trailing slash, then /m/ and the token.
func linkFor(publicURL, token string) string {
	return strings.TrimSuffix(publicURL, "/") + "/m/" + token
}
