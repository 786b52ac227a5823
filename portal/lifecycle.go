package portal

import (
	"context"
	"net/http"
	"strconv"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// Lifecycle is what the portal needs of the store to run the information
// lifecycle: access that ends (expiry, revocation), read receipts, the
// audit trail and delivery reports. *store.DB implements it. When the
// Store given to New implements it too, the portal enforces it on every
// request; a Store without it (a test's fake) serves conversations as they
// are.
type Lifecycle interface {
	// ConversationAccess returns nil when a conversation is open, or an
	// EEXPIRED or EREVOKED error when access to it has ended.
	ConversationAccess(ctx context.Context, id int64) error
	// Audit appends an event to the audit trail; an empty Client or
	// UserAgent is taken from the request's securetextd.Origin.
	Audit(ctx context.Context, ev securetextd.AuditEvent) error
	// AuditUnlessFlooded appends an event unless key was struck r.Max
	// times within r.Window, and reports whether it did.
	AuditUnlessFlooded(ctx context.Context, ev securetextd.AuditEvent, key string, r store.StrikeRule) (bool, error)
	// MarkViewed records that the recipient was shown messages of a
	// conversation, and queues the read receipts of first views.
	MarkViewed(ctx context.Context, conversationID int64, messageIDs []int64) error
	// RevocationByToken returns the conversation a revocation token
	// withdraws, changing nothing: ENOTFOUND for an unknown token,
	// EREVOKED (with the conversation) when withdrawn already.
	RevocationByToken(ctx context.Context, token string) (*securetextd.Conversation, error)
	// RevokeByToken withdraws it, at once.
	RevokeByToken(ctx context.Context, token string) (*securetextd.Conversation, error)
	// RecordDelivery records an SMS provider's delivery report:
	// ENOTFOUND when the text is unknown.
	RecordDelivery(ctx context.Context, r securetextd.DeliveryReport) error
}

// accessReader is a Lifecycle that reads a conversation and whether it is
// open in one query (*store.DB): the conversation pages ask both on every
// request.
type accessReader interface {
	ConversationWithAccess(ctx context.Context, id int64) (c *securetextd.Conversation, access, err error)
}

// maxUserAgent bounds the user agent kept in the audit trail.
const maxUserAgent = 256

// origin puts the request's securetextd.Origin (client address, user
// agent) in its context, for the audit rows that the store writes while
// serving it.
func (s *Server) origin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua := r.UserAgent()
		if len(ua) > maxUserAgent {
			ua = ua[:maxUserAgent]
		}
		o := securetextd.Origin{Client: clientAddr(r), UserAgent: ua}
		next.ServeHTTP(w, r.WithContext(securetextd.WithOrigin(r.Context(), o)))
	})
}

// checkAccess returns nil when conv is open, or the EEXPIRED or EREVOKED
// error for fail to show.
func (s *Server) checkAccess(r *http.Request, conv *securetextd.Conversation) error {
	if s.life == nil {
		return nil
	}
	return s.life.ConversationAccess(r.Context(), conv.ID)
}

// audit records an event about conv (nil: none) done by its recipient,
// unless the client has caused auditPerMinute rows of the same event
// about the same conversation within the last minute (counted in the
// store, with the row, so that the limit holds across nodes). The
// event's failure is logged and does not stop the request: it is for
// events that show no content (a link opened, a login). Events that show
// content are recorded before it is shown, and their failure fails the
// request (auditOrFail).
func (s *Server) audit(r *http.Request, event string, conv *securetextd.Conversation, detail string) {
	if s.life == nil {
		return
	}
	key := event + " " + clientKey(r)
	ev := securetextd.AuditEvent{Event: event, Detail: detail}
	if conv != nil {
		key += " " + strconv.FormatInt(conv.ID, 10)
		ev.Actor, ev.ConversationID = string(conv.Phone), conv.ID
	}
	recorded, err := s.life.AuditUnlessFlooded(r.Context(), ev, key, auditFloodRule)
	switch {
	case err != nil:
		s.logger.Error("audit", "event", event, "err", err)
	case !recorded:
		s.logger.Warn("audit: too many events, not recorded", "event", event, "addr", clientKey(r))
	}
}

// auditOrFail records an event about conv and message (0: none), done by
// conv's recipient, and returns the store's error.
func (s *Server) auditOrFail(r *http.Request, event string, conv *securetextd.Conversation, message int64, detail string) error {
	if s.life == nil {
		return nil
	}
	ev := securetextd.AuditEvent{Event: event, MessageID: message, Detail: detail}
	if conv != nil {
		ev.Actor, ev.ConversationID = string(conv.Phone), conv.ID
	}
	return s.life.Audit(r.Context(), ev)
}

// markViewed records that the page shows msgs of conv: the audit event,
// and the first view of each message from the sender, which sends its read
// receipt.
func (s *Server) markViewed(r *http.Request, conv *securetextd.Conversation, msgs []*securetextd.Message) error {
	if s.life == nil {
		return nil
	}
	var ids []int64
	for _, m := range msgs {
		if m.Direction == securetextd.Inbound {
			ids = append(ids, m.ID)
		}
	}
	return s.life.MarkViewed(r.Context(), conv.ID, ids)
}

// renderEnded answers a request for a conversation whose access has ended,
// in plain words, with 410 Gone: expired (the sender may write again) or
// withdrawn by the sender. Neither says anything about the content.
func (s *Server) renderEnded(w http.ResponseWriter, r *http.Request, err error) {
	l := s.printer(r)
	p := &messagePage{layout: layout{Title: "ExpiredTitle"}, Heading: l.T("ExpiredHeading"), Text: l.T("ExpiredText")}
	if securetextd.ErrorCode(err) == securetextd.EREVOKED {
		p = &messagePage{layout: layout{Title: "WithdrawnTitle"}, Heading: l.T("WithdrawnHeading"), Text: l.T("WithdrawnText")}
		if securetextd.ErrorMessage(err) == securetextd.DeletedMessage {
			p = &messagePage{layout: layout{Title: "DeletedTitle"}, Heading: l.T("DeletedHeading"), Text: l.T("DeletedText")}
		}
	}
	s.render(w, r, http.StatusGone, "message.html", p)
}
