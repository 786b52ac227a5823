package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/securetextd/securetextd"
)

// The values of MailConfig.ReplyMode (config mail.reply_mode).
const (
	// ReplyNotice mails the sender that a reply is waiting: who replied
	// (the number masked), when, and a link to it in the console. None of
	// the recipient's words or files leave the gateway.
	ReplyNotice = "notice"
	// ReplyContent mails the reply itself: its text, and its files
	// attached.
	ReplyContent = "content"
)

// replyNotice is the email that tells the sender of conv that reply is
// waiting in the console. h is the reply's header, threaded as the
// content email would be (In-Reply-To, References, the Reply-To that
// continues the conversation); the body is ours alone.
func (m *Mailer) replyNotice(h mail.Header, to string, conv *securetextd.Conversation, reply *securetextd.Message, date time.Time) *outgoing {
	// RFC 3834: made by a program. A mailed answer still reaches the
	// patient through Reply-To.
	h.Set("Auto-Submitted", "auto-generated")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	where := "Sign in to " + oneLine(m.c.Org) + "'s secure messages console to read it."
	if m.c.ConsoleURL != "" {
		where = "Read it in the console (sign-in required):\n\n" +
			strings.TrimSuffix(m.c.ConsoleURL, "/") + securetextd.ConsoleReplyPath(reply.ID)
	}
	body := fmt.Sprintf("%s replied at %s. The reply stays sealed on the gateway: this email holds none of its words or files.\n\n%s\n\n"+
		"To answer, reply to this email: your answer joins the same secure conversation.\n\n"+
		"Reference: conversation %d, reply %d.\n",
		conv.Phone.Masked(), noticeTime(date), where, conv.ID, reply.ID)
	return plainMail(to, h, body)
}
