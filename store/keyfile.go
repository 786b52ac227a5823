package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// AddKeyToFile generates a new identity and puts it first in the existing
// key file at path, the old identities after it: the store then seals to
// the new identity and still opens everything sealed to the old ones. The
// file is replaced atomically (a new file, synced, renamed over the old
// one), keeping mode 0600. It returns the new public key.
//
// Rotation is: AddKeyToFile (securetextd keygen on the existing file);
// restart the gateway so that it seals to the new identity; Rekey
// (securetextd rekey); then remove the old identities from the file.
func AddKeyToFile(path string, hybrid bool) (recipient string, err error) {
	// Load it as the store would: refuses a file others can read, or one
	// that holds no identity.
	if _, err := LoadKeyFile(path); err != nil {
		return "", err
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("store: key file: %w", err)
	}
	secret, recipient, err := generateIdentity(hybrid)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# created: %s\n# public key: %s\n# This identity seals; those below only open, until `securetextd rekey` has run.\n%s\n\n",
		time.Now().Format(time.RFC3339), recipient, secret)
	b.Write(old)

	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyfile-*")
	if err != nil {
		return "", fmt.Errorf("store: key file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(b.Bytes())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("store: write key file %s: %w", path, err)
	}
	syncFile(filepath.Dir(path))
	return recipient, nil
}
