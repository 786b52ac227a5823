package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"os"
	"strings"
)

// The messages sent, CRLF and ready for DATA (none of their lines starts
// with a dot). A message of a given size is a short text and, past 2 KiB,
// one base64 attachment of random bytes: what a clinic sends, and what
// makes the MIME walk decode.

const head = "From: Dr Bench <" + benchUser + ">\r\n" +
	"To: " + benchTo + "\r\n" +
	"Subject: Your results\r\n" +
	"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <bench@clinic.example>\r\n" +
	"MIME-Version: 1.0\r\n"

// message returns a message of about size bytes.
func message(size int) []byte {
	var b bytes.Buffer
	writeMessage(&b, int64(size))
	return b.Bytes()
}

// messageFile writes a message of size bytes to path.
func messageFile(path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		fatalf("%v", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	writeMessage(w, size)
	if err := w.Flush(); err != nil {
		fatalf("%v", err)
	}
	if err := f.Close(); err != nil {
		fatalf("%v", err)
	}
}

type stringWriter interface {
	Write([]byte) (int, error)
	WriteString(string) (int, error)
}

func writeMessage(w stringWriter, size int64) {
	line := "Your results are in and everything looks normal. See you soon.\r\n" // 64 bytes
	if size <= 2048 {
		w.WriteString(head)
		w.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n")
		for n := int64(len(head)) + 45; n < size; n += int64(len(line)) {
			w.WriteString(line)
		}
		return
	}
	top := head + "Content-Type: multipart/mixed; boundary=BOUNDARY\r\n\r\n" +
		"--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat(line, 4) +
		"--BOUNDARY\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"results.pdf\"\r\n\r\n"
	tail := "--BOUNDARY--\r\n"
	w.WriteString(top)
	lines := (size - int64(len(top)+len(tail))) / 78 // 76 base64 characters and CRLF
	rng := rand.NewChaCha8([32]byte{7})
	raw := make([]byte, 57*1024)
	enc := make([]byte, base64.StdEncoding.EncodedLen(57))
	for lines > 0 {
		rng.Read(raw)
		for i := 0; i < len(raw) && lines > 0; i += 57 {
			base64.StdEncoding.Encode(enc, raw[i:i+57])
			w.Write(enc)
			w.WriteString("\r\n")
			lines--
		}
	}
	w.WriteString(tail)
}
