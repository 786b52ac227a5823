package portal

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Downloads honour Range requests, so that a phone can stream a video or
// page through a large PDF, but a Range header is the client's to write:
// thousands of tiny or overlapping ranges would make the server decrypt
// the same chunks again and again for one request. So the ranges are read
// here first, bounded and merged, and http.ServeContent only ever sees at
// most maxRanges sorted ranges that do not overlap.

// maxRanges bounds the ranges of one request. More, or any overlap, gets
// the whole part.
const maxRanges = 16

// byteRange is the bytes [start, end) of a part.
type byteRange struct{ start, end int64 }

// normalizeRange rewrites a Range header for a part of size bytes into
// what http.ServeContent is to serve:
//   - "" (serve the whole part, 200) for no header, another unit, a
//     header that does not parse (RFC 9110 lets a server ignore it), more
//     than maxRanges ranges, or ranges that overlap;
//   - "bytes=a-b,c-d" with the ranges sorted, the touching ones merged,
//     the unsatisfiable ones left out (206);
//   - a range past the end when none is satisfiable (416).
func normalizeRange(h string, size int64) string {
	unit, spec, ok := strings.Cut(strings.TrimSpace(h), "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return ""
	}
	// A recipient ignores a reasonable number of empty list elements; an
	// unreasonable number is not worth parsing.
	if strings.Count(spec, ",") > 4*maxRanges {
		return ""
	}
	var ranges []byteRange
	n := 0
	for elem := range strings.SplitSeq(spec, ",") {
		elem = strings.TrimSpace(elem)
		if elem == "" {
			continue
		}
		if n++; n > maxRanges {
			return ""
		}
		first, last, ok := strings.Cut(elem, "-")
		if !ok {
			return ""
		}
		var r byteRange
		if first == "" { // the last N bytes
			suffix, ok := parseRangeInt(last)
			if !ok {
				return ""
			}
			if suffix == 0 || size == 0 {
				continue // unsatisfiable
			}
			r = byteRange{max(0, size-suffix), size}
		} else {
			start, ok := parseRangeInt(first)
			if !ok {
				return ""
			}
			end := size
			if last != "" {
				l, ok := parseRangeInt(last)
				if !ok || l < start {
					return ""
				}
				end = min(size, l+1)
			}
			if start >= size {
				continue // unsatisfiable
			}
			r = byteRange{start, end}
		}
		ranges = append(ranges, r)
	}
	if n == 0 {
		return "" // "bytes=" and nothing: no range asked for
	}
	if len(ranges) == 0 {
		if size == 0 {
			return "" // an empty part: 200 and nothing, as ServeContent does
		}
		return "bytes=" + strconv.FormatInt(size, 10) + "-" // 416
	}
	slices.SortFunc(ranges, func(a, b byteRange) int { return cmp.Compare(a.start, b.start) })
	merged := ranges[:1]
	for _, r := range ranges[1:] {
		prev := &merged[len(merged)-1]
		switch {
		case r.start < prev.end:
			return "" // overlap: the whole part
		case r.start == prev.end:
			prev.end = r.end
		default:
			merged = append(merged, r)
		}
	}
	var b strings.Builder
	b.WriteString("bytes=")
	for i, r := range merged {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(r.start, 10))
		b.WriteByte('-')
		b.WriteString(strconv.FormatInt(r.end-1, 10))
	}
	return b.String()
}

// parseRangeInt reads a byte position: digits only, and not so many that
// they overflow.
func parseRangeInt(s string) (int64, bool) {
	if s == "" || len(s) > 18 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// readRecorder passes a part's response through, and records the read
// (audit, read receipt) just before a response that carries its bytes —
// a 200 or a 206 — is sent; a 304, a 412 or a 416 carries none and records
// nothing. When recording fails, the bytes are not sent: fail answers
// instead.
type readRecorder struct {
	http.ResponseWriter
	record  func() error
	fail    func(http.ResponseWriter, error)
	started bool
	failed  bool
}

func (rw *readRecorder) WriteHeader(code int) {
	if rw.started {
		rw.ResponseWriter.WriteHeader(code)
		return
	}
	rw.started = true
	if code == http.StatusOK || code == http.StatusPartialContent {
		if err := rw.record(); err != nil {
			rw.failed = true
			h := rw.Header()
			for _, k := range []string{"Content-Range", "Content-Length", "Content-Type", "Content-Disposition",
				"Accept-Ranges", "Last-Modified", "Etag"} {
				h.Del(k)
			}
			h.Set("Content-Security-Policy", pageCSP)
			rw.fail(rw.ResponseWriter, err)
			return
		}
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *readRecorder) Write(p []byte) (int, error) {
	if !rw.started {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.failed {
		return 0, errReadNotRecorded
	}
	return rw.ResponseWriter.Write(p)
}

// errReadNotRecorded stops http.ServeContent from sending a part whose
// read could not be recorded.
var errReadNotRecorded = errors.New("portal: read not recorded: part not sent")

// maxReadLog bounds the reads remembered.
const maxReadLog = 100_000

// readLog remembers which parts each session was recorded reading, so
// that a read is recorded once per session and part, not once per Range
// request: a video player makes hundreds. A restart, or a full log,
// forgets, and the next read is recorded again: more rows, never fewer.
// It is each node's own: a session whose requests land on two nodes is
// recorded once on each, which writes a row more and never hides a read,
// where sharing it would make every Range request ask the database.
type readLog struct {
	mu   sync.Mutex
	seen map[readKey]time.Time
}

type readKey struct {
	session [16]byte // of the session token's SHA-256
	message int64
	part    int
}

func newReadLog() *readLog { return &readLog{seen: make(map[readKey]time.Time)} }

// key names a read of part of message by the session of token.
func (l *readLog) key(token string, message int64, part int) readKey {
	sum := sha256.Sum256([]byte(token))
	k := readKey{message: message, part: part}
	copy(k.session[:], sum[:])
	return k
}

// first reports whether k is new, and remembers it. Entries older than
// lifetime (the session's, by then ended) make room first; if none is, the
// log starts afresh.
func (l *readLog) first(k readKey, now time.Time, lifetime time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[k]; ok {
		return false
	}
	if len(l.seen) >= maxReadLog {
		for old, t := range l.seen {
			if now.Sub(t) > lifetime {
				delete(l.seen, old)
			}
		}
		if len(l.seen) >= maxReadLog {
			clear(l.seen)
		}
	}
	l.seen[k] = now
	return true
}

// forget lets k be recorded again, after recording it failed.
func (l *readLog) forget(k readKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, k)
}
