package smtp

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// FuzzRelayFrom feeds arbitrary messages to the relay's reading of the
// sender, as Data does: the line-ending guard, then the MIME walk with the
// strict header reader beside it, then relayFrom. The sender the gateway
// stores and shows must be the one that DKIM verifies: whenever relayFrom
// accepts a message, DKIM's reader (go-msgauth's, modelled here on its
// readHeader) sees exactly one From field, holding exactly that address.
// The strict reader must read the same whatever the pieces the bytes
// arrive in, and the address and name must be safe to put in a header.
func FuzzRelayFrom(f *testing.F) {
	for _, dir := range []string{"testdata", filepath.Join("testdata", "from-seeds")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("From: Dr Who <dr.who@clinic.example>\r\nSubject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("Subject: x\r\nFROM : Dr Who\r\n <dr.who@clinic.example>\r\n\r\nbody\r\n"))
	f.Add([]byte(" From: ceo@clinic.example\r\nFrom: dr.who@clinic.example\r\n\r\nbody\r\n"))
	f.Add([]byte("From: \"x@bank.example\" <dr.who@clinic.example>\r\n\r\n"))
	f.Add([]byte("From: =?utf-8?q?Dr_=C3=89mile?= <emile@clinic.example>\r\n\r\nhi\r\n"))
	f.Add([]byte("From: a@clinic.example\r\nFrom\t: b@clinic.example\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &headerGuard{}
		lim := mimeLimits{MaxHeaderBytes: 64 << 10, MaxParts: 50, MaxDepth: 8}
		h, err := walkMessage(io.TeeReader(&crlfReader{r: bytes.NewReader(data)}, g), &partRecorder{discardData: true}, lim)

		// The strict reader reads the same in any pieces.
		for _, size := range []int{1, 3, 64} {
			g2 := &headerGuard{}
			for rest := data; len(rest) > 0 && !g2.done; {
				n := min(size, len(rest))
				if k, err := g2.Write(rest[:n]); k != n || err != nil {
					t.Fatalf("Write = %d, %v", k, err)
				}
				rest = rest[n:]
			}
			if g.done && (g2.fault != g.fault || g2.from != g.from || !bytes.Equal(g2.fromVal, g.fromVal) || g2.fields != g.fields) {
				t.Fatalf("in pieces of %d: fault %q from %d %q fields %v; whole: fault %q from %d %q fields %v",
					size, g2.fault, g2.from, g2.fromVal, g2.fields, g.fault, g.from, g.fromVal, g.fields)
			}
		}
		if len(g.fromVal) > maxFromValue {
			t.Fatalf("From value of %d bytes kept", len(g.fromVal))
		}
		if err != nil {
			return // refused while reading: nothing to compare
		}
		addr, name, err := relayFrom(h, g)
		if err != nil {
			return
		}
		froms := dkimFromFields(data)
		if len(froms) != 1 {
			t.Fatalf("relayFrom accepted %q, but DKIM sees %d From fields: %q", addr, len(froms), froms)
		}
		// net/mail's strict address parser, with any charset in display
		// names (the walk decodes them; only the address matters here).
		parser := mail.AddressParser{WordDecoder: &mime.WordDecoder{
			CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
		}}
		list, err := parser.ParseList(froms[0])
		if err != nil || len(list) != 1 {
			t.Fatalf("relayFrom accepted %q, but DKIM's From field %q holds %v (%v)", addr, froms[0], list, err)
		}
		at := strings.LastIndexByte(list[0].Address, '@')
		if at < 0 || list[0].Address[:at+1]+normalizeDomain(list[0].Address[at+1:]) != addr {
			t.Fatalf("relayFrom accepted %q, DKIM's From is %q", addr, list[0].Address)
		}
		if strings.ContainsAny(addr[:strings.LastIndexByte(addr, '@')], "@%") {
			t.Fatalf("relayFrom accepted %q: an address within the local part", addr)
		}
		if strings.IndexFunc(addr+name, unicode.IsControl) >= 0 || strings.Contains(name, "@") {
			t.Fatalf("address %q, name %q: not safe to show or to put in a header", addr, name)
		}
	})
}

// dkimFromFields returns the values of the From fields of a message's
// header as go-msgauth's DKIM verifier reads them (dkim/header.go): lines
// as net/textproto reads them up to the first empty one, a line that
// starts with a space or tab continuing the field before it, the name
// before the first colon with spaces trimmed, compared without case.
func dkimFromFields(msg []byte) []string {
	tr := bufio.NewReader(bytes.NewReader(msg))
	var fields []string
	for {
		l, err := tr.ReadString('\n')
		if err != nil && l == "" {
			break
		}
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if l == "" {
			break
		}
		if len(fields) > 0 && (l[0] == ' ' || l[0] == '\t') {
			fields[len(fields)-1] += "\r\n" + l
		} else {
			fields = append(fields, l)
		}
		if err != nil {
			break
		}
	}
	var froms []string
	for _, f := range fields {
		k, v, _ := strings.Cut(f, ":")
		if strings.EqualFold(strings.TrimSpace(k), "from") {
			froms = append(froms, strings.ReplaceAll(v, "\r\n", ""))
		}
	}
	return froms
}
