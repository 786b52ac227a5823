package portal

import (
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/securetextd/securetextd"
)

// rasterTypes are the images a browser may show inline: formats without
// script, unlike SVG.
var rasterTypes = map[string]bool{
	"image/png":  true,
	"image/jpeg": true,
	"image/gif":  true,
	"image/webp": true,
}

func isRaster(typ string) bool { return rasterTypes[typ] }

// safeType is the Content-Type a part is served with: the raster images
// and PDF keep theirs; everything else, HTML and SVG first of all, is
// application/octet-stream, which no browser renders.
func safeType(typ string) string {
	if isRaster(typ) || typ == "application/pdf" {
		return typ
	}
	return "application/octet-stream"
}

// downloadCSP applies to every part served: were a browser to render one
// anyway, it could run nothing and fetch nothing.
const downloadCSP = "default-src 'none'; sandbox"

// handlePart serves one part of a message as a real HTTP download, with
// Range requests honoured (bounded and merged: ranges.go): the store
// decrypts only the ranges asked for, so a phone can stream a video or
// page through a large PDF. With ?inline=1, PNG, JPEG, GIF and WebP are
// served to be shown in the page.
//
// Every response that carries bytes of the part is a read, recorded
// before the bytes are sent, once per session and part (recordRead).
func (s *Server) handlePart(w http.ResponseWriter, r *http.Request) {
	_, conv := s.ownConversation(w, r)
	if conv == nil {
		return
	}
	msgID, err1 := strconv.ParseInt(r.PathValue("msg"), 10, 64)
	idx, err2 := strconv.Atoi(r.PathValue("idx"))
	if err1 != nil || err2 != nil || idx < 0 {
		s.handleNotFound(w, r)
		return
	}
	msgs, err := s.store.ConversationMessages(r.Context(), conv.ID)
	if err != nil {
		s.fail(w, r, "conversation messages", err)
		return
	}
	var msg *securetextd.Message
	for _, m := range msgs {
		if m.ID == msgID {
			msg = m
		}
	}
	if msg == nil || idx >= len(msg.Parts) {
		s.handleNotFound(w, r)
		return
	}
	part := msg.Parts[idx]
	ra, size, err := s.store.OpenPart(r.Context(), msg.ID, idx)
	if err != nil {
		s.fail(w, r, "open part", err)
		return
	}
	typ := safeType(part.ContentType)
	inline := r.URL.Query().Get("inline") == "1" && isRaster(typ)
	h := w.Header()
	h.Set("Content-Type", typ)
	h.Set("Content-Security-Policy", downloadCSP)
	h.Set("Cache-Control", "private, no-store")
	h.Set("ETag", fmt.Sprintf(`"%d-%d"`, msg.ID, idx))
	if inline {
		h.Set("Content-Disposition", "inline")
	} else {
		h.Set("Content-Disposition", contentDisposition(displayName(part, idx)))
	}
	if rg := normalizeRange(r.Header.Get("Range"), size); rg == "" {
		r.Header.Del("Range")
	} else {
		r.Header.Set("Range", rg)
	}
	if r.Method != http.MethodHead {
		w = &readRecorder{
			ResponseWriter: w,
			record:         func() error { return s.recordRead(r, conv, msg, idx, inline) },
			fail:           func(w http.ResponseWriter, err error) { s.fail(w, r, "record read", err) },
		}
	}
	http.ServeContent(w, r, "", msg.Received, io.NewSectionReader(ra, 0, size))
}

// recordRead records that the request's session is being sent bytes of
// part idx of msg: an audit event, and, for a body of a message from the
// sender, a view, which sends its read receipt on the first. It does so
// once per session and part: a video player's hundred Range requests are
// one read.
func (s *Server) recordRead(r *http.Request, conv *securetextd.Conversation, msg *securetextd.Message, idx int, inline bool) error {
	k := s.reads.key(s.sessionToken(r), msg.ID, idx)
	if !s.reads.first(k, time.Now(), s.cfg.SessionLifetime) {
		return nil
	}
	detail := "part=" + strconv.Itoa(idx)
	if inline {
		detail += " inline"
	}
	err := s.auditOrFail(r, securetextd.AuditDownloaded, conv, msg.ID, detail)
	if kind := msg.Parts[idx].Kind; err == nil && s.life != nil && msg.Direction == securetextd.Inbound &&
		(kind == securetextd.PartText || kind == securetextd.PartHTML) {
		err = s.life.MarkViewed(r.Context(), conv.ID, []int64{msg.ID})
	}
	if err != nil {
		s.reads.forget(k)
		return err
	}
	if !inline {
		s.logger.Info("download", "phone", conv.Phone.Masked(), "conversation", conv.ID, "message", msg.ID, "part", idx)
	}
	return nil
}

// displayName is the name a part is shown and downloaded under: the
// sender's, made safe, or one made from its kind and type.
func displayName(p securetextd.Part, idx int) string {
	if name := cleanFilename(p.Filename); name != "" {
		return name
	}
	switch p.Kind {
	case securetextd.PartText:
		return "message.txt"
	case securetextd.PartHTML:
		return "message.html"
	}
	ext := map[string]string{
		"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
		"application/pdf": ".pdf",
	}[p.ContentType]
	return "file-" + strconv.Itoa(idx+1) + ext
}

// maxFilenameRunes bounds a filename; the extension is kept.
const maxFilenameRunes = 120

// cleanFilename makes a filename safe to show and to offer as a download
// name: no control characters (CR and LF included), no path separators,
// no leading dots, not too long. It is never used as a path here.
func cleanFilename(name string) string {
	name = strings.Map(func(c rune) rune {
		switch {
		case c == '/' || c == '\\':
			return '_'
		case unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || c == unicode.ReplacementChar:
			return -1
		}
		return c
	}, strings.ToValidUTF8(name, ""))
	name = strings.TrimLeft(strings.TrimSpace(name), ". \t")
	if r := []rune(name); len(r) > maxFilenameRunes {
		ext := path.Ext(name)
		if len([]rune(ext)) > 16 {
			ext = ""
		}
		name = string(r[:maxFilenameRunes-len([]rune(ext))]) + ext
	}
	return strings.TrimSpace(name)
}

// contentDisposition returns an attachment header for name (already
// cleaned): an ASCII fallback for old browsers, and the exact name in
// RFC 5987's UTF-8 form.
func contentDisposition(name string) string {
	ascii := strings.Map(func(c rune) rune {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '/' || c == '%' || c == ';' {
			return '_'
		}
		return c
	}, name)
	if ext := path.Ext(ascii); strings.Trim(strings.TrimSuffix(ascii, ext), "_. ") == "" {
		ascii = "download" + ext
	}
	return `attachment; filename="` + ascii + `"; filename*=UTF-8''` + rfc5987(name)
}

// rfc5987 percent-encodes everything but RFC 5987's attr-chars.
func rfc5987(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
