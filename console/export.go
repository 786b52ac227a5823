package console

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// Export: the Sent list, and a message's access history, as CSV, with the
// columns of the CLI's `securetextd report` (one row per message and
// phone; the history adds one row per audit event). A cell that begins
// with = + - @ (or a tab or carriage return) is prefixed with ' so that
// a spreadsheet never reads a user agent or a detail as a formula.

// sentColumns are report's fields of a sent message.
var sentColumns = []string{"message", "conversation", "sender", "phone", "received", "state"}

// historyColumns add report's fields of an audit event.
var historyColumns = append(append([]string(nil), sentColumns...),
	"seq", "time", "event", "actor", "client", "user_agent", "detail")

// maxExportRows bounds one export; the filter narrows a larger one.
const maxExportRows = 100000

// handleSentCSV exports the Sent list, with the page's filter, every page.
func (s *Server) handleSentCSV(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	p := &sentPage{}
	q := r.URL.Query()
	p.Phone, p.From, p.To, p.Status = clip(q.Get("phone")), clip(q.Get("from")), clip(q.Get("to")), clip(q.Get("status"))
	sq, problem := s.query(acct, p)
	if problem != "" {
		s.renderMessage(w, http.StatusBadRequest, "Try again", "The filter could not be read", problem)
		return
	}
	var all []securetextd.SentMessage
	for len(all) < maxExportRows {
		sq.Offset, sq.Limit = len(all), 1000
		rows, more, err := s.store.SentPage(r.Context(), sq)
		if err != nil {
			s.fail(w, r, "export sent", err)
			return
		}
		all = append(all, rows...)
		if !more {
			break
		}
	}
	cw := s.csv(w, "sent.csv")
	cw.Write(sentColumns)
	for _, m := range all {
		cw.Write(sentCells(m))
	}
	cw.Flush()
}

// handleHistoryCSV exports the access history of the account's message.
func (s *Server) handleHistoryCSV(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	m := s.ownMessage(w, r, acct)
	if m == nil {
		return
	}
	rows, err := s.rows(r, acct, m.ID)
	if err != nil {
		s.fail(w, r, "export history", err)
		return
	}
	cw := s.csv(w, "message-"+strconv.FormatInt(m.ID, 10)+"-history.csv")
	cw.Write(historyColumns)
	for _, row := range rows {
		for _, ev := range row.History {
			cw.Write(append(sentCells(row), strconv.FormatInt(ev.Seq, 10), ev.Time.UTC().Format(time.RFC3339Nano),
				ev.Event, CSVSafe(ev.Actor), CSVSafe(ev.Client), CSVSafe(ev.UserAgent), CSVSafe(ev.Detail)))
		}
	}
	cw.Flush()
}

func (s *Server) csv(w http.ResponseWriter, name string) *csv.Writer {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	return csv.NewWriter(w)
}

func sentCells(m securetextd.SentMessage) []string {
	return []string{strconv.FormatInt(m.MessageID, 10), strconv.FormatInt(m.ConversationID, 10), CSVSafe(m.Sender),
		CSVSafe(string(m.Phone)), m.Received.UTC().Format(time.RFC3339), m.State}
}

// CSVSafe keeps a spreadsheet from taking a cell that came from outside
// (an address, a user agent) for a formula. The CLI's report uses it too.
func CSVSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
