package smtp

import (
	"errors"

	"github.com/emersion/go-sasl"
)

// loginServer is the server side of the LOGIN mechanism, which Outlook and
// Thunderbird use and go-sasl only implements as a client. It is the
// obsolete draft-murchison-sasl-login: the server asks for the username and
// then the password, each base64-encoded by the SMTP layer.
type loginServer struct {
	authenticate func(username, password string) error
	step         int
	username     string
}

var _ sasl.Server = (*loginServer)(nil)

// maxCredential bounds a username or password, so that a client cannot make
// the gateway hash megabytes.
const maxCredential = 1024

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.step {
	case 0:
		s.step++
		// An initial response ("AUTH LOGIN dXNlcg==") carries the username.
		if response != nil {
			if len(response) > maxCredential {
				return nil, true, errCredentialTooLong
			}
			s.username = string(response)
			s.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		if len(response) > maxCredential {
			return nil, true, errCredentialTooLong
		}
		s.username = string(response)
		s.step++
		return []byte("Password:"), false, nil
	case 2:
		s.step++
		if len(response) > maxCredential {
			return nil, true, errCredentialTooLong
		}
		return nil, true, s.authenticate(s.username, string(response))
	}
	return nil, true, errors.New("smtp: unexpected LOGIN response")
}

var errCredentialTooLong = errors.New("smtp: credential too long")
