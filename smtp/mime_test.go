package smtp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
)

// The contents the fixtures in testdata/ carry, base64-encoded.
const (
	testPDF = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
	testPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
	testGIF = "R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
)

func mimeUnbase64(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// partRecorder is a partCreator that keeps the parts it is given.
type partRecorder struct {
	parts       []*recordedPart
	createErr   error // returned by CreatePart
	writeErr    error // returned by Write
	discardData bool  // count bytes only
}

type recordedPart struct {
	securetextd.Part
	data   bytes.Buffer
	size   int64
	closed bool
	store  *partRecorder
}

func (s *partRecorder) CreatePart(p securetextd.Part) (io.WriteCloser, error) {
	if s.createErr != nil {
		return nil, s.createErr
	}
	if n := len(s.parts); n > 0 && !s.parts[n-1].closed {
		return nil, fmt.Errorf("part %d is still open", n-1)
	}
	fp := &recordedPart{Part: p, store: s}
	s.parts = append(s.parts, fp)
	return fp, nil
}

func (p *recordedPart) Write(b []byte) (int, error) {
	if p.closed {
		return 0, errors.New("write after close")
	}
	if p.store.writeErr != nil {
		return 0, p.store.writeErr
	}
	p.size += int64(len(b))
	if p.store.discardData {
		return len(b), nil
	}
	return p.data.Write(b)
}

func (p *recordedPart) Close() error {
	p.closed = true
	return nil
}

func (p *recordedPart) MarkDamaged() { p.Damaged = true }

var _ damageMarker = (*recordedPart)(nil)

// mimeWant is a part as a test expects it.
type mimeWant struct {
	Kind     securetextd.PartKind
	Type     string
	Filename string
	CID      string
	Damaged  bool
	Content  string
}

func (w mimeWant) String() string {
	return fmt.Sprintf("%s %s %q cid=%q damaged=%v %d bytes %.80q", w.Kind, w.Type, w.Filename, w.CID, w.Damaged, len(w.Content), w.Content)
}

func recorded(s *partRecorder) []mimeWant {
	var out []mimeWant
	for _, p := range s.parts {
		out = append(out, mimeWant{p.Kind, p.ContentType, p.Filename, p.ContentID, p.Damaged, p.data.String()})
	}
	return out
}

func readMIMEFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatalf("%s: has bare LF line endings; fixtures use CRLF", name)
	}
	return b
}

type mimeCase struct {
	file string
	lim  mimeLimits
	want []mimeWant
	// For a refused message: the reply's code, enhanced code and a piece
	// of its text.
	code     int
	enhanced gosmtp.EnhancedCode
	text     string
}

