package notify

import (
	"slices"
	"time"
)

// Leases. A worker claims each job for a lease (Outbox.ClaimJob): no other
// worker, on this node or another that shares the store, takes the job
// while the lease runs, and a job whose node died holding it is taken over
// by the next claim once the lease has ended. So a node that dies delays
// the one job each of its workers held by at most that job's lease.
//
// The lease must outlast the work on the job, or a slow send and the one
// of the worker that took the job over would both go out. The worker
// therefore cuts every send short at its lease less recordTimeout (the
// write of its outcome, CompleteTextClaim's two transactions included) and
// leaseMargin (the moment from the claim to the send, and the clocks of
// nodes that disagree by a little: a lease ends by the clock of the node
// that claims next). A send cut short is a failed attempt, retried with
// back-off like any other.
//
//   - A text's lease is a minute, so its send is cut at 30 s. Vonage's
//     client gives up after 10 s (VonageConfig.Timeout); a provider that
//     has not answered in 30 s is down, and a dead node's text waits one
//     minute for another node.
//   - An email's lease is 15 minutes, its send cut at 14½. The relay's
//     session is a dozen steps, each allowed 30 s (MailConfig.Timeout):
//     connect, EHLO, STARTTLS and EHLO again, AUTH, MAIL, RCPT, DATA, the
//     end of DATA, plus the writes of a reply that carries its files. Mail
//     (replies, notices, reset links) can wait that long after a node
//     dies; a text cannot, hence two leases.
//
// A worker that takes texts waits for its send slot before it claims, not
// after (slots.go): no lease has to cover the wait for the SMS rate.
const (
	textLease   = time.Minute
	mailLease   = 15 * time.Minute
	leaseMargin = 20 * time.Second
)

// leaseFor is the lease of a job of kind.
func leaseFor(kind string) time.Duration {
	if slices.Contains(textKinds, kind) {
		return textLease
	}
	return mailLease
}

// sendLimit is how long the send of a job of kind may take: its lease,
// less the write of its outcome and the margin.
func sendLimit(kind string) time.Duration {
	return leaseFor(kind) - recordTimeout - leaseMargin
}
