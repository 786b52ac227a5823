package notify

import (
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
)

// ageKeys seals and opens with one age identity, as *store.Keyring does
// with the key file's.
type ageKeys struct{ id *age.X25519Identity }

func (k ageKeys) SealTo(w io.Writer) (io.WriteCloser, error) { return age.Encrypt(w, k.id.Recipient()) }
func (k ageKeys) OpenFile(r io.Reader) (io.Reader, error)    { return age.Decrypt(r, k.id) }

// testKeys is the one key of the package's tests.
var testKeys = sync.OnceValue(func() ageKeys {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		panic(err)
	}
	return ageKeys{id}
})

func fileMailer(t *testing.T, dir string, st MailStore) *Mailer {
	t.Helper()
	c := mailConfig()
	c.Dir = dir
	m, err := NewMailer(c, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readOnlyFile opens the one sealed email in dir and returns its message.
func readOnlyFile(t *testing.T, dir string) []byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d files in %s, want 1", len(entries), dir)
	}
	_, rc, err := OpenMailFile(filepath.Join(dir, entries[0].Name()), testKeys())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestMailFile: without a relay, an email is sealed into a file of its
// own, 0600 in a 0700 directory, named by time and job only, that holds
// nothing readable (not the subject, the reply, the filename, the photo,
// the address, plain or encoded as the email carries them), and that
// OpenMailFile opens into the whole message with its envelope.
func TestMailFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail-out")
	st := newMailStore(t, "Your results MAILFILESUBJECT", "MAILFILENAME.jpg")
	before := time.Now().UTC()
	if err := fileMailer(t, dir, st).Send(t.Context(), replyJob(t, 17)); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !regexp.MustCompile(`^\d{8}T\d{6}\.\d{9}Z-17\.eml\.age$`).MatchString(entries[0].Name()) {
		t.Fatalf("files %v; want one <time>-17.eml.age", entries)
	}
	fi, err := entries[0].Info()
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", fi.Mode(), err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	photo := st.content[2][1]
	for _, marker := range [][]byte{
		[]byte("MAILFILESUBJECT"), []byte("MAILFILENAME"), []byte(testClinician), []byte("Thank you, doctor"),
		[]byte(base64.StdEncoding.EncodeToString(photo[:57])), photo[:64],
	} {
		if bytes.Contains(raw, marker) {
			t.Errorf("the file holds %q in clear", marker)
		}
	}

	mf, rc, err := OpenMailFile(filepath.Join(dir, entries[0].Name()), testKeys())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if mf.Kind != "reply" || mf.Job != 17 || mf.To != testClinician || mf.Size != fi.Size() ||
		mf.Time.Before(before.Truncate(time.Microsecond)) || time.Since(mf.Time) > time.Minute {
		t.Errorf("MailFile %+v", mf)
	}
	p := parseMail(t, msg)
	if s, _ := p.header.Subject(); s != "Re: Your results MAILFILESUBJECT" {
		t.Errorf("Subject %q", s)
	}
	if len(p.files) != 1 || !bytes.Equal(p.files[0].data, photo) {
		t.Errorf("the attachment did not come through whole")
	}
}

// TestMailDir: ReadMailDir lists the sealed emails oldest first with their
// envelopes, says which it cannot open, and leaves other files out;
// PurgeMailDir deletes sealed emails and half-written files older than its
// time and nothing else; UnsealedMailFiles finds plain .eml files.
func TestMailDir(t *testing.T) {
	dir := t.TempDir()
	m := fileMailer(t, dir, newMailStore(t, "Your results", "photo.jpg"))
	for _, id := range []int64{3, 1, 2} {
		if err := m.Send(t.Context(), replyJob(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Send(t.Context(), resetJob(t, "patient@example.org", "RESETTOKEN")); err != nil {
		t.Fatal(err)
	}
	// An email sealed to another key; an old plain one; a file being
	// written; the operator's notes.
	other, _ := age.GenerateX25519Identity()
	var sealed bytes.Buffer
	w, _ := age.Encrypt(&sealed, other.Recipient())
	io.WriteString(w, "{}\nSubject: x\r\n\r\n")
	w.Close()
	old := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	write := func(name string, data []byte, mtime time.Time) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	write(old.Format(mailTimeLayout)+"-9.eml.age", sealed.Bytes(), old)
	write("1700000000000000000-5.eml", []byte("Subject: old plain\r\n\r\nhello\r\n"), old)
	write(".tmp-123", []byte("age-encryption.org/v1 cut short"), old)
	write(".tmp-456", []byte("age-encryption.org/v1 being written"), time.Now())
	write("README", []byte("operator's notes"), old)

	files, err := ReadMailDir(dir, testKeys())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		if f.Err != nil {
			got = append(got, "error")
			continue
		}
		got = append(got, f.Kind+" "+f.To)
	}
	want := "error,reply " + testClinician + ",reply " + testClinician + ",reply " + testClinician + ",reset patient@example.org"
	if strings.Join(got, ",") != want {
		t.Errorf("ReadMailDir = %q, want %q", strings.Join(got, ","), want)
	}
	if files[1].Job != 3 || files[2].Job != 1 || files[3].Job != 2 {
		t.Errorf("not in the order written: %+v", files)
	}

	plain, err := UnsealedMailFiles(dir)
	if err != nil || strings.Join(plain, ",") != "1700000000000000000-5.eml" {
		t.Errorf("UnsealedMailFiles = %q, %v", plain, err)
	}

	n, err := PurgeMailDir(dir, time.Now().Add(-time.Hour))
	if err != nil || n != 2 {
		t.Errorf("PurgeMailDir = %d, %v; want the old sealed email and the old half-written file", n, err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != 7 || !strings.Contains(strings.Join(left, ","), ".tmp-456,1700000000000000000-5.eml") ||
		!strings.Contains(strings.Join(left, ","), "README") {
		t.Errorf("left %q: want the recent emails, the plain file, the file being written and the notes", left)
	}
	if n, err := PurgeMailDir(dir, time.Now().Add(time.Hour)); err != nil || n != 5 {
		t.Errorf("PurgeMailDir(now) = %d, %v; want the four emails and the file being written", n, err)
	}
}

// TestOpenMailFileDamaged: a file cut short reads to an error, not to a
// shorter message; a name that is not a sealed email's is refused.
func TestOpenMailFileDamaged(t *testing.T) {
	dir := t.TempDir()
	if err := fileMailer(t, dir, newMailStore(t, "Your results", "photo.jpg")).Send(t.Context(), replyJob(t, 4)); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	path := filepath.Join(dir, entries[0].Name())
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()-10); err != nil {
		t.Fatal(err)
	}
	_, rc, err := OpenMailFile(path, testKeys())
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	if err == nil {
		t.Error("a file cut short read without an error")
	}
	if _, _, err := OpenMailFile(filepath.Join(dir, "notes.txt"), testKeys()); err == nil || !strings.Contains(err.Error(), "not a sealed email") {
		t.Errorf("OpenMailFile(notes.txt) = %v", err)
	}
}