func mimeCases() map[string]mimeCase {
	const (
		text  = securetextd.PartText
		html  = securetextd.PartHTML
		att   = securetextd.PartAttachment
		inner = securetextd.PartInline
	)
	pdf, png, gif := testPDF, mimeUnbase64(testPNG), mimeUnbase64(testGIF)
	var jpg []byte
	for range 3 {
		for i := range 256 {
			jpg = append(jpg, byte(i))
		}
	}
	return map[string]mimeCase{
		"plain text": {file: "plain.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "Hello,\r\n\r\nyour results are ready.\r\n-- \r\nAlice\r\n"},
		}},
		"html with inline image": {file: "html-inline.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "See the logo. "},
			{Kind: html, Type: "text/html", Content: `<p>See the <img src="cid:logo@clinic.example"> logo.</p>`},
			{Kind: inner, Type: "image/png", Filename: "logo.png", CID: "logo@clinic.example", Content: png},
		}},
		"attachments": {file: "attachments.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "Three files attached."},
			{Kind: att, Type: "application/pdf", Filename: "Befund für Müller.pdf", Content: pdf},
			{Kind: att, Type: "application/pdf", Filename: "Überweisung.pdf", Content: pdf},
			{Kind: att, Type: "application/pdf", Filename: "résumé.pdf", Content: pdf},
			{Kind: att, Type: "image/jpeg", Filename: "attachment.jpg", Content: string(jpg)},
		}},
		"nested multiparts": {file: "nested.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "Plain version."},
			{Kind: html, Type: "text/html", CID: "root@clinic.example", Content: `<p>HTML version <img src="cid:dot@clinic.example"></p>`},
			{Kind: inner, Type: "image/gif", Filename: "attachment.gif", CID: "dot@clinic.example", Content: gif},
			{Kind: att, Type: "application/pdf", Filename: "report.pdf", Content: pdf},
			{Kind: inner, Type: "image/png", Filename: "attachment.png", CID: "gmail-emoji@clinic.example", Content: png},
		}},
		"charsets": {file: "charsets.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "Grüße aus Köln, Prüfung am Montag. Ein sehr langer Satz, der umbrochen wird."},
			{Kind: text, Type: "text/plain", Content: "“Bitte” – Kosten: 20 €"},
			{Kind: html, Type: "text/html", Content: "<p>こんにちは、山田様</p>\r\n"},
		}},
		"forwarded message": {file: "forward.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "Forwarding Bob's mail."},
			{Kind: att, Type: "message/rfc822", Filename: "forwarded.eml", Content: mimeForwarded},
		}},
		"multipart/signed": {file: "signed.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "Signed words."},
			{Kind: att, Type: "application/pgp-signature", Filename: "signature.asc",
				Content: "-----BEGIN PGP SIGNATURE-----\r\niQEzBAEBCAAdFiEE\r\n-----END PGP SIGNATURE-----"},
		}},
		"corrupt base64": {file: "corrupt-base64.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "Before."},
			{Kind: att, Type: "application/pdf", Filename: "scan.pdf", Damaged: true, Content: pdf[:30]},
			{Kind: text, Type: "text/plain", Content: "After."},
		}},
		"unknown charset": {file: "unknown-charset.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "Plain words in a charset nobody knows."},
			{Kind: att, Type: "text/plain", Filename: "body.txt", Content: "Caf\xe9 cr\xe8me"},
		}},
		"unknown transfer encoding": {file: "unknown-encoding.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "See attachment."},
			{Kind: att, Type: "application/octet-stream", Filename: "report.pdf", Damaged: true, Content: "ZZZZ-encoded-as-base9000-ZZZZ"},
		}},
		"multipart without boundary": {file: "missing-boundary.eml", want: []mimeWant{
			{Kind: att, Type: "text/plain", Filename: "body.txt",
				Content: "--lost\r\nContent-Type: text/plain\r\n\r\nHello without a boundary.\r\n--lost--\r\n"},
		}},
		"broken parts": {file: "broken-parts.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "I have no header at all.\r\n"},
			{Kind: text, Type: "text/plain", Content: "Forgot the empty line."},
			{Kind: att, Type: "application/x-zip-compressed", Filename: "records.zip", Content: mimeUnbase64("UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==")},
			{Kind: att, Type: "application/pdf", Filename: "invoice.pdf", Content: pdf},
			{Kind: text, Type: "text/plain", Damaged: true, Content: "The last part has no closing boundary.\r\n"},
		}},
		"filenames": {file: "filenames.eml", want: []mimeWant{
			{Kind: att, Type: "application/pdf", Filename: `"><img src=x onerror=alert(1)>.pdf`, Content: "x"},
			{Kind: att, Type: "text/plain", Filename: "passwd", Content: "root:x:0:0"},
			{Kind: att, Type: "application/octet-stream", Filename: "invoicefdp.exe", Content: "y"},
			{Kind: att, Type: "application/pdf", Filename: "win.ini", Content: "z"},
			{Kind: att, Type: "application/pdf", Filename: strings.Repeat("A", 251) + ".pdf", Content: "w"},
			{Kind: att, Type: "application/pdf", Filename: "attachment.pdf", Content: "v"},
		}},
		"header only": {file: "no-body.eml", want: nil},
		"no empty line after the header": {file: "no-separator.eml", want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "This line starts the body.\r\nContent-Type: text/html\r\n\r\nBody.\r\n"},
		}},
		"nesting at the limit": {file: "too-deep.eml", lim: mimeLimits{MaxDepth: 4}, want: []mimeWant{
			{Kind: text, Type: "text/plain", Content: "Deep down."},
		}},

		"not a message": {file: "not-a-message.eml",
			code: 554, enhanced: gosmtp.EnhancedCode{5, 6, 0}, text: "message header is malformed (line 1 is not a header field)"},
		"header too big": {file: "header-too-big.eml", lim: mimeLimits{MaxHeaderBytes: 2048},
			code: 552, enhanced: gosmtp.EnhancedCode{5, 3, 4}, text: "message header exceeds 2 KiB"},
		"part header too big": {file: "part-header-too-big.eml", lim: mimeLimits{MaxHeaderBytes: 2048},
			code: 552, enhanced: gosmtp.EnhancedCode{5, 3, 4}, text: "MIME part header exceeds 2 KiB"},
		"too many parts": {file: "too-many-parts.eml", lim: mimeLimits{MaxParts: 5},
			code: 552, enhanced: gosmtp.EnhancedCode{5, 3, 4}, text: "more than 5 MIME parts"},
		"nesting too deep": {file: "too-deep.eml", lim: mimeLimits{MaxDepth: 3},
			code: 554, enhanced: gosmtp.EnhancedCode{5, 6, 0}, text: "MIME parts nested more than 3 deep"},
	}
}

