package portal

import (
	"net/http"
	"strings"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

// What the account page says of a sign-in: the device, summarized from
// the User-Agent, and the network the browser came from. Nothing is
// looked up anywhere: no GeoIP database is installed with the gateway
// (Debian's geoip-database is the retired legacy format, and a city
// database would have to be fetched from a vendor), and sending a
// patient's address to a web service to place it would tell that service
// who reads a clinic's messages, and from where. The network, with
// whether it is private (the clinic's own network, or a proxy's), is what
// a patient can check against their own: "198.51.100.0/24, internet".

// signInOf describes the request's browser and network.
func signInOf(r *http.Request) securetextd.SignIn {
	in := securetextd.SignIn{Device: deviceOf(r.UserAgent())}
	a := clientIP(r).Unmap()
	if !a.IsValid() {
		return in
	}
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	in.Network = p.String()
	in.Private = a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast()
	return in
}

// deviceOf summarizes a User-Agent as "Chrome on Android": the browser
// and the system, from the few tokens that tell them apart, in the order
// that resolves their borrowings (Edge and Samsung Internet say Chrome,
// Chrome says Safari, Android says Linux).
func deviceOf(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(ua, x) {
				return true
			}
		}
		return false
	}
	browser := "A browser"
	switch {
	case has("Edg/", "EdgA/", "EdgiOS/"):
		browser = "Edge"
	case has("SamsungBrowser/"):
		browser = "Samsung Internet"
	case has("OPR/", "Opera"):
		browser = "Opera"
	case has("Firefox/", "FxiOS/"):
		browser = "Firefox"
	case has("Chrome/", "CriOS/", "Chromium/"):
		browser = "Chrome"
	case has("Safari/"):
		browser = "Safari"
	}
	system := "an unknown system"
	switch {
	case has("iPhone"):
		system = "iPhone"
	case has("iPad"):
		system = "iPad"
	case has("Android"):
		system = "Android"
	case has("CrOS"):
		system = "ChromeOS"
	case has("Windows"):
		system = "Windows"
	case has("Macintosh", "Mac OS X"):
		system = "Mac"
	case has("Linux"):
		system = "Linux"
	}
	return browser + " on " + system
}

// deviceText writes a sign-in's device, kept as deviceOf summarized it
// in English ("Chrome on Android"), in l's language.
func deviceText(l *locale.Printer, device string) string {
	if device == "Unknown device" {
		return l.T("DeviceUnknown")
	}
	browser, system, ok := strings.Cut(device, " on ")
	if !ok {
		return device
	}
	if browser == "A browser" {
		browser = l.T("DeviceABrowser")
	}
	if system == "an unknown system" {
		system = l.T("DeviceUnknownSystem")
	}
	return l.T("DeviceOn", "Browser", browser, "System", system)
}
