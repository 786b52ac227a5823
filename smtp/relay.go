package smtp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/authres"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// RelayConfig configures the relay listener (the [relay] section): where
// an organization's own mail server hands over mail for the gateway's
// domain, with no AUTH.
type RelayConfig struct {
	// Config holds what both listeners share. AllowInsecureAuth is
	// ignored: the relay offers no AUTH.
	Config
	// TrustedNetworks are the client addresses the relay talks to; any
	// other client is refused at the greeting.
	TrustedNetworks []netip.Prefix
	// RequireTLS refuses MAIL FROM before STARTTLS. It needs TLS.
	RequireTLS bool
	// Policy is one of PolicyDMARC (the default when empty), PolicyDKIM,
	// PolicySPF and PolicyTrustedNetwork; see ValidatePolicy.
	Policy string
	// SenderDomains are the From domains that may send: "clinic.example"
	// allows that domain, "*.clinic.example" its subdomains. Nothing else
	// is accepted, whatever the policy. See ValidateSenderDomain.
	SenderDomains []string
	// Resolver looks up DKIM keys and SPF and DMARC records; nil is
	// net.DefaultResolver.
	Resolver *net.Resolver
}

// relay is what a relay listener adds to a Server.
type relay struct {
	trusted  []netip.Prefix
	tls      bool // RequireTLS
	policy   string
	senders  senderDomains
	resolver checkResolver
	refusals refusals
}

// NewRelay returns a relay server: no AUTH; clients outside
// TrustedNetworks are refused; each message's From address must be in
// SenderDomains and backed by the checks Policy names, or the message is
// refused after DATA with a reply that names the check that failed. The
// verdict is stored with the message as an Authentication-Results value.
//
// It panics on a Policy or SenderDomains entry that ValidatePolicy or
// ValidateSenderDomain refuses: the caller validates the configuration.
func NewRelay(cfg RelayConfig, db *store.DB, logger *slog.Logger) *Server {
	if err := ValidatePolicy(cfg.Policy); err != nil {
		panic("smtp: NewRelay: relay.policy: " + err.Error())
	}
	senders, err := newSenderDomains(cfg.SenderDomains)
	if err != nil {
		panic("smtp: NewRelay: relay.sender_domains: " + err.Error())
	}
	r := &relay{
		tls:      cfg.RequireTLS,
		policy:   cfg.Policy,
		senders:  senders,
		resolver: checkResolver{r: cfg.Resolver},
	}
	if r.policy == "" {
		r.policy = PolicyDMARC
	}
	if r.resolver.r == nil {
		r.resolver.r = net.DefaultResolver
	}
	for _, p := range cfg.TrustedNetworks {
		if p.IsValid() {
			r.trusted = append(r.trusted, unmapPrefix(p))
		}
	}
	return newServer(cfg.Config, db, logger, "relay", r)
}

// unmapPrefix returns an IPv4-mapped IPv6 prefix in its IPv4 form
// (::ffff:10.0.0.0/104 is 10.0.0.0/8), as client addresses are compared
// in theirs.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() {
		return p.Masked()
	}
	return netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96)).Masked()
}

func (r *relay) trusts(a netip.Addr) bool {
	return slices.ContainsFunc(r.trusted, func(p netip.Prefix) bool { return p.Contains(a) })
}

// trustedListener hands go-smtp only the connections of trusted clients;
// the others get a 554 greeting (RFC 5321 3.1) from refusals.
type trustedListener struct {
	net.Listener
	s *Server
}

func (l *trustedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		if l.s.relay.trusts(addr) {
			return c, nil
		}
		l.s.logger.Warn("relay client refused: not in relay.trusted_networks", "client", addr.String())
		l.s.relay.refusals.refuse(c, fmt.Sprintf("554 5.7.1 %s refuses relay client %s: it is not in this gateway's trusted networks (relay.trusted_networks)\r\n", l.s.cfg.Hostname, addr))
	}
}

// refusals are the connections being refused at the greeting. Each is
// answered 554, then 503 to anything but QUIT, and closed after QUIT, a
// few commands or refusalTimeout.
type refusals struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

const (
	refusalTimeout = 30 * time.Second
	maxRefusals    = 100 // refusals at a time; beyond, the connection is just closed
)

