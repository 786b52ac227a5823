package portal

import (
	"mime"
	"path"
	"strings"
)

// kinds names the common content types as a patient knows them. What it
// does not name is called by its family (image, audio, video) or "File".
// The names are message ids of the catalogue: pages write them in the
// patient's language.
var kinds = map[string]string{
	"application/pdf":    "KindPDF",
	"image/jpeg":         "KindPhotoJPEG",
	"image/png":          "KindImagePNG",
	"image/gif":          "KindImageGIF",
	"image/webp":         "KindImageWebP",
	"image/heic":         "KindPhotoHEIC",
	"image/heif":         "KindPhotoHEIF",
	"image/tiff":         "KindImageTIFF",
	"text/plain":         "KindText",
	"text/csv":           "KindSpreadsheetCSV",
	"text/calendar":      "KindCalendar",
	"text/html":          "KindWebPage",
	"application/rtf":    "KindDocumentRTF",
	"application/msword": "KindWord",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": "KindWord",
	"application/vnd.ms-excel": "KindExcel",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         "KindExcel",
	"application/vnd.ms-powerpoint":                                             "KindPowerPoint",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": "KindPowerPoint",
	"application/vnd.oasis.opendocument.text":                                   "KindDocumentODT",
	"application/vnd.oasis.opendocument.spreadsheet":                            "KindSpreadsheetODS",
	"application/zip":               "KindZip",
	"message/rfc822":                "KindEmail",
	"application/dicom":             "KindDICOM",
	"application/x-pkcs7-signature": "KindSignature",
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
		return "KindImage"
	case "audio":
		return "KindAudio"
	case "video":
		return "KindVideo"
	}
	return "KindFile"
}
