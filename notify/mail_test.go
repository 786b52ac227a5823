package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/big"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
)

// fakeMailStore is a MailStore in memory.
type fakeMailStore struct {
	conv    *securetextd.Conversation
	msgs    []*securetextd.Message
	content map[int64][][]byte // message id → part contents
	err     error              // returned by every call when set
	partErr error              // returned by ReadAt of every part when set
	opened  int
	closed  int
}

func (s *fakeMailStore) Conversation(ctx context.Context, id int64) (*securetextd.Conversation, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.conv == nil || id != s.conv.ID {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "no such conversation")
	}
	c := *s.conv
	return &c, nil
}

func (s *fakeMailStore) ConversationMessage(ctx context.Context, conv, id int64) (*securetextd.Message, error) {
	m, _, err := s.MessageInConversation(ctx, conv, id)
	return m, err
}

func (s *fakeMailStore) MessageInConversation(ctx context.Context, conv, id int64) (msg, before *securetextd.Message, err error) {
	if s.err != nil {
		return nil, nil, s.err
	}
	for _, m := range s.msgs {
		if m.ID == id {
			return m, before, nil
		}
		if m.Direction == securetextd.Inbound {
			before = m
		}
	}
	return nil, nil, securetextd.Errorf(securetextd.ENOTFOUND, "no such message")
}

func (s *fakeMailStore) OpenPart(ctx context.Context, messageID int64, index int) (io.ReaderAt, int64, error) {
	if s.err != nil {
		return nil, 0, s.err
	}
	parts := s.content[messageID]
	if index >= len(parts) {
		return nil, 0, securetextd.Errorf(securetextd.ENOTFOUND, "no such part")
	}
	s.opened++
	return &fakePart{Reader: bytes.NewReader(parts[index]), s: s}, int64(len(parts[index])), nil
}

// fakePart is an opened part; it counts its Close.
type fakePart struct {
	*bytes.Reader
	s *fakeMailStore
}

func (p *fakePart) ReadAt(b []byte, off int64) (int, error) {
	if p.s.partErr != nil {
		return 0, p.s.partErr
	}
	return p.Reader.ReadAt(b, off)
}

func (p *fakePart) Close() error {
	p.s.closed++
	return nil
}

// testJPEG returns a small real JPEG image.
func testJPEG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		img.Set(x, x, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const (
	testReplyText = "Thank you, doctor.\nThe photo is attached."
	testClinician = "dr.smith@clinic.example"
)

// newMailStore returns a conversation 42 with +12125550123: an inbound
// message (id 1), and a reply to it (id 2) with a text and a JPEG.
func newMailStore(t *testing.T, subject, filename string) *fakeMailStore {
	t.Helper()
	received := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return &fakeMailStore{
		conv: &securetextd.Conversation{ID: 42, Phone: "+12125550123", Sender: testClinician},
		msgs: []*securetextd.Message{
			{
				ID: 1, Direction: securetextd.Inbound, Sender: testClinician, SenderName: "Dr. Ann Smith",
				Subject: subject, MessageID: "orig-1@clinic.example", References: []string{"root@clinic.example"},
				Received: received, Parts: []securetextd.Part{{Kind: securetextd.PartText, ContentType: "text/plain"}},
			},
			{
				ID: 2, Direction: securetextd.Reply, MessageID: "reply-2@secure.text", Received: received.Add(time.Hour),
				Parts: []securetextd.Part{
					{Kind: securetextd.PartText, ContentType: "text/plain"},
					{Kind: securetextd.PartAttachment, ContentType: "image/jpeg", Filename: filename},
				},
			},
		},
		content: map[int64][][]byte{
			1: {[]byte("Your results are in.")},
			2: {[]byte(testReplyText), testJPEG(t)},
		},
	}
}

func replyJob(t *testing.T, id int64) *securetextd.Job {
	t.Helper()
	p, err := json.Marshal(securetextd.MailJob{MessageID: 2, ConversationID: 42})
	if err != nil {
		t.Fatal(err)
	}
	return &securetextd.Job{ID: id, Kind: securetextd.JobKindReply, Payload: p}
}

func resetJob(t *testing.T, to, token string) *securetextd.Job {
	t.Helper()
	p, err := json.Marshal(securetextd.MailJob{To: to, Phone: "+12125550123", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return &securetextd.Job{ID: 7, Kind: securetextd.JobKindReset, Payload: p}
}

// testRelay is a go-smtp server on loopback that stands for the
// organization's relay. It records what it was given.
type testRelay struct {
	addr string
	pool *x509.CertPool // trusts its certificate, when it has one

	mu       sync.Mutex
	mails    []relayedMail
	mailCmds int // MAIL commands seen
	// loggedOut receives when a session ends.
	loggedOut chan struct{}
	// rcptErr and dataErr, when set, are the replies to RCPT and DATA.
	rcptErr, dataErr *smtp.SMTPError
	// user and password, when set, are the only login accepted, and
	// sending requires it.
	user, password string
}

type relayedMail struct {
	from, to string
	tls      bool
	authed   string
	data     []byte
}

type relayOptions struct {
	tls            bool
	user, password string
	rcptErr        *smtp.SMTPError
	dataErr        *smtp.SMTPError
}

func startRelay(t *testing.T, o relayOptions) *testRelay {
	t.Helper()
	r := &testRelay{rcptErr: o.rcptErr, dataErr: o.dataErr, user: o.user, password: o.password,
		loggedOut: make(chan struct{}, 100)}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r, c: c}, nil
	}))
	s.Domain = "relay.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	if o.tls {
		cert, pool := testCertificate(t)
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		r.pool = pool
	} else {
		s.AllowInsecureAuth = true
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return r
}