// mimeForwarded is the message/rfc822 part of forward.eml.
const mimeForwarded = "From: Bob <bob@lab.example>\r\nTo: alice@clinic.example\r\nSubject: Lab values\r\n" +
	"Content-Type: multipart/mixed; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\n" +
	"Values attached.\r\n--inner\r\nContent-Type: application/pdf; name=\"lab.pdf\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n\r\n" +
	"JVBERi0xLjQKJeLjz9MKMSAwIG9iago8PCAvVHlwZSAvQ2F0YWxvZyA+PgplbmRvYmoKdHJhaWxl\r\n" +
	"cgo8PCAvUm9vdCAxIDAgUiA+PgolJUVPRgo=\r\n--inner--\r\n"

func TestWalkMessage(t *testing.T) {
	for name, tc := range mimeCases() {
		t.Run(name, func(t *testing.T) {
			msg := readMIMEFixture(t, tc.file)
			store := &partRecorder{}
			info, err := walkMessage(bytes.NewReader(msg), store, tc.lim)
			if tc.code != 0 {
				wantMIMERefusal(t, err, tc.code, tc.enhanced, tc.text)
				return
			}
			if err != nil {
				t.Fatalf("walkMessage: %v", err)
			}
			if info == nil {
				t.Fatal("walkMessage returned no headerInfo")
			}
			checkMIMEParts(t, store, tc.want)
		})
	}
}

// TestWalkReadSizes walks every fixture again through readers that return
// one byte, or half of what is asked, at a time: where a read ends must not
// change what the parts are.
func TestWalkReadSizes(t *testing.T) {
	readers := map[string]func(io.Reader) io.Reader{
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for name, tc := range mimeCases() {
		for rname, wrap := range readers {
			t.Run(name+"/"+rname, func(t *testing.T) {
				store := &partRecorder{}
				_, err := walkMessage(wrap(bytes.NewReader(readMIMEFixture(t, tc.file))), store, tc.lim)
				if tc.code != 0 {
					wantMIMERefusal(t, err, tc.code, tc.enhanced, tc.text)
					return
				}
				if err != nil {
					t.Fatalf("walkMessage: %v", err)
				}
				checkMIMEParts(t, store, tc.want)
			})
		}
	}
}

func checkMIMEParts(t *testing.T, store *partRecorder, want []mimeWant) {
	t.Helper()
	have := recorded(store)
	if !slices.Equal(have, want) {
		t.Errorf("parts:\n%s\nwant:\n%s", mimePartList(have), mimePartList(want))
	}
	for i, p := range store.parts {
		if !p.closed {
			t.Errorf("part %d was not closed", i)
		}
	}
}

func mimePartList(ps []mimeWant) string {
	if len(ps) == 0 {
		return "\t(none)"
	}
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\t%s\n", p)
	}
	return b.String()
}

