package store

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// TestSealFile: a sealed file holds nothing readable, is a standard age
// file that the key file's identity opens, opens with an older identity
// kept in the key file, and a file cut short ends in an error.
func TestSealFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.txt")
	if _, err := WriteKeyFile(path, false); err != nil {
		t.Fatal(err)
	}
	old, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "Subject: SEALFILEMARKER\r\n\r\nthe patient's words\r\n"
	var sealed bytes.Buffer
	wc, err := old.SealTo(&sealed)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(wc, strings.Repeat(secret, 5000)) // several age chunks
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed.Bytes(), []byte("SEALFILEMARKER")) {
		t.Fatal("the sealed file holds the plaintext")
	}

	// age itself opens it with the identity of the key file.
	ids, err := age.ParseIdentities(strings.NewReader(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(bytes.NewReader(sealed.Bytes()), ids...)
	if err != nil {
		t.Fatalf("age.Decrypt: %v", err)
	}
	if b, _ := io.ReadAll(r); string(b) != strings.Repeat(secret, 5000) {
		t.Fatal("age opened something else")
	}

	// After a rotation, the old identity (second in the file) still opens it.
	if _, err := AddKeyToFile(path, false); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := keys.OpenFile(bytes.NewReader(sealed.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(pr); err != nil || string(b) != strings.Repeat(secret, 5000) {
		t.Fatalf("OpenFile: %v", err)
	}

	// Cut short: an error, not a shorter plaintext.
	pr, err = keys.OpenFile(bytes.NewReader(sealed.Bytes()[:sealed.Len()-100]))
	if err == nil {
		_, err = io.ReadAll(pr)
	}
	if err == nil {
		t.Fatal("a truncated file read to the end without an error")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
