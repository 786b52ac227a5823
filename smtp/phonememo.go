package smtp

import (
	"sync"

	"github.com/securetextd/securetextd"
)

// phoneMemo remembers the recipient numbers the phone rules accepted, so
// that a number written again (the next message to the same patient, the
// reply to a conversation) is not parsed again. Parsing is what RCPT
// costs: libphonenumber runs a dozen regular expressions per number to
// find its country, whether it can exist and whether it is a mobile, about
// 5% of a small message's CPU.
//
// The rules and libphonenumber's metadata do not change while the process
// runs, so what Parse returned for a string is what it would return again:
// the memo gives the same answers, only sooner (TestPhoneMemoMatchesRules
// and FuzzPhoneMemo hold it to that). Only acceptances are kept, under the
// text exactly as the client wrote it; a refusal is worded from that text
// and parsed again each time, so a client cannot fill the memo with them.
// When it holds phoneMemoMax numbers it starts again empty: numbers are a
// few dozen bytes, so it stays under half a MiB whatever clients send.
type phoneMemo struct {
	parse func(string) (securetextd.Phone, error) // PhoneRules.Parse; tests count the calls

	mu       sync.Mutex
	accepted map[string]securetextd.Phone
}

// phoneMemoMax bounds the numbers a memo holds.
const phoneMemoMax = 4096

func newPhoneMemo(rules securetextd.PhoneRules) *phoneMemo {
	return &phoneMemo{parse: rules.Parse, accepted: make(map[string]securetextd.Phone)}
}

// Parse returns what the rules' Parse returns for s.
func (m *phoneMemo) Parse(s string) (securetextd.Phone, error) {
	m.mu.Lock()
	p, ok := m.accepted[s]
	m.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := m.parse(s)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.accepted) >= phoneMemoMax {
		clear(m.accepted)
	}
	m.accepted[s] = p
	return p, nil
}
