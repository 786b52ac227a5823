package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"filippo.io/age"
)

// Keyring holds the deployment's age identities. The first identity seals
// the store's data keys, which in turn seal everything else it writes
// (envelope.go, datakey.go); every identity is tried when opening. To
// rotate the key, put a new identity first, restart, run DB.Rekey, and keep
// the old identities after it until the rekey has finished.
//
// A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	identities []age.Identity
	recipient  age.Recipient // of identities[0]
	public     string        // recipient's "age1…" encoding
}

// LoadKeyFile reads a key file as written by [WriteKeyFile] or age-keygen:
// one identity per line, X25519 ("AGE-SECRET-KEY-1…") or hybrid
// post-quantum ("AGE-SECRET-KEY-PQ-1…"), with "#" comments and blank lines
// ignored.
//
// A key file that its group or other users could read is refused: the key
// opens every message the gateway ever stored.
func LoadKeyFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("store: key file %s is accessible by group or others (mode %#o): run chmod 600 %s", path, perm, path)
	}
	// age's parse errors name the line, never its content.
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("store: key file %s: %w", path, err)
	}
	k, err := newKeyring(ids)
	if err != nil {
		return nil, fmt.Errorf("store: key file %s: %w", path, err)
	}
	return k, nil
}

// newKeyring returns a Keyring that seals to the first of ids.
func newKeyring(ids []age.Identity) (*Keyring, error) {
	if len(ids) == 0 {
		return nil, errors.New("no identities")
	}
	k := &Keyring{identities: ids}
	switch id := ids[0].(type) {
	case *age.HybridIdentity:
		r := id.Recipient()
		k.recipient, k.public = r, r.String()
	case *age.X25519Identity:
		r := id.Recipient()
		k.recipient, k.public = r, r.String()
	default:
		return nil, fmt.Errorf("the first identity (%T) cannot be used to seal", id)
	}
	return k, nil
}

// WriteKeyFile generates a new identity and writes it to a new file at path,
// readable by its owner only, in age-keygen's format:
//
//	# created: 2026-11-23T10:00:00Z
//	# public key: age1pq1…
//	AGE-SECRET-KEY-PQ-1…
//
// hybrid selects a post-quantum identity (ML-KEM-768 + X25519), which is
// what a new deployment should use: records are kept for years, and a stolen
// database must stay sealed against a future quantum computer. Otherwise the
// identity is X25519.
//
// WriteKeyFile never overwrites a file: losing a key loses every message
// sealed to it. It returns the public key ("age1…").
func WriteKeyFile(path string, hybrid bool) (recipient string, err error) {
	secret, recipient, err := generateIdentity(hybrid)
	if err != nil {
		return "", err
	}

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("store: key file %s already exists; refusing to overwrite it", path)
	}
	if err != nil {
		return "", fmt.Errorf("store: key file: %w", err)
	}
	_, err = fmt.Fprintf(f, "# created: %s\n# public key: %s\n%s\n",
		time.Now().Format(time.RFC3339), recipient, secret)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("store: write key file %s: %w", path, err)
	}
	return recipient, nil
}

// generateIdentity makes a new identity, hybrid post-quantum or X25519
// (see WriteKeyFile), and returns it and its public key as text.
func generateIdentity(hybrid bool) (secret, recipient string, err error) {
	if hybrid {
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			return "", "", fmt.Errorf("store: generate key: %w", err)
		}
		return id.String(), id.Recipient().String(), nil
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", "", fmt.Errorf("store: generate key: %w", err)
	}
	return id.String(), id.Recipient().String(), nil
}

// Recipient returns the public key that the store seals to: "age1pq1…" for
// a hybrid identity, "age1…" for X25519. Giving it away is safe.
func (k *Keyring) Recipient() string { return k.public }

// seal encrypts a small plaintext (a data key; the doctor's probe) into an
// age file held in memory, wrapped to the first identity.
func (k *Keyring) seal(plaintext []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, k.recipient)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sealedToFirst reports whether the age file sealed opens with the first
// identity, the one that seals now.
func (k *Keyring) sealedToFirst(sealed []byte) bool {
	_, err := age.Decrypt(bytes.NewReader(sealed), k.identities[0])
	return err == nil
}

// open decrypts an age file made by seal.
func (k *Keyring) open(sealed []byte) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(sealed), k.identities...)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
