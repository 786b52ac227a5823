package notify

import (
	"net/url"
	"strings"

	"github.com/emersion/go-message/mail"

	"github.com/securetextd/securetextd"
)

// confirm builds the email that asks the owner of a new recovery address
// to confirm it: a link to PublicURL + "/confirm/" + token. Opening the
// link shows a button; only the button's POST confirms, since mail
// scanners open links too. The email names the number masked, and says
// what to do if the reader never asked: nothing.
func (m *Mailer) confirm(mj securetextd.MailJob) (*outgoing, error) {
	if mj.To == "" || mj.Token == "" {
		return nil, &PermanentError{Reason: "mail: confirmation job without address or token"}
	}
	to, err := mail.ParseAddress(mj.To)
	if err != nil {
		return nil, &PermanentError{Reason: "mail: confirmation job: the address is not valid"}
	}
	l := m.printer(mj.Language)
	h, err := m.accountHeader(l, to.Address, l.T("ConfirmMailSubject", "Org", m.c.Org))
	if err != nil {
		return nil, err
	}
	body := l.T("ConfirmMailBody", "Whose", whoseMessages(l, mj), "Org", oneLine(m.c.Org),
		"Valid", l.Duration(securetextd.ConfirmValidFor),
		"Link", strings.TrimSuffix(m.c.PublicURL, "/")+"/confirm/"+url.PathEscape(mj.Token))
	return plainMail(to.Address, h, body), nil
}
