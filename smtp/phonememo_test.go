package smtp

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/securetextd/securetextd"
)

var memoRules = securetextd.PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US", "CA", "GB"}}

// phoneInputs returns numbers as people and mail programs write them:
// libphonenumber's examples of each type for the regions the rules allow,
// those that share their calling codes (+1: the NANP's, +44: Guernsey,
// Jersey, the Isle of Man), Russia and Kazakhstan's shared +7, Germany's
// numbers of varying length, Italy's leading zero and non-geographic
// networks, in E.164, international and national form, each also one
// digit shorter and one longer; and the forms the gateway's own tests
// use. A sample, not every region: libphonenumber keeps every pattern it
// compiles, and all regions' would stay in the test binary's heap (8 MiB
// against 1.4), under the heap measurements of the tests that follow
// (TestRelayLargeSignedMessage). FuzzPhoneMemo goes beyond it.
func phoneInputs() []string {
	in := []string{"", " ", "+", "00", "2125550123", "+12125550123", " +12125550123 ", "212-555-0123", "212.555.0123",
		"(212) 555-0123", "00447400123456", "+447400123456", "07400123456", "5550199", "555-0199", "+15550199",
		"+1800555 0199", "+442079460123", "+8706", "1;DROP", "+4915123456789", "+12125550123+7", "2125550123x12"}
	var regions []string
	for _, cc := range []int{1, 44, 7} {
		regions = append(regions, phonenumbers.GetRegionCodesForCountryCode(cc)...)
	}
	regions = append(regions, "DE", "IT")
	types := []phonenumbers.PhoneNumberType{phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.VOIP, phonenumbers.FIXED_LINE_OR_MOBILE}
	var examples []*phonenumbers.PhoneNumber
	for _, r := range regions {
		for _, typ := range types {
			if n := phonenumbers.GetExampleNumberForType(r, typ); n != nil {
				examples = append(examples, n)
			}
		}
	}
	for _, cc := range []int{800, 870, 882} {
		if n := phonenumbers.GetExampleNumberForNonGeoEntity(cc); n != nil {
			examples = append(examples, n)
		}
	}
	for _, n := range examples {
		for _, f := range []phonenumbers.PhoneNumberFormat{phonenumbers.E164, phonenumbers.INTERNATIONAL, phonenumbers.NATIONAL} {
			s := phonenumbers.Format(n, f)
			in = append(in, s, s[:len(s)-1], s+"7")
		}
	}
	return in
}

// TestPhoneMemoMatchesRules holds the memo to what it remembers for: on
// each input, asked first and asked again, it answers as PhoneRules.Parse
// does, number for number and refusal for refusal.
func TestPhoneMemoMatchesRules(t *testing.T) {
	m := newPhoneMemo(memoRules)
	inputs := phoneInputs()
	accepted := 0
	for round := range 2 {
		for _, s := range inputs {
			want, wantErr := memoRules.Parse(s)
			got, err := m.Parse(s)
			if got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("round %d: memo Parse(%q) = %q, %v; PhoneRules.Parse = %q, %v", round, s, got, err, want, wantErr)
			}
			if round == 0 && wantErr == nil {
				accepted++
			}
		}
	}
	if accepted < 50 || accepted == len(inputs) {
		t.Fatalf("%d of %d inputs accepted: the inputs should hold many of both", accepted, len(inputs))
	}
}

// TestPhoneMemoRemembersAcceptances checks what the memo spares: a number
// accepted once is not parsed again, a refused one is parsed each time
// (its refusal quotes it as written), and the memo never holds more than
// phoneMemoMax numbers.
func TestPhoneMemoRemembersAcceptances(t *testing.T) {
	m := newPhoneMemo(memoRules)
	var mu sync.Mutex
	parsed := map[string]int{}
	m.parse = func(s string) (securetextd.Phone, error) {
		mu.Lock()
		parsed[s]++
		mu.Unlock()
		return memoRules.Parse(s)
	}
	for range 3 {
		if p, err := m.Parse("2125550123"); p != "+12125550123" || err != nil {
			t.Fatalf("Parse(2125550123) = %q, %v", p, err)
		}
		if _, err := m.Parse("2125550"); err == nil {
			t.Fatal("Parse(2125550) accepted")
		}
	}
	if parsed["2125550123"] != 1 || parsed["2125550"] != 3 {
		t.Fatalf("parsed %v: want the accepted number once, the refused one each time", parsed)
	}
	for i := range phoneMemoMax + 10 {
		m.Parse(fmt.Sprintf("+1212%07d", i))
	}
	if n := len(m.accepted); n == 0 || n > phoneMemoMax {
		t.Fatalf("memo holds %d numbers, want 1…%d", n, phoneMemoMax)
	}
}

// TestRecipientParsedOnce checks the memo on a real session: the second
// message to the same number, and the second RCPT to it in one message,
// do not parse it again; its other spellings are parsed once each.
func TestRecipientParsedOnce(t *testing.T) {
	var mu sync.Mutex
	var parsed []string
	ts := newTestServerWith(t, func(c *Config) { c.AllowInsecureAuth = true }, func(s *Server) {
		parse := s.phones.parse
		s.phones.parse = func(local string) (securetextd.Phone, error) {
			mu.Lock()
			parsed = append(parsed, local)
			mu.Unlock()
			return parse(local)
		}
	})
	c := newRawSession(t, ts)
	body := "From: <" + testAccount + ">\r\nSubject: hi\r\n\r\nSee you at 3.\r\n.\r\n"
	for _, rcpts := range [][]string{
		{"2125550123", "2125550123"},
		{"2125550123", "212-555-0123", "+12125550123"},
		{"+12125550123"},
	} {
		c.cmd("MAIL FROM:<"+testAccount+">", "250")
		for _, r := range rcpts {
			c.cmd("RCPT TO:<"+r+"@secure.text>", "250")
		}
		if reply := c.data(body); !strings.HasPrefix(reply, "250") {
			t.Fatalf("DATA: %s", reply)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"2125550123", "212-555-0123", "+12125550123"}; !slices.Equal(parsed, want) {
		t.Fatalf("parsed %q, want %q", parsed, want)
	}
	if n := countMessages(t, ts.db); n != 3 {
		t.Fatalf("%d messages stored, want 3", n)
	}
}

// FuzzPhoneMemo holds the memo to PhoneRules.Parse on any input, asked
// once and asked again.
func FuzzPhoneMemo(f *testing.F) {
	for _, s := range []string{"2125550123", "+447400123456", "00447400123456", "212-555-0123", "+", "555-0199"} {
		f.Add(s)
	}
	m := newPhoneMemo(memoRules)
	f.Fuzz(func(t *testing.T, s string) {
		want, wantErr := memoRules.Parse(s)
		for range 2 {
			got, err := m.Parse(s)
			if got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("memo Parse(%q) = %q, %v; PhoneRules.Parse = %q, %v", s, got, err, want, wantErr)
			}
		}
	})
}

// BenchmarkRecipientPhone compares a recipient number parsed by the rules
// with one the memo remembers.
func BenchmarkRecipientPhone(b *testing.B) {
	b.Run("rules", func(b *testing.B) {
		for b.Loop() {
			memoRules.Parse("2125550123")
		}
	})
	b.Run("memo", func(b *testing.B) {
		m := newPhoneMemo(memoRules)
		for b.Loop() {
			m.Parse("2125550123")
		}
	})
}
