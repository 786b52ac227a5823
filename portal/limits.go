package portal

import (
	"net/http"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// The portal's limits count in the store (store/strikes.go), not in the
// process: wrong passwords and reset requests per phone number and per
// client address, and the audit events without content that one client
// may cause. Every node of a cluster serves from one database, so a
// lockout earned on one node holds on all of them, a guesser gains
// nothing by spreading requests over nodes or waiting for a restart, and
// the portal itself keeps no state that another node would miss.
//
// Some things stay in each node's memory, because they bound that node's
// own machine or only spare it work, and sharing them would add a write
// where none is needed: the reads already recorded for each session
// (ranges.go: another node records a read once more, never less), the
// REST API's per-key request rate (api.go), and the connection cap of
// each listener (LimitListener).

// The kinds of strike keys the portal counts.
const (
	limitLogin = "login" // wrong passwords
	limitReset = "reset" // reset requests
)

// lockoutRule is how many wrong passwords (or reset requests) within
// which window lock a phone number or a client address.
func (s *Server) lockoutRule() store.StrikeRule {
	return store.StrikeRule{Max: s.cfg.LockoutFailures, Window: s.cfg.LockoutWindow}
}

// limitKeys are the keys a request from r about phone counts against:
// the number, and the client's address (see clientKey).
func limitKeys(r *http.Request, phone securetextd.Phone) []string {
	return []string{phoneLimitKey(phone), "addr:" + clientKey(r)}
}

func phoneLimitKey(phone securetextd.Phone) string { return "phone:" + string(phone) }

// auditPerMinute bounds the rows of one event about one conversation that
// one client address can add in a minute with requests that show no
// content (a link fetched in a loop, a login form posted while locked):
// past it they are logged, not recorded, so that whoever holds a link
// cannot fill the disk. Events that show content are always recorded.
const auditPerMinute = 30

// auditFloodRule is auditPerMinute as a strike rule.
var auditFloodRule = store.StrikeRule{Max: auditPerMinute, Window: time.Minute}
