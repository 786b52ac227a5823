package main

import (
	"fmt"
	"time"

	"github.com/securetextd/securetextd/notify"
	"github.com/securetextd/securetextd/portal"
	"github.com/securetextd/securetextd/store"
)

// The second factor of the portal (portal/factor.go): portal.second_factor
// is "sms-code", a code texted to the phone (emailed, to an email
// recipient) before the password from a browser the account has not
// seen, or "none"; portal.remember_device is
// how long a browser that gave a code is not asked again.

func factorDefaults(c *Config) {
	c.Portal.SecondFactor = portal.SecondFactorSMSCode
	c.Portal.RememberDevice = portal.DefaultRememberDevice
}

// The code's text says how long it works, and the store holds it to that.
var _ = [1]struct{}{}[notify.CodeValidFor-store.CodeValidFor]

// validateFactor checks the second factor's keys.
func (c *Config) validateFactor() []string {
	var p []string
	switch c.Portal.SecondFactor {
	case portal.SecondFactorSMSCode, portal.SecondFactorNone:
	default:
		p = append(p, fmt.Sprintf("portal.second_factor: %q is not \"sms-code\" or \"none\"", c.Portal.SecondFactor))
	}
	if d := c.Portal.RememberDevice; d < time.Hour || d > 400*24*time.Hour {
		p = append(p, fmt.Sprintf("portal.remember_device: %s is out of range (1h to 400d)", d))
	}
	return p
}
