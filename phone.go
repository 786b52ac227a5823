package securetextd

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// Phone names a recipient: a phone number in E.164 form, "+12125550123",
// or, where email recipients are enabled, an email address in lowercase,
// "jane@example.net" (IsEmail; ParseEmail makes one). A recipient's
// account, conversations, sessions, limits and audit rows are keyed by
// this one string whichever it is; only how the link reaches the
// recipient differs (a text, or a notice email).
type Phone string

// IsEmail reports whether p is an email address rather than a number.
func (p Phone) IsEmail() bool { return strings.Contains(string(p), "@") }

// Masked returns the number with its middle digits hidden, for logs:
// "+1212*****23"; an address keeps its first character and its domain:
// "j***@example.net".
func (p Phone) Masked() string {
	s := string(p)
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		if at == 0 {
			return "***" + s[at:]
		}
		return s[:1] + "***" + s[at:]
	}
	if len(s) < 7 {
		return strings.Repeat("*", len(s))
	}
	return s[:5] + strings.Repeat("*", len(s)-7) + s[len(s)-2:]
}

// Digits returns the number without its leading '+', as SMS APIs want it.
func (p Phone) Digits() string { return strings.TrimPrefix(string(p), "+") }

// PhoneRules decides which numbers the gateway texts.
type PhoneRules struct {
	// DefaultRegion is the ISO 3166 region assumed for national numbers
	// such as "2125550123": "US".
	DefaultRegion string
	// AllowedCountries lists the regions that may be texted. Texting
	// premium or far-away ranges is how SMS toll fraud makes money, so the
	// list is short by default.
	AllowedCountries []string
}

// maxPhoneInput bounds the text handed to the parser.
const maxPhoneInput = 40

// maxNamedRegions bounds the allowed regions a refusal names.
const maxNamedRegions = 6

// Parse reads a phone number as a person writes it ("212-555-0123",
// "+447400123456", "00447400123456") and returns it in E.164 form. Numbers
// that cannot exist, that are known to be landlines, or that are in a
// country not allowed are refused with an EINVALID *Error whose message
// says why, in words the sender can act on.
func (r PhoneRules) Parse(s string) (Phone, error) {
	raw := s
	if len(s) > maxPhoneInput {
		return "", Errorf(EINVALID, "%.20q… is too long to be a phone number", s)
	}
	s = strings.TrimSpace(s)
	// "00" is the international prefix in most of the world; libphonenumber
	// only knows it for regions that use it, so say it plainly.
	if rest, ok := strings.CutPrefix(s, "00"); ok {
		s = "+" + rest
	}
	if s == "" || strings.ContainsFunc(s, func(c rune) bool {
		return !strings.ContainsRune("0123456789+-.() ", c)
	}) {
		return "", Errorf(EINVALID, "%q is not a phone number: use digits, as in 2125550123 or +447400123456", raw)
	}
	n, err := phonenumbers.Parse(s, r.DefaultRegion)
	if err != nil {
		return "", Errorf(EINVALID, "%q is not a phone number: use digits, as in 2125550123 or +447400123456", raw)
	}
	e164 := phonenumbers.Format(n, phonenumbers.E164)
	// IsValidNumber would look the region up again: it is what costs most
	// (a pattern match per region sharing the country code).
	region := phonenumbers.GetRegionCodeForNumber(n)
	if !phonenumbers.IsValidNumberForRegion(n, region) {
		if tooShort(n) {
			// Its E.164 form would be a guess ("555-0199" is not
			// +15550199): name the number as it was written.
			return "", Errorf(EINVALID, "%q has too few digits for a phone number in %s: write the whole number, as in %s",
				strings.TrimSpace(raw), regionName(phonenumbers.GetRegionCodeForCountryCode(int(n.GetCountryCode()))),
				exampleMobile(n))
		}
		return "", Errorf(EINVALID, "%s cannot be a real phone number (no such number range)", e164)
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.FIXED_LINE:
		return "", Errorf(EINVALID, "%s is a landline and cannot receive text messages", e164)
	case phonenumbers.TOLL_FREE, phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST:
		return "", Errorf(EINVALID, "%s is a toll-free, premium or shared-cost number, not a mobile phone", e164)
	}
	if !r.allowed(region, n) {
		// At most maxNamedRegions, so that the reply stays one short
		// SMTP line (RFC 5321 allows 512 bytes).
		var names []string
		for _, a := range r.AllowedCountries[:min(len(r.AllowedCountries), maxNamedRegions)] {
			names = append(names, regionName(a))
		}
		if more := len(r.AllowedCountries) - len(names); more > 0 {
			names = append(names, fmt.Sprintf("and %d more", more))
		}
		if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY { // "001": +870, +881, +882…
			return "", Errorf(EINVALID, "%s is a number of an international network (+%d), not of a country: this gateway does not send texts there; it sends to: %s",
				e164, n.GetCountryCode(), strings.Join(names, ", "))
		}
		return "", Errorf(EINVALID, "%s is a number in %s, where this gateway does not send texts; it sends to: %s",
			e164, regionName(region), strings.Join(names, ", "))
	}
	return Phone(e164), nil
}

// TooShort reports whether s reads as a number with too few digits to be
// a phone number (Parse refuses it). In an email address this is what is
// left when a mail program reads "(212) 555-0199@domain" as RFC 5322
// does: "(212)" is a comment, and it sends 555-0199@domain.
func (r PhoneRules) TooShort(s string) bool {
	n, err := phonenumbers.Parse(strings.TrimSpace(s), r.DefaultRegion)
	return err == nil && !phonenumbers.IsValidNumber(n) && tooShort(n)
}

// tooShort reports whether n has fewer digits than a whole number of its
// country: too few for any, or enough only to dial locally, without the
// area code (555-0199 in the US).
func tooShort(n *phonenumbers.PhoneNumber) bool {
	switch phonenumbers.IsPossibleNumberWithReason(n) {
	case phonenumbers.TOO_SHORT, phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return true
	}
	return false
}

// regionName names an ISO 3166 region in words with its calling code, as
// a sender reads it in a refusal: "Guernsey (+44)". A code that names no
// known region is shown as it is.
func regionName(code string) string {
	name := code
	if reg, err := language.ParseRegion(code); err == nil {
		// CLDR's English names, which x/text carries: "Guernsey".
		if n := display.English.Regions().Name(reg); n != "" {
			name = n
		}
	}
	if cc := phonenumbers.GetCountryCodeForRegion(code); cc != 0 {
		return fmt.Sprintf("%s (+%d)", name, cc)
	}
	return name
}

// exampleMobile returns libphonenumber's example of a mobile number of
// n's country, in E.164 ("+12015550123"): written so, it reads the same
// in an address, a form or a JSON request.
func exampleMobile(n *phonenumbers.PhoneNumber) string {
	region := phonenumbers.GetRegionCodeForCountryCode(int(n.GetCountryCode()))
	ex := phonenumbers.GetExampleNumberForType(region, phonenumbers.MOBILE)
	if ex == nil {
		return "+12015550123"
	}
	return phonenumbers.Format(ex, phonenumbers.E164)
}

// allowed reports whether the number's region is allowed. Some numbering
// plans span several regions (+44 serves GB, GG, JE and IM): a number is
// allowed when its own region or, failing that, the main region of its
// country code is listed.
func (r PhoneRules) allowed(region string, n *phonenumbers.PhoneNumber) bool {
	if slices.Contains(r.AllowedCountries, region) {
		return true
	}
	main := phonenumbers.GetRegionCodeForCountryCode(int(n.GetCountryCode()))
	return main != region && slices.Contains(r.AllowedCountries, main)
}
