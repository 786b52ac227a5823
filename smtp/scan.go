package smtp

import (
	"errors"
	"log/slog"
	"net/netip"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd/store"
)

// malwareReply answers a message the scanner found malware in (the
// store's MalwareError, scan.go there): 554 5.7.1, naming the part and
// what was found, so that the sender knows which file to take out (what
// was found comes first: a long name is what replyText cuts). The log has
// what was found and the client, never the file's name.
func malwareReply(err error, client netip.Addr, logger *slog.Logger) error {
	var m *store.MalwareError
	if !errors.As(err, &m) {
		m = &store.MalwareError{Found: "unknown"}
	}
	logger.Warn("message refused: malware", "found", m.Found, "part", m.Part, "client", client.String())
	return &gosmtp.SMTPError{
		Code:         554,
		EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
		Message:      replyText("Message refused, nothing was stored: malware found (" + m.Found + ") in " + m.What()),
	}
}
