package portal

import (
	"slices"
	"strings"
	"sync"
	"time"
	// Go's own copy of the time zone database, about 450 KB of the
	// binary: a phone number's zone must load on a machine (or in a
	// container) without /usr/share/zoneinfo, and every node must show
	// the same times whatever its tzdata package's age.
	_ "time/tzdata"

	"github.com/nyaruka/phonenumbers"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

// zone is the time zone a page shows its times in, the patient's as far
// as the server can tell: the zone of the phone number's area, or the
// portal's own (Config.Location) when the number names none. Abbrev is
// set when that is a guess among several zones (a country or area code
// that spans more than one), so that the time carries its zone's
// abbreviation ("15:04 EST"): a patient in the other zone can tell. The
// browser's own zone then replaces it, where script runs (static/time.js).
type zone struct {
	Loc    *time.Location
	Abbrev bool
}

// zoneCache keeps the zones already chosen, by the portal's zone and the
// number's zones (a number's zones depend on its first digits only, so
// there are few): loading a zone parses tzdata.
var zoneCache sync.Map // "UTC America/Adak America/Anchorage" → zone

// zoneOf returns the zone to show phone's times in. fallback is the
// portal's zone: chosen when it is among the number's zones, since a
// clinic's patients mostly live near it, and used, with its abbreviation,
// when the number names no zone.
func zoneOf(phone securetextd.Phone, fallback *time.Location) zone {
	key := fallback.String() + " " + string(phone)
	phoneZones.Lock()
	z, ok := phoneZones.m[key]
	phoneZones.Unlock()
	if ok {
		return z
	}
	z = numberZone(phone, fallback)
	phoneZones.Lock()
	if phoneZones.m == nil || len(phoneZones.m) >= maxPhoneZones {
		phoneZones.m = make(map[string]zone)
	}
	phoneZones.m[key] = z
	phoneZones.Unlock()
	return z
}

// phoneZones keeps the zone chosen for each phone lately: parsing the
// number and looking its zones up cost a twentieth of the conversation
// page's CPU, at every request. It is emptied when it holds
// maxPhoneZones, which bounds it whatever the number of patients.
var phoneZones struct {
	sync.Mutex
	m map[string]zone // "UTC +12125550123" → zone
}

const maxPhoneZones = 10000

// numberZone is zoneOf, worked out.
func numberZone(phone securetextd.Phone, fallback *time.Location) zone {
	n, err := phonenumbers.Parse(string(phone), "")
	if err != nil {
		return zone{Loc: fallback, Abbrev: true}
	}
	names, err := phonenumbers.GetTimezonesForNumber(n)
	if err != nil || len(names) == 0 || names[0] == phonenumbers.UNKNOWN_TIMEZONE {
		return zone{Loc: fallback, Abbrev: true}
	}
	key := fallback.String() + " " + strings.Join(names, " ")
	if z, ok := zoneCache.Load(key); ok {
		return z.(zone)
	}
	name := names[0]
	if slices.Contains(names, fallback.String()) {
		name = fallback.String()
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return zone{Loc: fallback, Abbrev: true}
	}
	z := zone{Loc: loc, Abbrev: len(names) > 1}
	zoneCache.Store(key, z)
	return z
}

// when writes t as the patient reads it in zone z, in l's language:
// "Mon 2 Jan 2026, 15:04", "lun 2 ene 2026, 15:04", with the zone's
// abbreviation when the zone is a guess. A zero zone (a page without a
// session) is the UTC with its abbreviation.
func when(l *locale.Printer, z zone, t time.Time) string {
	if z.Loc == nil {
		return l.Date(t.UTC(), true)
	}
	return l.Date(t.In(z.Loc), z.Abbrev)
}

// Name is the zone's IANA name, which static/time.js compares with the
// browser's.
func (z zone) Name() string {
	if z.Loc == nil {
		return "UTC"
	}
	return z.Loc.String()
}
