package smtp

// File names: making the name a sender gave a file safe to show and to
// offer for download, and naming a file that came without one after its
// media type.

import (
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// sanitizeFilename makes the name a sender gave a file safe to show and to
// offer for download: valid UTF-8 (stray 8-bit bytes read as
// Windows-1252), without path components, control characters or the
// bidirectional overrides that disguise an extension, at most 255 bytes
// (the extension kept). HTML is not escaped here: that is the page's job.
func sanitizeFilename(s string) string {
	if !utf8.ValidString(s) {
		s = decodeWindows1252(s)
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r) || isBidiControl(r):
			return -1
		}
		return r
	}, s)
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if strings.Trim(s, ".") == "" {
		return ""
	}
	if len(s) > 255 {
		ext := path.Ext(s)
		if len(ext) > 32 {
			ext = ""
		}
		s = truncateUTF8(strings.TrimSuffix(s, ext), 255-len(ext)) + ext
	}
	return s
}

func isBidiControl(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' ||
		'\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069'
}

func decodeWindows1252(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			r = charmap.Windows1252.DecodeByte(s[i])
		}
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// truncateUTF8 cuts s to at most n bytes, at a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// defaultFilename names a file that came without a name, after its type.
func defaultFilename(mediaType string) string {
	if mediaType == "message/rfc822" || mediaType == "message/global" {
		return "forwarded.eml"
	}
	return "attachment" + fileExtension(mediaType)
}

// fileExtension returns the usual file extension of common media types. It
// does not ask mime.ExtensionsByType, whose answer depends on the host's
// mime.types (text/plain → ".conf" on Debian).
func fileExtension(mediaType string) string {
	switch mediaType {
	case "text/plain", "message/delivery-status", "message/disposition-notification", "text/rfc822-headers":
		return ".txt"
	case "text/html":
		return ".html"
	case "text/csv":
		return ".csv"
	case "text/calendar":
		return ".ics"
	case "text/vcard", "text/x-vcard":
		return ".vcf"
	case "application/pdf":
		return ".pdf"
	case "application/zip", "application/x-zip-compressed":
		return ".zip"
	case "application/msword":
		return ".doc"
	case "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
		return ".docx"
	case "application/vnd.ms-excel":
		return ".xls"
	case "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
		return ".xlsx"
	case "application/vnd.openxmlformats-officedocument.presentationml.presentation":
		return ".pptx"
	case "application/rtf", "text/rtf":
		return ".rtf"
	case "application/json":
		return ".json"
	case "application/xml", "text/xml":
		return ".xml"
	case "application/pgp-signature":
		return ".asc"
	case "application/pkcs7-signature", "application/x-pkcs7-signature":
		return ".p7s"
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		return ".p7m"
	case "application/octet-stream":
		return ".bin"
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	case "image/heic":
		return ".heic"
	case "image/tiff":
		return ".tif"
	case "image/bmp":
		return ".bmp"
	case "image/svg+xml":
		return ".svg"
	case "audio/mpeg":
		return ".mp3"
	case "video/mp4":
		return ".mp4"
	case "video/quicktime":
		return ".mov"
	}
	return ""
}
