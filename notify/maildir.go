package notify

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// The outgoing-mail directory. Without a relay (mail.relay empty, for a
// demo or for development) the Mailer writes each email into MailConfig.Dir
// instead of sending it. The emails hold what the gateway never leaves
// readable on disk (a patient's reply and photos, reset links, subjects),
// so each file is sealed like the store: an age file, encrypted to the key
// file's first identity (*store.Keyring's SealTo).
//
// A file is named by when it was written and its job, and says nothing of
// its content:
//
//	20261123T100000.123456789Z-17.eml.age
//
// Names sort by time. Sealed inside is one line of JSON, the envelope
// ({"kind":"reply","job":17,"to":"dr.jones@clinic.example"}), then the
// message as it would have gone to the relay (RFC 5322). Files are written
// atomically: sealed into a temporary file in the same directory, synced,
// then renamed, so a crash leaves a whole file or none under such a name.
// `securetextd mail list` and `mail show` open them; the retention sweep
// deletes them (PurgeMailDir).

// Sealer seals the files the Mailer writes into Dir. *store.Keyring
// implements it.
type Sealer interface {
	// SealTo returns a writer that seals what is written to it into w;
	// the file is complete once the writer is closed.
	SealTo(w io.Writer) (io.WriteCloser, error)
}

// Opener opens the files of the outgoing-mail directory. *store.Keyring
// implements it.
type Opener interface {
	// OpenFile returns a reader of the plaintext of a sealed file; a file
	// cut short or altered ends in an error.
	OpenFile(r io.Reader) (io.Reader, error)
}

// MailFile describes one sealed email of the outgoing-mail directory.
type MailFile struct {
	Name string    // the file's name in the directory
	Time time.Time // when it was written, from its name
	Size int64     // bytes on disk, sealed
	// Kind, Job and To are the envelope: the job's kind ("reply",
	// "reset", "notice", …), its id, and the recipient's address. They
	// are known only once the file was opened.
	Kind string
	Job  int64
	To   string
	// Err, from ReadMailDir, is why the file could not be opened (a key
	// missing from the key file, a damaged file).
	Err error
}

// mailEnvelope is the first line of a sealed email.
type mailEnvelope struct {
	Kind string `json:"kind"`
	Job  int64  `json:"job"`
	To   string `json:"to"`
}

const (
	// mailFileSuffix ends the name of every sealed email.
	mailFileSuffix = ".eml.age"
	// mailTimeLayout is the time in a name: fixed width, so that names
	// sort by time.
	mailTimeLayout = "20060102T150405.000000000Z"
	// mailTempPrefix starts the name of a file being written.
	mailTempPrefix = ".tmp-"
	// maxEnvelope bounds the envelope line a reader accepts.
	maxEnvelope = 4 << 10
)

var mailFileName = regexp.MustCompile(`^(\d{8}T\d{6}\.\d{9}Z)-(\d+)` + regexp.QuoteMeta(mailFileSuffix) + `$`)