func (r *testRelay) received() []relayedMail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.mails)
}

type relaySession struct {
	r      *testRelay
	c      *smtp.Conn
	from   string
	to     string
	authed string
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.r.user || pass != s.r.password {
			return smtp.ErrAuthFailed
		}
		s.authed = user
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, opts *smtp.MailOptions) error {
	s.r.mu.Lock()
	s.r.mailCmds++
	s.r.mu.Unlock()
	if s.r.user != "" && s.authed == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.r.rcptErr != nil {
		return s.r.rcptErr
	}
	s.to = to
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.r.dataErr != nil {
		return s.r.dataErr
	}
	_, tls := s.c.TLSConnectionState()
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.mails = append(s.r.mails, relayedMail{from: s.from, to: s.to, tls: tls, authed: s.authed, data: data})
	return nil
}

func (s *relaySession) Reset() {}
func (s *relaySession) Logout() error {
	s.r.loggedOut <- struct{}{}
	return nil
}

// testCertificate makes a self-signed certificate for 127.0.0.1 and a
// pool that trusts it.
func testCertificate(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relay.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func mailConfig() MailConfig {
	return MailConfig{
		RequireTLS: true,
		From:       "securetextd@clinic.example",
		Org:        "Acme Clinic",
		Domain:     "secure.text",
		PublicURL:  "https://portal.clinic.example/",
		Timeout:    5 * time.Second,
		Seal:       testKeys(),
		ConsoleURL: "https://console.clinic.example/",
		// These tests read the reply's words and files back from the
		// email; the notice that replaces them is mail_notice_test.go's.
		ReplyMode: ReplyContent,
	}
}

// relayMailer returns a Mailer that sends to r.
func relayMailer(t *testing.T, r *testRelay, st MailStore) *Mailer {
	t.Helper()
	c := mailConfig()
	c.Relay = r.addr
	c.Username, c.Password = r.user, r.password
	if r.pool != nil {
		c.TLSConfig = &tls.Config{RootCAs: r.pool}
	}
	m, err := NewMailer(c, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// parsed is a received email, read with go-message.
type parsed struct {
	header mail.Header
	text   string
	files  []parsedFile
}

type parsedFile struct {
	name, contentType string
	data              []byte
}

func parseMail(t *testing.T, data []byte) parsed {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	p := parsed{header: mr.Header}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			t.Fatal(err)
		}
		switch h := part.Header.(type) {
		case *mail.InlineHeader:
			if ct, params, _ := h.ContentType(); ct != "text/plain" || params["charset"] != "utf-8" {
				t.Errorf("text part is %s %v, want text/plain; charset=utf-8", ct, params)
			}
			if cte := h.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
				t.Errorf("text part is %q, want quoted-printable", cte)
			}
			p.text += string(body)
		case *mail.AttachmentHeader:
			name, err := h.Filename()
			if err != nil {
				t.Errorf("filename: %v", err)
			}
			ct, _, _ := h.ContentType()
			p.files = append(p.files, parsedFile{name, ct, body})
		}
	}
	return p
}

