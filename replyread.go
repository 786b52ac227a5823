package securetextd

import "strconv"

// Audit events of the console's replies (console/reply.go).
const (
	// AuditReplyRead: the sender opened a recipient's reply in the
	// console (its text shown), or downloaded one of its files (Detail
	// "part N").
	AuditReplyRead = "sender.reply_read"
)

// ConsoleReplyPath is the path of reply id's page on the console, which
// the email about a reply links to (mail.reply_mode = "notice").
func ConsoleReplyPath(id int64) string { return "/r/" + strconv.FormatInt(id, 10) }