func (rs *refusals) refuse(c net.Conn, greeting string) {
	rs.mu.Lock()
	if rs.closed || len(rs.conns) >= maxRefusals {
		rs.mu.Unlock()
		c.Close()
		return
	}
	if rs.conns == nil {
		rs.conns = make(map[net.Conn]struct{})
	}
	rs.conns[c] = struct{}{}
	rs.mu.Unlock()
	go func() {
		defer func() {
			c.Close()
			rs.mu.Lock()
			delete(rs.conns, c)
			rs.mu.Unlock()
		}()
		c.SetDeadline(time.Now().Add(refusalTimeout))
		if _, err := io.WriteString(c, greeting); err != nil {
			return
		}
		br := bufio.NewReaderSize(c, 1024)
		for range 10 {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if strings.EqualFold(strings.TrimSpace(string(line)), "QUIT") {
				io.WriteString(c, "221 2.0.0 Bye\r\n")
				return
			}
			if _, err := io.WriteString(c, "503 5.7.1 This client is not allowed to relay here; send QUIT\r\n"); err != nil {
				return
			}
		}
	}()
}

// close closes the connections being refused, and refuses any later one
// by closing it.
func (rs *refusals) close() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.closed = true
	for c := range rs.conns {
		c.Close()
	}
}

// relaySession is one SMTP connection on the relay listener.
type relaySession struct {
	s      *Server
	conn   *gosmtp.Conn
	remote netip.Addr

	from     string // the envelope sender, "" for <>
	fromHost string // its domain, normalized
	targets  []store.Target
}

var _ gosmtp.Session = (*relaySession)(nil)

func (s *Server) newRelaySession(c *gosmtp.Conn, addr netip.Addr) (gosmtp.Session, error) {
	// trustedListener refused the others already; this guards a listener
	// that was not wrapped.
	if !s.relay.trusts(addr) {
		return nil, &gosmtp.SMTPError{
			Code:         554,
			EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
			Message:      fmt.Sprintf("Client %s is not in this gateway's trusted networks (relay.trusted_networks)", addr),
		}
	}
	return &relaySession{s: s, conn: c, remote: addr}, nil
}

func (s *relaySession) Mail(from string, opts *gosmtp.MailOptions) error {
	if _, isTLS := s.conn.TLSConnectionState(); s.s.relay.tls && !isTLS {
		return &gosmtp.SMTPError{
			Code:         530,
			EnhancedCode: gosmtp.EnhancedCode{5, 7, 0},
			Message:      "Must issue a STARTTLS command first: this relay requires TLS (relay.require_tls)",
		}
	}
	host := ""
	if from != "" {
		at := strings.LastIndexByte(from, '@')
		if at >= 0 {
			host = normalizeDomain(from[at+1:])
		}
		if host == "" {
			return &gosmtp.SMTPError{
				Code:         553,
				EnhancedCode: gosmtp.EnhancedCode{5, 1, 7},
				Message:      fmt.Sprintf("Sender address <%s> refused: it has no domain that can be checked", from),
			}
		}
	}
	s.from, s.fromHost = from, host
	return nil
}

