package notify

import (
	"fmt"
	"net/url"
	"strings"
	"time"

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
	h, err := m.accountHeader(to.Address, "Confirm your email address for "+m.c.Org+" secure messages")
	if err != nil {
		return nil, err
	}
	whose := whoseMessages(mj)
	body := fmt.Sprintf("This address was given as the recovery email address for %s from %s.\n\n"+
		"If you forget your password, a link to choose a new one can only be sent here once you confirm it. "+
		"To confirm, open this link within %d days and tap Confirm:\n\n%s\n\n"+
		"If you did not ask for this, ignore this email: nothing will be sent here.\n",
		whose, oneLine(m.c.Org), int(securetextd.ConfirmValidFor/(24*time.Hour)),
		strings.TrimSuffix(m.c.PublicURL, "/")+"/confirm/"+url.PathEscape(mj.Token))
	return plainMail(to.Address, h, body), nil
}