func wantMIMERefusal(t *testing.T, err error, code int, enhanced gosmtp.EnhancedCode, text string) {
	t.Helper()
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want an SMTP %d reply", err, code)
	}
	if se.Code != code || se.EnhancedCode != enhanced || !strings.Contains(se.Message, text) {
		t.Errorf("reply = %d %v %q, want %d %v containing %q", se.Code, se.EnhancedCode, se.Message, code, enhanced, text)
	}
}

func TestWalkHeaderInfo(t *testing.T) {
	info, err := walkMessage(bytes.NewReader(readMIMEFixture(t, "plain.eml")), &partRecorder{}, mimeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Subject != "Your test results" {
		t.Errorf("Subject = %q", info.Subject)
	}
	if info.FromFields != 1 || len(info.From) != 1 || info.From[0].Address != "alice@clinic.example" || info.From[0].Name != "Dr. Alice Example" {
		t.Errorf("From = %v (%d fields)", info.From, info.FromFields)
	}
	if info.MessageID != "plain-1@clinic.example" {
		t.Errorf("MessageID = %q", info.MessageID)
	}
	if !slices.Equal(info.InReplyTo, []string{"prev-2@clinic.example"}) {
		t.Errorf("InReplyTo = %q", info.InReplyTo)
	}
	if !slices.Equal(info.References, []string{"root-1@clinic.example", "prev-2@clinic.example"}) {
		t.Errorf("References = %q", info.References)
	}
	if info.DispositionNotificationTo != "alice@clinic.example" {
		t.Errorf("DispositionNotificationTo = %q", info.DispositionNotificationTo)
	}

	info, err = walkMessage(bytes.NewReader(readMIMEFixture(t, "charsets.eml")), &partRecorder{}, mimeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Subject != "診察の予約" {
		t.Errorf("ISO-2022-JP Subject = %q", info.Subject)
	}
	if len(info.From) != 1 || info.From[0].Name != "Jürgen Müller" {
		t.Errorf("From = %v", info.From)
	}

	info, err = walkMessage(bytes.NewReader(readMIMEFixture(t, "two-from.eml")), &partRecorder{}, mimeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if info.FromFields != 2 {
		t.Errorf("FromFields = %d, want 2", info.FromFields)
	}
}

func TestWalkHeaderText(t *testing.T) {
	for _, tc := range []struct{ header, subject string }{
		{"Subject: =?utf-8?q?Befund=0D=0ABcc:_x@evil.example?=", "Befund  Bcc: x@evil.example"},
		{"Subject: =?x-unknown?q?abc?=", "=?x-unknown?q?abc?="},
		{"Subject: Gr\xfc\xdfe", "Grüße"},
		{"Subject: =?windows-1250?Q?Automatyczna_odpowied=9F?=", "Automatyczna odpowiedź"},
	} {
		info, err := walkMessage(strings.NewReader(tc.header+"\r\n\r\nbody\r\n"), &partRecorder{}, mimeLimits{})
		if err != nil {
			t.Fatal(err)
		}
		if info.Subject != tc.subject {
			t.Errorf("%q: Subject = %q, want %q", tc.header, info.Subject, tc.subject)
		}
	}
}

// TestWalkEdgeCases covers what is easier to read inline than as a fixture.
func TestWalkEdgeCases(t *testing.T) {
	const (
		text = securetextd.PartText
		att  = securetextd.PartAttachment
	)
	longQP := strings.Repeat("=C3=A9", 2000) // one 12 KB line
	for _, tc := range []struct {
		name, msg string
		want      []mimeWant
	}{
		{"blank body makes no part", "Subject: x\r\n\r\n  \r\n\t\r\n", nil},
		{"corrupt base64 text is kept, empty and damaged",
			"Content-Transfer-Encoding: base64\r\n\r\n!!!!\r\n",
			[]mimeWant{{Kind: text, Type: "text/plain", Damaged: true}}},
		{"quoted-printable line over 4 KiB, soft break, stray =",
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + longQP + "=\r\n= 1+1=3D2=\r\n",
			[]mimeWant{{Kind: text, Type: "text/plain", Content: strings.Repeat("é", 2000) + "= 1+1=2"}}},
		{"8-bit text without a charset",
			"Content-Type: text/plain\r\n\r\nCaf\xe9 \xe2\x82\xac 5\r\n",
			[]mimeWant{{Kind: text, Type: "text/plain", Content: "Café € 5\r\n"}}},
		{"UTF-8 across the end of the head read whole (utf8Text)",
			"Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat("a", textHeadSize-1) + "é ok",
			[]mimeWant{{Kind: text, Type: "text/plain", Content: strings.Repeat("a", textHeadSize-1) + "é ok"}}},
		{"a stray 8-bit byte past the head",
			"Content-Type: text/plain\r\n\r\n" + strings.Repeat("a", textHeadSize+10) + "Caf\xe9",
			[]mimeWant{{Kind: text, Type: "text/plain", Content: strings.Repeat("a", textHeadSize+10) + "Café"}}},
		{"a body that ends inside a rune",
			"Content-Type: text/plain; charset=us-ascii\r\n\r\nEnd \xe2\x82",
			[]mimeWant{{Kind: text, Type: "text/plain", Content: "End â‚"}}},
		{"parameters without semicolons, 8-bit and RFC 2231 in Latin-1",
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
				"Content-Type: application/pdf name=\"a.pdf\"\r\nContent-Disposition: attachment; filename*=iso-8859-1''Gr%FC%DFe.pdf; x=(\r\n\r\nA\r\n--b--\r\n",
			[]mimeWant{{Kind: att, Type: "application/pdf", Filename: "Grüße.pdf", Content: "A"}}},
		{"a digest's parts are messages",
			"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nFirst.\r\n--d--\r\n",
			[]mimeWant{{Kind: att, Type: "message/rfc822", Filename: "forwarded.eml", Content: "Subject: one\r\n\r\nFirst."}}},
		{"empty multipart", "Content-Type: multipart/mixed; boundary=e\r\n\r\n--e--\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &partRecorder{}
			if _, err := walkMessage(strings.NewReader(tc.msg), store, mimeLimits{}); err != nil {
				t.Fatal(err)
			}
			checkMIMEParts(t, store, tc.want)
		})
	}
}

// TestWalkDefaultLimits checks the defaults on generated messages just over
// them, and the words of the replies.
func TestWalkDefaultLimits(t *testing.T) {
	big := "Subject: big\r\nX-Big: " + strings.Repeat("x", 1<<20) + "\r\n\r\nbody\r\n"
	_, err := walkMessage(strings.NewReader(big), &partRecorder{}, mimeLimits{})
	wantMIMERefusal(t, err, 552, gosmtp.EnhancedCode{5, 3, 4}, "message header exceeds 1 MiB")

	// One long header line, no line end at all: still bounded.
	_, err = walkMessage(io.LimitReader(mimeRepeatByte('x'), 64<<20), &partRecorder{}, mimeLimits{})
	wantMIMERefusal(t, err, 552, gosmtp.EnhancedCode{5, 3, 4}, "message header exceeds 1 MiB")

	var many strings.Builder
	many.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
	for i := range 501 {
		fmt.Fprintf(&many, "--b\r\n\r\npart %d\r\n", i)
	}
	many.WriteString("--b--\r\n")
	_, err = walkMessage(strings.NewReader(many.String()), &partRecorder{}, mimeLimits{})
	wantMIMERefusal(t, err, 552, gosmtp.EnhancedCode{5, 3, 4}, "more than 500 MIME parts")

	var deep strings.Builder
	deep.WriteString("Content-Type: multipart/mixed; boundary=b0\r\n\r\n")
	for i := 1; i <= 21; i++ {
		fmt.Fprintf(&deep, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i-1, i)
	}
	_, err = walkMessage(strings.NewReader(deep.String()), &partRecorder{}, mimeLimits{})
	wantMIMERefusal(t, err, 554, gosmtp.EnhancedCode{5, 6, 0}, "nested more than 20 deep")
}

type mimeRepeatByte byte

func (r mimeRepeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// mimeFailingReader returns the first n bytes of msg, then err.
type mimeFailingReader struct {
	msg []byte
	n   int
	err error
}

func (r *mimeFailingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	c := copy(p, r.msg[:min(r.n, len(r.msg))])
	r.msg, r.n = r.msg[c:], r.n-c
	return c, nil
}

// TestWalkReaderErrors checks that an error of the message reader comes
// back unchanged from wherever the walk was: in a header, in a part, in a
// base64 body, in the epilogue.
func TestWalkReaderErrors(t *testing.T) {
	bareLF := &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2}, Message: "bare <LF>"}
	msg := readMIMEFixture(t, "nested.eml")
	for _, readErr := range []error{io.ErrUnexpectedEOF, gosmtp.ErrDataTooLarge, bareLF} {
		for _, at := range []string{"", "Subject", "Plain version", "--rel\r\nContent-Type: image/gif", "R0lGOD", "--outer--", "epilogue"} {
			n := bytes.Index(msg, []byte(at))
			if n < 0 {
				t.Fatalf("%q not in nested.eml", at)
			}
			_, err := walkMessage(&mimeFailingReader{msg: msg, n: n + len(at)/2, err: readErr}, &partRecorder{}, mimeLimits{})
			if !errors.Is(err, readErr) {
				t.Errorf("reader fails at %q with %v: walkMessage = %v", at, readErr, err)
			}
			var se *gosmtp.SMTPError
			if errors.As(readErr, &se) && (!errors.As(err, &se) || se != readErr) {
				t.Errorf("reader fails at %q with %v: the reply is not the reader's: %v", at, readErr, err)
			}
		}
	}
}

func TestWalkStoreErrors(t *testing.T) {
	errFull := errors.New("disk full")
	for _, store := range []*partRecorder{{createErr: errFull}, {writeErr: errFull}} {
		_, err := walkMessage(bytes.NewReader(readMIMEFixture(t, "attachments.eml")), store, mimeLimits{})
		if !errors.Is(err, errFull) {
			t.Errorf("walkMessage = %v, want it to wrap %v", err, errFull)
		}
		var se *gosmtp.SMTPError
		if errors.As(err, &se) {
			t.Errorf("a store error became an SMTP reply: %v", se)
		}
	}
}

// mimeBase64Message generates a message with one base64 attachment of n lines
// of 57 decoded bytes each, as it is read: it never exists in memory whole.
func mimeBase64Message(lines int) io.Reader {
	head := "From: alice@clinic.example\r\nSubject: big\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nSee the scan.\r\n" +
		"--big\r\nContent-Type: application/octet-stream; name=\"scan.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	line := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("0123456789abcdefghi"), 3)) + "\r\n"
	return io.MultiReader(strings.NewReader(head), &mimeLineRepeater{line: line, n: lines}, strings.NewReader("--big--\r\n"))
}

type mimeLineRepeater struct {
	line string
	n    int
	off  int
}

func (r *mimeLineRepeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.n > 0 {
		c := copy(p[n:], r.line[r.off:])
		n += c
		if r.off += c; r.off == len(r.line) {
			r.off, r.n = 0, r.n-1
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// TestWalkStreams sends a 100 MiB attachment (16 MiB with -short) through
// the walk and checks that it allocates a small, fixed amount, not the
// size of the part.
func TestWalkStreams(t *testing.T) {
	size := int64(100 << 20)
	if testing.Short() {
		size = 16 << 20
	}
	lines := int(size / 57)
	store := &partRecorder{discardData: true}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := walkMessage(mimeBase64Message(lines), store, mimeLimits{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(store.parts) != 2 || store.parts[1].size != int64(lines)*57 || store.parts[1].Damaged {
		t.Fatalf("parts = %v, want the text and %d bytes of attachment", recorded(store), lines*57)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MiB attachment: %d KiB allocated in all", size>>20, allocated>>10)
	if allocated > 1<<20 {
		t.Errorf("walking a %d MiB attachment allocated %d KiB; want < 1 MiB", size>>20, allocated>>10)
	}
}

// BenchmarkWalk1MiB walks a message with a 1 MiB base64 attachment.
func BenchmarkWalk1MiB(b *testing.B) {
	msg, err := io.ReadAll(mimeBase64Message(1 << 20 / 57))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := walkMessage(bytes.NewReader(msg), &partRecorder{discardData: true}, mimeLimits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// mimeCorpusDir is the shared corpus of real-world and broken mail written
// by other projects (../../shared/corpus). It must be there: a missing
// corpus fails the test rather than skipping it.
var mimeCorpusDir = filepath.Join("..", "..", "shared", "corpus")

// TestWalkCorpus walks every message of the corpus. Each must be taken, or
// refused with a 5xx reply that says why; none may panic or hang.
func TestWalkCorpus(t *testing.T) {
	var files []string
	err := filepath.WalkDir(mimeCorpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		switch {
		case d.IsDir():
			return nil
		case name == "README.md" || strings.HasPrefix(name, "LICENSE") || strings.HasPrefix(name, "."):
			return nil // about the corpus, not in it
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		t.Fatalf("corpus %s: %v", mimeCorpusDir, err)
	}
	if len(files) == 0 {
		t.Fatalf("corpus %s: no messages", mimeCorpusDir)
	}
	refused := 0
	for _, path := range files {
		name, _ := filepath.Rel(mimeCorpusDir, path)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		msg := mimeCRLF(raw)
		type result struct {
			store *partRecorder
			err   error
			panic any
		}
		done := make(chan result, 1)
		go func() {
			store := &partRecorder{}
			defer func() {
				if p := recover(); p != nil {
					done <- result{panic: p}
				}
			}()
			_, err := walkMessage(bytes.NewReader(msg), store, mimeLimits{})
			done <- result{store: store, err: err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: walk still running after 10 s", name)
			continue
		}
		switch {
		case r.panic != nil:
			t.Errorf("%s: panic: %v", name, r.panic)
		case r.err != nil:
			var se *gosmtp.SMTPError
			if !errors.As(r.err, &se) || se.Code/100 != 5 || se.Message == "" {
				t.Errorf("%s: %v, want nil or a 5xx reply", name, r.err)
				continue
			}
			refused++
			t.Logf("%-55s refused: %d %d.%d.%d %s", name, se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
		default:
			t.Logf("%-55s %s", name, mimePartSummary(r.store))
		}
	}
	t.Logf("%d messages: %d taken, %d refused", len(files), len(files)-refused, refused)
}

// mimeCRLF normalises line endings to CRLF, as an MTA does before DATA.
func mimeCRLF(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

func mimePartSummary(s *partRecorder) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d parts:", len(s.parts))
	for _, p := range s.parts {
		fmt.Fprintf(&b, " %s(%s", p.Kind, p.ContentType)
		if p.Filename != "" {
			fmt.Fprintf(&b, " %q", p.Filename)
		}
		fmt.Fprintf(&b, " %dB", p.size)
		if p.Damaged {
			b.WriteString(" damaged")
		}
		b.WriteString(")")
	}
	return b.String()
}

// TestWalkIndentedFirstHeader: a message whose first header line is
// indented keeps all of its header, so a From line put above a signed
// message is seen beside the real one (two From fields), not instead of it.
func TestWalkIndentedFirstHeader(t *testing.T) {
	msg := " From: ceo@clinic.example\r\nFrom: dr@clinic.example\r\nSubject: hi\r\n\r\nbody\r\n"
	rec := &partRecorder{}
	h, err := walkMessage(strings.NewReader(msg), rec, mimeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if h.FromFields != 2 || h.Subject != "hi" {
		t.Errorf("FromFields = %d, Subject = %q: the header was cut short", h.FromFields, h.Subject)
	}
	if len(rec.parts) != 1 || rec.parts[0].data.String() != "body\r\n" {
		t.Errorf("body = %+v", rec.parts)
	}
}