// Rcpt applies the submission listener's recipient rules. A conversation
// reference (<phone>+<id>) is checked after DATA, against the From
// address, which only the message tells.
func (s *relaySession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	t, err := s.s.parseRecipient(to)
	if err != nil {
		return err
	}
	if !slices.Contains(s.targets, t) {
		s.targets = append(s.targets, t)
	}
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	c := s.startChecks()
	defer c.stop()
	draft := s.s.db.NewDraft()
	defer draft.Discard()
	h, err := walkMessage(io.TeeReader(&crlfReader{r: r}, c), draft, s.s.limits)
	c.endOfData(err)
	if err != nil {
		return s.s.replyError("data", s.remote, err)
	}
	sender, name, auth, err := s.checkSender(h, c)
	if err != nil {
		return err
	}
	if err := s.checkConversations(sender); err != nil {
		return err
	}

	msgID := h.MessageID
	if msgID == "" {
		msgID = fmt.Sprintf("%s@%s", messageIDLocal(), s.s.cfg.Hostname)
	}
	m := &securetextd.Message{
		Direction:  securetextd.Inbound,
		Sender:     sender,
		SenderName: name,
		Subject:    h.Subject,
		MessageID:  msgID,
		References: append(slices.Clone(h.References), h.InReplyTo...),
		Received:   s.s.now(),
		Auth:       auth,
		Language:   h.Language,
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	ctx = securetextd.WithOrigin(ctx, securetextd.Origin{Actor: sender, Client: s.remote.String()})
	receipt, err := draft.CommitTargets(ctx, m, s.targets)
	if err != nil {
		return s.s.replyError("commit", s.remote, err)
	}
	s.s.logger.Info("message accepted",
		"message", receipt.MessageID, "from_domain", c.ev.from, "client", s.remote.String(),
		"auth", auth, "parts", len(m.Parts), "recipients", maskedPhones(s.targets))
	return nil
}

// relayChecks are the sender checks of one message: SPF, which needs only
// the envelope and runs while the message arrives, and the strict header
// reader and DKIM, which read the message as it streams past the MIME walk
// (relayChecks is the io.Writer of that tee).
type relayChecks struct {
	policy string
	ev     *evidence
	spf    *spfCheck
	guard  *headerGuard
	dkim   *dkimVerifier
	w      io.Writer
}

func (s *relaySession) startChecks() *relayChecks {
	rl := s.s.relay
	c := &relayChecks{
		policy: rl.policy,
		ev:     &evidence{client: s.remote, mailFrom: s.from, helo: s.conn.Hostname(), spfDomain: s.fromHost},
		guard:  &headerGuard{},
	}
	if s.from == "" {
		c.ev.spfDomain = normalizeDomain(c.ev.helo)
	}
	if (c.policy == PolicyDMARC || c.policy == PolicySPF) && c.ev.spfDomain != "" {
		c.spf = startSPF(rl.resolver, s.remote, c.ev.helo, s.from)
	}
	c.w = c.guard
	if c.policy == PolicyDMARC || c.policy == PolicyDKIM {
		c.dkim = startDKIM(rl.resolver)
		c.w = io.MultiWriter(c.guard, c.dkim)
	}
	return c
}

func (c *relayChecks) Write(p []byte) (int, error) { return c.w.Write(p) }

// endOfData collects the DKIM verdicts once the message has been read
// (err nil) or its reading failed.
func (c *relayChecks) endOfData(err error) {
	if c.dkim != nil {
		c.ev.dkimChecked = true
		c.ev.dkim, c.ev.dkimErr = c.dkim.finish(err)
		c.dkim = nil
	}
}

// stop abandons what is still running.
func (c *relayChecks) stop() {
	c.endOfData(errors.New("smtp: checks stopped"))
	if c.spf != nil {
		c.spf.stop()
	}
}

// checkSender applies the relay's rules to a message that was read whole:
// one unambiguous From address, from an allowed domain, backed by the
// checks the policy asks for. It returns the From address and display
// name to store, and the Authentication-Results value of the verdict.
func (s *relaySession) checkSender(h *headerInfo, c *relayChecks) (sender, name, auth string, err error) {
	rl, ev := s.s.relay, c.ev
	sender, name, err = relayFrom(h, c.guard)
	if err != nil {
		return "", "", "", err
	}
	if err := checkShownFields(&c.guard.fields); err != nil {
		s.s.logger.Warn("relay message refused", "client", s.remote.String(), "reason", "a header field appears twice")
		return "", "", "", err
	}
	ev.fields = c.guard.fields
	ev.from = sender[strings.LastIndexByte(sender, '@')+1:]
	if !rl.senders.allows(ev.from) {
		s.s.logger.Warn("relay message refused", "client", s.remote.String(), "from_domain", ev.from, "reason", "sender domain not allowed")
		return "", "", "", &gosmtp.SMTPError{
			Code:         550,
			EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
			Message:      replyText(fmt.Sprintf("Message refused: From domain %s is not allowed to send here (it is not in this gateway's relay.sender_domains)", ev.from)),
		}
	}
	if c.spf != nil {
		ev.spfChecked = true
		ev.spf, ev.spfErr = c.spf.wait()
	} else if rl.policy == PolicyDMARC || rl.policy == PolicySPF {
		// The null sender from a HELO that is no domain: nothing to check.
		ev.spfChecked, ev.spf, ev.spfDomain = true, spf.None, ev.helo
	}
	if rl.policy == PolicyDMARC {
		ctx, cancel := context.WithTimeout(context.Background(), 2*dnsLookupTimeout)
		ev.dmarc, ev.dmarcErr = lookupDMARC(ctx, rl.resolver, ev.from)
		cancel()
	}
	var v verdict
	if rl.policy == PolicyTrustedNetwork {
		v.results = []authres.Result{&authres.GenericResult{
			Method: "x-trusted-network",
			Value:  authres.ResultPass,
			Params: map[string]string{"policy.ip": s.remote.String()},
		}}
	} else {
		v = decide(rl.policy, ev)
	}
	auth = formatAuth(s.s.cfg.Hostname, v.results)
	if v.refusal != nil {
		s.s.logger.Warn("relay message refused", "client", s.remote.String(), "from_domain", ev.from,
			"auth", auth, "reply", v.refusal.Code, "reason", v.refusal.Message)
		return "", "", "", v.refusal
	}
	return sender, name, auth, nil
}

// formatAuth returns an Authentication-Results value (RFC 8601), such as
// "gw.example; dkim=pass header.d=clinic.example; spf=pass
// smtp.mailfrom=dr@clinic.example; dmarc=pass header.from=clinic.example".
func formatAuth(hostname string, results []authres.Result) string {
	// authres leaves a space after a result without properties.
	return strings.TrimSuffix(strings.ReplaceAll(authres.Format(hostname, results), " ;", ";"), " ")
}

// relayFrom returns the address that a relayed message's From header
// shows, and the display name to show beside it. The lessons of
// "Composition Kills" (USENIX Security 2020): a header that the MIME walk
// (h) and a strict reader (g) could read differently is refused, and so is
// anything but exactly one From field with exactly one address, or the
// checks and the recipient could each see a different sender. A display
// name that holds an address is dropped (displayName).
func relayFrom(h *headerInfo, g *headerGuard) (addr, name string, err error) {
	refuse := func(format string, args ...any) error {
		return &gosmtp.SMTPError{
			Code:         550,
			EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
			Message:      replyText("Message refused: " + fmt.Sprintf(format, args...)),
		}
	}
	fields := max(h.FromFields, g.from)
	switch {
	case g.fault != "":
		return "", "", refuse("its header is not well formed: %s", g.fault)
	case fields == 0:
		return "", "", refuse("it has no From: header field; a relayed message must have exactly one")
	case fields > 1:
		return "", "", refuse("it has %d From: header fields; a relayed message must have exactly one", fields)
	case len(h.From) == 0:
		return "", "", refuse("its From: header field holds no address that can be read")
	case len(h.From) > 1:
		return "", "", refuse("its From: header lists %d addresses; a relayed message must name exactly one sender", len(h.From))
	}
	a := h.From[0].Address
	if raw, err := mail.ParseAddressList(string(g.fromVal)); err != nil || len(raw) != 1 || !strings.EqualFold(raw[0].Address, a) {
		return "", "", refuse("its From: header field cannot be read unambiguously")
	}
	at := strings.LastIndexByte(a, '@')
	domain := ""
	if at > 0 {
		domain = normalizeDomain(a[at+1:])
	}
	if domain == "" {
		return "", "", refuse("From: <%s> has no domain that can be checked", a)
	}
	// A local part that holds "@" or "%" (quoted, "a@b"@clinic.example)
	// names another mailbox to some mail systems, and shows the recipient
	// an address within the address.
	if strings.ContainsAny(a[:at], "@%") {
		return "", "", refuse("From: <%s> has \"@\" or \"%%\" in its local part; a relayed message must name its sender plainly", a)
	}
	return a[:at+1] + domain, displayName(h.From[0].Name), nil
}

// checkConversations refuses the message when a recipient names a
// conversation (<phone>+<id>) that is not between sender and that phone.
// Unknown and foreign ones get the same reply, so that references cannot
// be probed. It runs after the sender check: sender is a checked address.
func (s *relaySession) checkConversations(sender string) error {
	for i, t := range s.targets {
		if t.ConversationID == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		c, err := s.s.db.Conversation(ctx, t.ConversationID)
		cancel()
		switch securetextd.ErrorCode(err) {
		case "":
			if sameRecipient(c.Phone, t.Phone) && strings.EqualFold(c.Sender, sender) {
				s.targets[i].Phone = c.Phone
				continue
			}
		case securetextd.ENOTFOUND:
		default:
			return s.s.replyError("conversation", s.remote, err)
		}
		return &gosmtp.SMTPError{
			Code:         550,
			EnhancedCode: gosmtp.EnhancedCode{5, 1, 1},
			Message:      fmt.Sprintf("Message refused: there is no conversation %d between <%s> and %s; write to the phone number alone to start one", t.ConversationID, sender, recipientWords(t.Phone)),
		}
	}
	return nil
}

func (s *relaySession) Reset() {
	s.from, s.fromHost = "", ""
	s.targets = nil
}

func (s *relaySession) Logout() error { return nil }