// writeFile seals msg into a new file of Dir, atomically, and returns its
// path.
func (m *Mailer) writeFile(job *securetextd.Job, msg *outgoing) (name string, err error) {
	dir := m.c.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("mail: %w", err)
	}
	f, err := os.CreateTemp(dir, mailTempPrefix+"*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("mail: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriter(f)
	sw, err := m.c.Seal.SealTo(bw)
	if err != nil {
		return "", fmt.Errorf("mail: %w", err)
	}
	env, err := json.Marshal(mailEnvelope{Kind: job.Kind, Job: job.ID, To: msg.to})
	if err != nil {
		return "", fmt.Errorf("mail: %w", err)
	}
	if _, err := sw.Write(append(env, '\n')); err != nil {
		return "", fmt.Errorf("mail: %w", err)
	}
	if err := msg.write(sw); err != nil {
		return "", fmt.Errorf("mail: write message: %w", err)
	}
	// Close writes the last sealed chunk; without it the file would not
	// open.
	if err := sw.Close(); err != nil {
		return "", fmt.Errorf("mail: seal: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return "", fmt.Errorf("mail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("mail: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("mail: %w", err)
	}
	name = filepath.Join(dir, time.Now().UTC().Format(mailTimeLayout)+"-"+strconv.FormatInt(job.ID, 10)+mailFileSuffix)
	if err := os.Rename(f.Name(), name); err != nil {
		return "", fmt.Errorf("mail: %w", err)
	}
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return name, nil
}

// ReadMailDir lists the sealed emails in dir, oldest first, each with its
// envelope opened with keys (or the error that kept it closed). Other
// files are left out; UnsealedMailFiles finds plain ones. A directory that
// does not exist holds no email.
func ReadMailDir(dir string, keys Opener) ([]MailFile, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	var files []MailFile
	for _, e := range entries {
		if !e.Type().IsRegular() || !mailFileName.MatchString(e.Name()) {
			continue
		}
		mf, rc, err := OpenMailFile(filepath.Join(dir, e.Name()), keys)
		if err != nil {
			if mf == nil {
				continue // gone since ReadDir: the sweep removed it
			}
			mf.Err = err
		} else {
			rc.Close()
		}
		files = append(files, *mf)
	}
	return files, nil // ReadDir sorts by name, which is by time
}

// OpenMailFile opens the sealed email at path with keys. It returns its
// description and a reader of the message (RFC 5322), which the caller
// closes. When only the sealing is at fault (a missing key, a damaged
// file), the description is returned with the error, without envelope.
//
// The message is authenticated as it is read: a damaged file ends in an
// error from the reader, never in a shorter message.
func OpenMailFile(path string, keys Opener) (*MailFile, io.ReadCloser, error) {
	base := filepath.Base(path)
	match := mailFileName.FindStringSubmatch(base)
	if match == nil {
		return nil, nil, fmt.Errorf("mail: %s is not a sealed email of the outgoing-mail directory (want a name like 20261123T100000.000000000Z-17%s)", base, mailFileSuffix)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("mail: %w", err)
	}
	mf := &MailFile{Name: base}
	mf.Time, _ = time.Parse(mailTimeLayout, match[1])
	if fi, err := f.Stat(); err == nil {
		mf.Size = fi.Size()
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	pr, err := keys.OpenFile(bufio.NewReader(f))
	if err != nil {
		return mf, nil, fmt.Errorf("mail: %s: %w", base, err)
	}
	br := bufio.NewReader(pr)
	line, err := br.ReadSlice('\n')
	var env mailEnvelope
	if err != nil || len(line) > maxEnvelope || json.Unmarshal(line, &env) != nil {
		return mf, nil, fmt.Errorf("mail: %s: no envelope: not written by securetextd, or damaged", base)
	}
	mf.Kind, mf.Job, mf.To = env.Kind, env.Job, env.To
	ok = true
	return mf, readCloser{br, f}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// PurgeMailDir deletes the sealed emails in dir written before before, and
// files left half-written (by a crash) that old, and returns how many it
// deleted. It leaves every other file alone: plain .eml files from an
// older version are the operator's to remove (see UnsealedMailFiles).
func PurgeMailDir(dir string, before time.Time) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mail: purge: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range entries {
		var written time.Time
		if match := mailFileName.FindStringSubmatch(e.Name()); match != nil {
			written, _ = time.Parse(mailTimeLayout, match[1])
		} else if strings.HasPrefix(e.Name(), mailTempPrefix) && !strings.HasSuffix(e.Name(), ".eml") {
			if fi, err := e.Info(); err == nil {
				written = fi.ModTime()
			}
		}
		if written.IsZero() || !written.Before(before) || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("mail: purge: %w", err)
	}
	return n, nil
}

// UnsealedMailFiles returns the names of the plain .eml files in dir,
// which versions before sealing wrote there, and which anyone who can
// read the directory can read. A directory that does not exist has none.
func UnsealedMailFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".eml") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}