func TestMailReply(t *testing.T) {
	r := startRelay(t, relayOptions{tls: true, user: "notify", password: "s3cret"})
	st := newMailStore(t, "Your results", "photo.jpg")
	if err := relayMailer(t, r, st).Send(t.Context(), replyJob(t, 1)); err != nil {
		t.Fatalf("Send = %v", err)
	}
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("relay received %d mails, want 1", len(got))
	}
	m := got[0]
	if m.from != "securetextd@clinic.example" || m.to != testClinician {
		t.Errorf("envelope %s → %s", m.from, m.to)
	}
	if !m.tls || m.authed != "notify" {
		t.Errorf("tls %v, logged in as %q; want TLS and AUTH as notify", m.tls, m.authed)
	}
	if st.closed != st.opened || st.opened != 2 {
		t.Errorf("opened %d parts, closed %d; want 2 and 2", st.opened, st.closed)
	}

	p := parseMail(t, m.data)
	h := p.header
	for key, want := range map[string]string{
		"From":       `"Acme Clinic secure reply" <securetextd@clinic.example>`,
		"To":         `"Dr. Ann Smith" <dr.smith@clinic.example>`,
		"Reply-To":   "<12125550123+42@secure.text>",
		"Message-Id": "<reply-2@secure.text>",
	} {
		if v := h.Get(key); v != want {
			t.Errorf("%s: %q, want %q", key, v, want)
		}
	}
	if s, _ := h.Subject(); s != "Re: Your results" {
		t.Errorf("Subject %q", s)
	}
	if ids, _ := h.MsgIDList("In-Reply-To"); !slices.Equal(ids, []string{"orig-1@clinic.example"}) {
		t.Errorf("In-Reply-To %q", ids)
	}
	if ids, _ := h.MsgIDList("References"); !slices.Equal(ids, []string{"root@clinic.example", "orig-1@clinic.example"}) {
		t.Errorf("References %q", ids)
	}
	if d, err := h.Date(); err != nil || !d.Equal(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("Date %v, %v; want the reply's time", d, err)
	}
	if ct, _, _ := h.ContentType(); ct != "multipart/mixed" {
		t.Errorf("Content-Type %s", ct)
	}
	wantText := strings.ReplaceAll(testReplyText, "\n", "\r\n") + "\r\n\r\nSent from Acme Clinic's secure message portal by +12125550123\r\n"
	if p.text != wantText {
		t.Errorf("text %q, want %q", p.text, wantText)
	}
	if len(p.files) != 1 {
		t.Fatalf("%d attachments, want 1", len(p.files))
	}
	f := p.files[0]
	if f.name != "photo.jpg" || f.contentType != "image/jpeg" || !bytes.Equal(f.data, st.content[2][1]) {
		t.Errorf("attachment %q %s, %d bytes; want photo.jpg image/jpeg with the %d bytes stored",
			f.name, f.contentType, len(f.data), len(st.content[2][1]))
	}
}

