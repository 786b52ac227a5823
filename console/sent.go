package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// pageSize is how many rows the Sent page shows at once.
const pageSize = 50

// Status is a recipient's state as the console words it: the store's
// read, revoked and purged are "opened", "withdrawn" and "deleted" here.
type Status struct {
	Key   string // the store's state, for the filter
	Label string
}

// statuses are the console's words for the store's states, in the order
// a message goes through them, then those where it ended.
var statuses = []Status{
	{securetextd.TextQueued, "queued"},
	{securetextd.TextSent, "texted"},
	{securetextd.TextDelivered, "delivered"},
	{securetextd.StateRead, "opened"},
	{securetextd.StateReplied, "replied"},
	{securetextd.TextFailed, "failed"},
	{securetextd.StateExpired, "expired"},
	{securetextd.StateRevoked, "withdrawn"},
	{securetextd.StatePurged, "deleted"},
}

// statusLabel words a store state.
func statusLabel(state string) string {
	for _, s := range statuses {
		if s.Key == state {
			return s.Label
		}
	}
	return state
}

// stateOf reads the status filter, as worded on the page: "" for any.
func stateOf(label string) (string, bool) {
	if label == "" {
		return "", true
	}
	for _, s := range statuses {
		if s.Label == label {
			return s.Key, true
		}
	}
	return "", false
}

// sentRow is one line of the Sent list: one message to one phone.
type sentRow struct {
	MessageID int64
	Key       string // message and conversation, to match rows on refresh
	Sender    string
	Phone     string
	Subject   string
	Received  time.Time
	Status    string
}

// sentPage is the Sent list with its filter.
type sentPage struct {
	layout
	Rows     []sentRow
	Statuses []Status
	// The filter as typed.
	Phone, From, To, Status string
	Error                   string
	Page                    int
	Prev, Next              string // links to the pages beside, or ""
	Export                  string // the list as CSV, with the same filter
}

// handleSent lists what the account sent (every account's, for an
// admin), newest first, paged, filtered by phone, date and status.
func (s *Server) handleSent(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	p := &sentPage{layout: layoutFor(acct, "Sent"), Statuses: statuses}
	q := r.URL.Query()
	p.Phone, p.From, p.To, p.Status = clip(q.Get("phone")), clip(q.Get("from")), clip(q.Get("to")), clip(q.Get("status"))
	sq, problem := s.query(acct, p)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page < 1 || page > 10000 {
		page = 1
	}
	p.Page = page
	if problem != "" {
		p.Error = problem
		s.render(w, http.StatusBadRequest, "sent.html", p)
		return
	}
	sq.Offset, sq.Limit = (page-1)*pageSize, pageSize
	rows, more, err := s.store.SentPage(r.Context(), sq)
	if err != nil {
		s.fail(w, r, "sent page", err)
		return
	}
	subjects := make(map[int64]string)
	for _, row := range rows {
		subject, ok := subjects[row.MessageID]
		if !ok {
			subject = s.subject(r, row.MessageID)
			subjects[row.MessageID] = subject
		}
		p.Rows = append(p.Rows, sentRow{
			MessageID: row.MessageID,
			Key:       strconv.FormatInt(row.MessageID, 10) + "-" + strconv.FormatInt(row.ConversationID, 10),
			Sender:    row.Sender,
			Phone:     string(row.Phone),
			Subject:   subject,
			Received:  row.Received,
			Status:    statusLabel(row.State),
		})
	}
	p.Export = "/sent.csv"
	if f := filterOf(q); len(f) > 0 {
		p.Export += "?" + f.Encode()
	}
	if page > 1 {
		p.Prev = pageLink(q, page-1)
	}
	if more {
		p.Next = pageLink(q, page+1)
	}
	s.render(w, http.StatusOK, "sent.html", p)
}

// query reads the Sent page's filter into a query, or words what is
// wrong with it.
func (s *Server) query(acct *securetextd.SenderAccount, p *sentPage) (securetextd.SentQuery, string) {
	var q securetextd.SentQuery
	if !acct.Admin {
		q.Sender = acct.Address
	}
	if p.Phone != "" {
		phone, err := s.cfg.ParsePhone(p.Phone)
		if err != nil {
			return q, "The phone number " + strconv.Quote(p.Phone) + " could not be read."
		}
		q.Phone = phone
	}
	if p.From != "" {
		t, err := time.ParseInLocation(time.DateOnly, p.From, s.cfg.Location)
		if err != nil {
			return q, "The date “from” should look like 2026-03-02."
		}
		q.From = t
	}
	if p.To != "" {
		t, err := time.ParseInLocation(time.DateOnly, p.To, s.cfg.Location)
		if err != nil {
			return q, "The date “to” should look like 2026-03-02."
		}
		q.To = t.AddDate(0, 0, 1) // the whole day
	}
	state, ok := stateOf(p.Status)
	if !ok {
		return q, "Pick a status from the list."
	}
	q.State = state
	return q, ""
}

// subject returns a message's subject for the list, or a word for why
// there is none.
func (s *Server) subject(r *http.Request, id int64) string {
	m, err := s.store.Message(r.Context(), id)
	switch {
	case err != nil:
		s.logger.Error("read message", "message", id, "err", err)
		return "(unavailable)"
	case m.Subject == "" && len(m.Parts) == 0:
		return "(content deleted)"
	case m.Subject == "":
		return "(no subject)"
	}
	return m.Subject
}

// pageLink is the Sent page's URL with the same filter, at page n.
func pageLink(q url.Values, n int) string {
	v := filterOf(q)
	v.Set("page", strconv.Itoa(n))
	return "/sent?" + v.Encode()
}

// filterOf is the filter of the Sent page's query.
func filterOf(q url.Values) url.Values {
	v := url.Values{}
	for _, k := range []string{"phone", "from", "to", "status"} {
		if x := q.Get(k); x != "" {
			v.Set(k, x)
		}
	}
	return v
}

// clip bounds a query value read into a page.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
