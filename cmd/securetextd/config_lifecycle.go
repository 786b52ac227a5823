package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/portal"
	"github.com/securetextd/securetextd/store"
)

// The information lifecycle's configuration: the [portal] access_expiry,
// [store] retention, [mail] read_receipts and delivery_notices, [limits]
// and [sms.vonage] signature keys, and what the daemon derives from them
// (the store's policy, the delivery-receipt callback, the fingerprint the
// audit trail records at start).

// lifecycleDefaults sets the defaults of the lifecycle's keys.
func lifecycleDefaults(c *Config) {
	c.Portal.AccessExpiry = 72 * time.Hour
	c.Store.Retention = 30 * 24 * time.Hour
	c.Mail.ReadReceipts = securetextd.ReceiptsMDN
	c.Mail.DeliveryNotices = true
	c.Limits.DailyPerSender = 250
	c.Limits.PerPhonePerHour = 10
	c.Limits.PerAddressPerHour = 10
	c.SMS.Vonage.SignatureMethod = "sha256"
}

// validateLifecycle checks the lifecycle's keys.
func (c *Config) validateLifecycle() []string {
	var p []string
	bad := func(key, format string, args ...any) {
		p = append(p, key+": "+fmt.Sprintf(format, args...))
	}
	if d := c.Portal.AccessExpiry; d < time.Hour || d > 366*24*time.Hour {
		bad("portal.access_expiry", "%v is out of range (1h to 8784h)", d)
	}
	switch d := c.Store.Retention; {
	case d == 0:
	case d < 0 || d > 100*366*24*time.Hour:
		bad("store.retention", "%v is out of range (0s to keep content, or a duration)", d)
	case d < c.Portal.AccessExpiry:
		bad("store.retention", "%v is shorter than portal.access_expiry (%v): content would vanish from open conversations", d, c.Portal.AccessExpiry)
	}
	if !slices.Contains([]string{securetextd.ReceiptsMDN, securetextd.ReceiptsAlways, securetextd.ReceiptsNever}, c.Mail.ReadReceipts) {
		bad("mail.read_receipts", "%q: use \"mdn\", \"always\" or \"never\"", c.Mail.ReadReceipts)
	}
	if n := c.Limits.DailyPerSender; n < 0 || n > 1_000_000 {
		bad("limits.daily_per_sender", "%d is out of range (0 for no limit, up to 1000000)", n)
	}
	if n := c.Limits.PerPhonePerHour; n < 0 || n > 1000 {
		bad("limits.per_phone_per_hour", "%d is out of range (0 for no limit, up to 1000)", n)
	}
	if !portal.ValidVonageSignatureMethod(c.SMS.Vonage.SignatureMethod) {
		bad("sms.vonage.signature_method", "%q: use \"sha256\", \"sha512\", \"sha1\", \"md5\" or \"md5hash\", as set in the Vonage dashboard", c.SMS.Vonage.SignatureMethod)
	}
	return p
}

// policy is the store's lifecycle policy of the configuration.
func (c *Config) policy() store.Policy {
	return store.Policy{
		AccessExpiry:    c.Portal.AccessExpiry,
		Retention:       c.Store.Retention,
		DeliveryNotices: c.Mail.DeliveryNotices,
		FailureNotices:  true,
		ReadReceipts:    c.Mail.ReadReceipts,
		DailyPerSender:  c.Limits.DailyPerSender,
		PerPhonePerHour: c.Limits.PerPhonePerHour,

		PerAddressPerHour: c.Limits.PerAddressPerHour,
		ContinuePerSender: c.Conversations.Continue == continuePerSender,
		DailyOrg:          c.Limits.DailyOrg,
	}
}

// dlrCallback is the URL Vonage posts delivery receipts to, asked for with
// each text: the portal's hook, when the portal is public (https).
func (c *Config) dlrCallback() string {
	if !strings.HasPrefix(c.Portal.PublicURL, "https://") {
		return ""
	}
	return strings.TrimSuffix(c.Portal.PublicURL, "/") + "/hooks/vonage/dlr"
}

// fingerprint identifies the configuration in the audit trail without its
// secrets: the SHA-256 of its JSON form with every password and secret
// blanked, shortened.
func (c *Config) fingerprint() string {
	cc := *c
	cc.SMS.Vonage.APISecret = ""
	cc.SMS.Vonage.SignatureSecret = ""
	cc.Mail.Password = ""
	b, _ := json.Marshal(cc)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}