func TestMailReplySubject(t *testing.T) {
	for in, want := range map[string]string{
		"Your results":     "Re: Your results",
		"Re: Your results": "Re: Your results",
		"RE: Your results": "RE: Your results",
		"re:x":             "re:x",
		"Results re: you":  "Re: Results re: you",
		"":                 "Re: your secure message",
		"  \r\n ":          "Re: your secure message",
		"Résultats":        "Re: Résultats",
	} {
		if got := replySubject(in); got != want {
			t.Errorf("replySubject(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMailHeaderInjection feeds CR LF through every field that comes from
// outside: subject, sender name, filename, message ids.
func TestMailHeaderInjection(t *testing.T) {
	r := startRelay(t, relayOptions{tls: true})
	evil := "\r\nBcc: x@evil.example"
	st := newMailStore(t, "Results"+evil, "scan.jpg"+evil)
	st.msgs[0].SenderName = "Ann" + evil
	st.msgs[0].References = []string{"a@b>\r\nBcc: x@evil.example"}
	if err := relayMailer(t, r, st).Send(t.Context(), replyJob(t, 1)); err != nil {
		t.Fatalf("Send = %v", err)
	}
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("relay received %d mails, want 1", len(got))
	}
	data := got[0].data
	if regexp.MustCompile(`(?im)^bcc:`).Match(data) {
		t.Errorf("a Bcc line reached the message:\n%s", data)
	}
	p := parseMail(t, data)
	if p.header.Has("Bcc") {
		t.Errorf("the header has Bcc: %q", p.header.Get("Bcc"))
	}
	if s, _ := p.header.Subject(); strings.ContainsAny(s, "\r\n") || !strings.HasPrefix(s, "Re: Results") {
		t.Errorf("Subject %q", s)
	}
	if len(p.files) != 1 || strings.ContainsAny(p.files[0].name, "\r\n") || !strings.HasPrefix(p.files[0].name, "scan.jpg") {
		t.Errorf("attachments %+v", p.files)
	}
	if ids, _ := p.header.MsgIDList("References"); !slices.Equal(ids, []string{"orig-1@clinic.example"}) {
		t.Errorf("References %q: the bad id should be dropped", ids)
	}
}

func TestMailReplyNonASCII(t *testing.T) {
	dir := t.TempDir()
	st := newMailStore(t, "Résultats d'analyse", "résumé ñ 写真.jpg")
	m := fileMailer(t, dir, st)
	if err := m.Send(t.Context(), replyJob(t, 1)); err != nil {
		t.Fatalf("Send = %v", err)
	}
	p := parseMail(t, readOnlyFile(t, dir))
	if s, _ := p.header.Subject(); s != "Re: Résultats d'analyse" {
		t.Errorf("Subject %q", s)
	}
	if len(p.files) != 1 || p.files[0].name != "résumé ñ 写真.jpg" {
		t.Errorf("attachments %+v", p.files)
	}
}

func TestMailReset(t *testing.T) {
	r := startRelay(t, relayOptions{tls: true})
	const token = "Qx7vR2kT9mW4pL6nB3cY8a"
	if err := relayMailer(t, r, &fakeMailStore{}).Send(t.Context(), resetJob(t, "patient@example.org", token)); err != nil {
		t.Fatalf("Send = %v", err)
	}
	got := r.received()
	if len(got) != 1 || got[0].to != "patient@example.org" {
		t.Fatalf("relay received %+v", got)
	}
	mr, err := mail.CreateReader(bytes.NewReader(got[0].data))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := mr.Header.Subject(); s != "Reset your password for Acme Clinic secure messages" {
		t.Errorf("Subject %q", s)
	}
	if to := mr.Header.Get("To"); to != "<patient@example.org>" {
		t.Errorf("To %q", to)
	}
	part, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(part.Body)
	for _, want := range []string{
		"https://portal.clinic.example/reset/" + token + "\r\n",
		"30 minutes",
		"If you did not ask, ignore this email.",
		"+1212*****23",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func TestMailRequireTLS(t *testing.T) {
	r := startRelay(t, relayOptions{})
	st := newMailStore(t, "Your results", "photo.jpg")
	err := relayMailer(t, r, st).Send(t.Context(), replyJob(t, 1))
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "relay does not offer STARTTLS") {
		t.Fatalf("Send = %v; want a temporary error about STARTTLS", err)
	}
	r.mu.Lock()
	cmds := r.mailCmds
	r.mu.Unlock()
	if cmds != 0 || len(r.received()) != 0 {
		t.Errorf("relay saw %d MAIL commands; want none in plain text", cmds)
	}

	// Allowed by the operator: plain text, but no password in it.
	m := relayMailer(t, r, st)
	m.c.RequireTLS = false
	if err := m.Send(t.Context(), replyJob(t, 1)); err != nil {
		t.Fatalf("Send without require_tls = %v", err)
	}
	if got := r.received(); len(got) != 1 || got[0].tls {
		t.Errorf("relay received %+v; want one mail in plain text", got)
	}
	m.c.Username, m.c.Password = "notify", "s3cret"
	if err := m.Send(t.Context(), replyJob(t, 1)); err == nil || IsPermanent(err) {
		t.Errorf("Send with a password and no TLS = %v; want a temporary error", err)
	}
}

func TestMailRelayErrors(t *testing.T) {
	down := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	tests := []struct {
		name      string
		opts      relayOptions
		addr      string // instead of the relay's
		permanent bool
		text      string
	}{
		{"550 at RCPT", relayOptions{rcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "<dr.smith@clinic.example>: no such user"}}, "", true, "550 5.1.1 <d***@clinic.example>: no such user"},
		{"451 at RCPT", relayOptions{rcptErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message: "try again later"}}, "", false, "451 4.3.0 try again later"},
		{"554 at DATA", relayOptions{dataErr: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: "content refused"}}, "", true, "554 5.6.0 content refused"},
		{"451 at DATA", relayOptions{dataErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message: "queue full"}}, "", false, "queue full"},
		{"bad password", relayOptions{user: "notify", password: "other"}, "", false, "535"},
		{"down", relayOptions{}, down, false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.tls = true
			r := startRelay(t, tt.opts)
			m := relayMailer(t, r, newMailStore(t, "Your results", "photo.jpg"))
			if tt.opts.user != "" {
				m.c.Password = "wrong"
			}
			if tt.addr != "" {
				m.c.Relay = tt.addr
			}
			err := m.Send(t.Context(), replyJob(t, 1))
			if err == nil || IsPermanent(err) != tt.permanent || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Send = %v (permanent %v); want permanent %v, with %q", err, IsPermanent(err), tt.permanent, tt.text)
			}
			if err != nil && strings.Contains(err.Error(), testClinician) {
				t.Errorf("error quotes the address: %v", err)
			}
			if n := len(r.received()); n != 0 {
				t.Errorf("relay kept %d mails", n)
			}
		})
	}
}

