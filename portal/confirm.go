package portal

import (
	"net/http"

	"github.com/securetextd/securetextd"
)

// confirmPage asks the owner of a recovery address to confirm it. The
// link in the email opens it; only its button's POST confirms, since
// mail scanners open links too.
type confirmPage struct {
	layout
	Token   string
	Address string
	Phone   string // masked
}

// confirmToken returns a confirmation link's token, number and address,
// or answers the request with the 404 look and a line saying that the
// link has expired, was used or was replaced.
func (s *Server) confirmToken(w http.ResponseWriter, r *http.Request) (string, securetextd.Phone, string) {
	if s.accounts == nil {
		s.handleNotFound(w, r)
		return "", "", ""
	}
	token := r.PathValue("token")
	var phone securetextd.Phone
	var address string
	var err error = securetextd.Errorf(securetextd.ENOTFOUND, "bad token")
	if validToken(token) {
		phone, address, err = s.accounts.CheckConfirmToken(r.Context(), token)
	}
	switch securetextd.ErrorCode(err) {
	case "":
		return token, phone, address
	case securetextd.ENOTFOUND:
		s.render(w, r, http.StatusNotFound, "notfound.html", &messagePage{
			layout: layout{Title: "NotFoundTitle"},
			Notice: s.printer(r).T("ConfirmLinkExpired"),
		})
	default:
		s.fail(w, r, "check confirmation token", err)
	}
	return "", "", ""
}

// handleConfirmForm shows what the confirmation link would confirm.
func (s *Server) handleConfirmForm(w http.ResponseWriter, r *http.Request) {
	token, phone, address := s.confirmToken(w, r)
	if token == "" {
		return
	}
	s.render(w, r, http.StatusOK, "confirm.html", &confirmPage{
		layout: layout{Title: "ConfirmTitle"}, Token: token, Address: address, Phone: phone.Masked(),
	})
}

// handleConfirm uses the confirmation link: the address becomes the
// account's recovery address.
func (s *Server) handleConfirm(w http.ResponseWriter, r *http.Request) {
	token, _, address := s.confirmToken(w, r)
	if token == "" {
		return
	}
	phone, err := s.accounts.ConfirmRecoveryAddress(r.Context(), token)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		s.handleNotFound(w, r)
		return
	}
	if err != nil {
		s.fail(w, r, "confirm recovery address", err)
		return
	}
	s.logger.Info("recovery address confirmed", "phone", phone.Masked())
	l := s.printer(r)
	s.render(w, r, http.StatusOK, "message.html", &messagePage{layout: layout{Title: "ConfirmedTitle"},
		Heading: l.T("ConfirmedHeading"), Text: l.T("ConfirmedText", "Address", address)})
}
