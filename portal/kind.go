package portal

import (
	"mime"
	"path"
	"strings"
)

// kinds names the common content types as a patient knows them. What it
// does not name is called by its family (image, audio, video) or "File".
var kinds = map[string]string{
	"application/pdf":    "PDF",
	"image/jpeg":         "Photo (JPEG)",
	"image/png":          "Image (PNG)",
	"image/gif":          "Image (GIF)",
	"image/webp":         "Image (WebP)",
	"image/heic":         "Photo (HEIC)",
	"image/heif":         "Photo (HEIF)",
	"image/tiff":         "Image (TIFF)",
	"text/plain":         "Text",
	"text/csv":           "Spreadsheet (CSV)",
	"text/calendar":      "Calendar invitation",
	"text/html":          "Web page",
	"application/rtf":    "Document (RTF)",
	"application/msword": "Word document",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word document",
	"application/vnd.ms-excel": "Excel spreadsheet",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         "Excel spreadsheet",
	"application/vnd.ms-powerpoint":                                             "PowerPoint presentation",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint presentation",
	"application/vnd.oasis.opendocument.text":                                   "Document (ODT)",
	"application/vnd.oasis.opendocument.spreadsheet":                            "Spreadsheet (ODS)",
	"application/zip":               "ZIP archive",
	"message/rfc822":                "Email",
	"application/dicom":             "Medical image (DICOM)",
	"application/x-pkcs7-signature": "Signature",
}

// fileKind says what a file is, from its content type, or from its
// name's extension when the sender's mail program only said
// application/octet-stream.
func fileKind(contentType, name string) string {
	t, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		t = ""
	}
	if t == "" || t == "application/octet-stream" {
		if byExt, _, err := mime.ParseMediaType(mime.TypeByExtension(strings.ToLower(path.Ext(name)))); err == nil {
			t = byExt
		}
	}
	if k, ok := kinds[t]; ok {
		return k
	}
	switch family, _, _ := strings.Cut(t, "/"); family {
	case "image":
		return "Image"
	case "audio":
		return "Audio"
	case "video":
		return "Video"
	}
	return "File"
}