// TestMailPartFails checks that a part that cannot be read half-way
// leaves the relay with nothing: the session is dropped before the final
// dot.
func TestMailPartFails(t *testing.T) {
	r := startRelay(t, relayOptions{tls: true})
	st := newMailStore(t, "Your results", "photo.jpg")
	st.partErr = errors.New("age: chunk 3: authentication failed")
	err := relayMailer(t, r, st).Send(t.Context(), replyJob(t, 1))
	if err == nil || IsPermanent(err) {
		t.Fatalf("Send = %v; want a temporary error", err)
	}
	// Both sessions (the EHLO probe, then the one under TLS) are over.
	for range 2 {
		select {
		case <-r.loggedOut:
		case <-time.After(10 * time.Second):
			t.Fatal("the relay's sessions did not end")
		}
	}
	if n := len(r.received()); n != 0 {
		t.Errorf("relay accepted %d truncated mails", n)
	}
}

func TestMailStoreErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name      string
		change    func(*fakeMailStore)
		job       *securetextd.Job
		permanent bool
	}{
		{"conversation gone", func(s *fakeMailStore) { s.conv = nil }, replyJob(t, 1), true},
		{"store down", func(s *fakeMailStore) { s.err = errors.New("database is locked") }, replyJob(t, 1), false},
		{"not a reply", func(s *fakeMailStore) { s.msgs[1].Direction = securetextd.Inbound }, replyJob(t, 1), true},
		{"reply missing", func(s *fakeMailStore) { s.msgs = s.msgs[:1] }, replyJob(t, 1), true},
		{"bad sender", func(s *fakeMailStore) { s.conv.Sender = "not an address" }, replyJob(t, 1), true},
		{"bad payload", func(s *fakeMailStore) {}, &securetextd.Job{Kind: securetextd.JobKindReply, Payload: []byte("{")}, true},
		{"bad reset address", func(s *fakeMailStore) {}, resetJob(t, "a@b\r\nBcc: x@evil.example", "T"), true},
		{"reset without token", func(s *fakeMailStore) {}, resetJob(t, "a@example.org", ""), true},
		{"unknown kind", func(s *fakeMailStore) {}, &securetextd.Job{Kind: "fax", Payload: []byte("{}")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMailStore(t, "Your results", "photo.jpg")
			tt.change(st)
			err := fileMailer(t, dir, st).Send(t.Context(), tt.job)
			if err == nil || IsPermanent(err) != tt.permanent {
				t.Errorf("Send = %v; want permanent %v", err, tt.permanent)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d files written for failed jobs", len(entries))
	}
}

func TestNewMailer(t *testing.T) {
	st := &fakeMailStore{}
	for name, change := range map[string]func(*MailConfig){
		"no relay, no dir":  func(c *MailConfig) {},
		"dir without a key": func(c *MailConfig) { c.Dir = "x"; c.Seal = nil },
		"relay not a port":  func(c *MailConfig) { c.Relay = "relay.example" },
		"from with a name":  func(c *MailConfig) { c.Dir = "x"; c.From = "Clinic <a@b.example>" },
		"from not an email": func(c *MailConfig) { c.Dir = "x"; c.From = "clinic" },
		"no domain":         func(c *MailConfig) { c.Dir = "x"; c.Domain = "" },
		"no public url":     func(c *MailConfig) { c.Dir = "x"; c.PublicURL = "" },
		"password only":     func(c *MailConfig) { c.Dir = "x"; c.Password = "p" },
	} {
		c := mailConfig()
		change(&c)
		if _, err := NewMailer(c, st, nil); err == nil {
			t.Errorf("%s: NewMailer = nil error", name)
		}
	}
	c := mailConfig()
	c.Relay = "relay.example:587"
	if _, err := NewMailer(c, st, nil); err != nil {
		t.Errorf("NewMailer = %v", err)
	}
}

func TestMaskAddress(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.org": "a***@example.org",
		"a@b":               "a***@b",
		"élise@x.fr":        "é***@x.fr",
		"nobody":            "***",
		"@x":                "***",
	} {
		if got := maskAddress(in); got != want {
			t.Errorf("maskAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

// patternPart is a large part that is never in memory: byte i is i%251.
// It records the largest read asked of it.
type patternPart struct {
	size    int64
	maxRead int
}

func (p *patternPart) ReadAt(b []byte, off int64) (int, error) {
	p.maxRead = max(p.maxRead, len(b))
	if off >= p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.size-off))
	for i := range n {
		b[i] = byte((off + int64(i)) % 251)
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// bigPartStore serves the reply's attachment from a patternPart.
type bigPartStore struct {
	*fakeMailStore
	part *patternPart
}

func (s *bigPartStore) OpenPart(ctx context.Context, messageID int64, index int) (io.ReaderAt, int64, error) {
	if messageID == 2 && index == 1 {
		return s.part, s.part.size, nil
	}
	return s.fakeMailStore.OpenPart(ctx, messageID, index)
}

// TestMailStreamsAttachments checks that an attachment is read by small
// ranges as it is written, not loaded whole.
func TestMailStreamsAttachments(t *testing.T) {
	dir := t.TempDir()
	st := &bigPartStore{newMailStore(t, "Your results", "scan.bin"), &patternPart{size: 8 << 20}}
	if err := fileMailer(t, dir, st).Send(t.Context(), replyJob(t, 1)); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if st.part.maxRead > 64<<10 {
		t.Errorf("the attachment was read %d bytes at once; want small ranges", st.part.maxRead)
	}
	p := parseMail(t, readOnlyFile(t, dir))
	if len(p.files) != 1 || int64(len(p.files[0].data)) != st.part.size {
		t.Fatalf("attachments %d; want one of %d bytes", len(p.files), st.part.size)
	}
	for i, b := range p.files[0].data {
		if b != byte(i%251) {
			t.Fatalf("attachment byte %d is %d, want %d", i, b, i%251)
		}
	}
}
