package store

import (
	"fmt"
	"io"

	"filippo.io/age"
)

// Files outside the database. What the gateway writes beside it (the
// outgoing mail that waits in mail.dir when no relay is set) is sealed
// like everything else: each file is a standard age file, encrypted to the
// key file's first identity, and opened with any identity of the key file.
// Without the key file such a file opens with nothing, and with it, `age
// -d -i KEYFILE` opens it as well as the gateway does.

// SealTo returns a writer that encrypts what is written to it into w, as
// one age file sealed to the first identity. The file is complete only
// once the writer is closed.
//
//	wc, err := keys.SealTo(f)
//	… write the plaintext to wc …
//	err = wc.Close()
func (k *Keyring) SealTo(w io.Writer) (io.WriteCloser, error) {
	wc, err := age.Encrypt(w, k.recipient)
	if err != nil {
		return nil, fmt.Errorf("store: seal file: %w", err)
	}
	return wc, nil
}

// OpenFile returns a reader of the plaintext of the age file r, which any
// identity of the key file may open. Each chunk of the file is
// authenticated as it is read: a file cut short or altered ends in an
// error, never in a silent end of file.
func (k *Keyring) OpenFile(r io.Reader) (io.Reader, error) {
	pr, err := age.Decrypt(r, k.identities...)
	if err != nil {
		return nil, fmt.Errorf("store: open file: %w", err)
	}
	return pr, nil
}

// Keyring returns the keys the store seals with, for the files the
// gateway writes beside the database.
func (db *DB) Keyring() *Keyring { return db.keys }
