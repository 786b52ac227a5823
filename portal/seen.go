package portal

import (
	"context"
	"time"

	"github.com/securetextd/securetextd"
)

// SeenStore is what the portal needs to mark what is new: when the
// recipient last opened a conversation. *store.DB implements it, and
// records each opening in Lifecycle.MarkViewed's transaction; a store
// without it shows nothing as new.
type SeenStore interface {
	// LastSeen returns when phone last opened conversation id, the zero
	// time if never.
	LastSeen(ctx context.Context, id int64, phone securetextd.Phone) (time.Time, error)
}

// lastSeen returns when conv's recipient last opened it, read before the
// view being shown is recorded; the zero time when never, or when the
// store does not keep it.
func (s *Server) lastSeen(ctx context.Context, conv *securetextd.Conversation) (time.Time, error) {
	st, ok := s.store.(SeenStore)
	if !ok {
		return time.Time{}, nil
	}
	return st.LastSeen(ctx, conv.ID, conv.Phone)
}
