package smtp

import (
	"fmt"
	"io"
)

// A BDAT chunk cut short must never be stored. go-smtp (v0.25.1,
// conn.go handleBdat) copies a chunk through io.LimitReader(conn, size)
// and takes the end of that copy as the end of the chunk; but io.Copy
// takes end-of-stream as success, so when the client closes the
// connection inside "BDAT 2000 LAST" after 100 bytes, go-smtp closes the
// message pipe as if all 2000 had come, and Data would store and text a
// truncated message. (DATA is not affected: its reader needs the final
// "." line and reports io.ErrUnexpectedEOF without it.) go-smtp has no
// option to turn CHUNKING off, and turning it off would cost the mail
// servers that use it, Exchange and Microsoft 365 among them.
//
// So Data reads through chunkGuard, which knows what only the connection
// can tell: whether the client has closed its side (trackedConn saw
// io.EOF). go-smtp reads the connection only as far as the declared size
// of a chunk, never beyond it, so a complete chunk ends before any
// end-of-stream is read, even when the client closes right after it;
// end-of-stream read before the message ended means the chunk was cut.
// Then the message ends in an error instead, and the draft is discarded.
//
// What this cannot see: after STARTTLS go-smtp reads a *tls.Conn it made
// over the trackedConn, and a client that ends TLS with a close_notify
// alert inside a chunk, without closing TCP, ends go-smtp's stream while
// ours is still open. That takes a deliberate TLS shutdown by a client that
// logged in (or a trusted relay) mid-chunk: the same as sending a short
// message, not a fault. A crash, a reset or a dropped network closes TCP
// and is caught. docs/go-smtp-bdat.patch fixes it in go-smtp itself, where
// the declared size is known.

// errChunkCut ends a message whose last BDAT chunk was cut short. It wraps
// io.ErrUnexpectedEOF, which replyError passes through as "the client
// went away".
var errChunkCut = fmt.Errorf("smtp: the connection closed inside a BDAT chunk: %w", io.ErrUnexpectedEOF)

// chunkGuard turns the end of a message into errChunkCut when the client
// had already closed the connection.
type chunkGuard struct {
	r    io.Reader
	conn *trackedConn
	cut  bool
}

func (g *chunkGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err == io.EOF && g.conn.eof.Load() {
		g.cut = true
		return n, errChunkCut
	}
	return n, err
}
