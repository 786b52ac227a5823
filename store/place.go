package store

import (
	"errors"
	"fmt"
	"strconv"
)

// Every sealed value is bound to its place. Someone who can write the
// database file but has no key can still move ciphertext around: put one
// message's manifest in another message's row, a job's payload (a link
// token) in another job, their own recovery address in a patient's
// account, one part's content under another message. Each of these would
// open, as the other value, unless the value says where it belongs. So
// the place a value was sealed for is part of what its AEAD authenticates:
//
//   - a small value (envelope.go) binds its table, column and row key;
//   - a part's file key (datakey.go) binds its message, its index in the
//     message, and its blob;
//   - a data key binds its row in data_keys.
//
// Opening checks the place the value names against the place it was read
// from, and says "sealed value belongs to another row" when they differ,
// before any decryption; a value that names the right place but does not
// open was damaged or forged. The place is not secret: the row it names
// is right there in the database.
//
// Ids are assigned before sealing: a value is sealed in the transaction
// that inserts its row, with the row's id reserved in that transaction
// (the writer holds SQLite's write lock, so max(id) + 1 is the row's).

// A place is where a small sealed value is kept: a column of a table, and
// the key of its row (an id in decimal, or a phone number).
type place struct {
	table, column, row string
}

// rowID is the row key of an integer primary key.
func rowID(id int64) string { return strconv.FormatInt(id, 10) }

// Places of the sealed columns.
func manifestPlace(message int64) place { return place{"messages", "manifest", rowID(message)} }
func payloadPlace(job int64) place      { return place{"jobs", "payload", rowID(job)} }
func dataKeyPlace(id int64) place       { return place{"data_keys", "sealed", rowID(id)} }

func recoveryPlace(phone string) place { return place{"recipients", "recovery_email", phone} }

// appendTo appends the canonical encoding of p: table, column and row,
// each as a length byte and its bytes. Every part is far shorter than 256
// bytes (identifiers of the schema; an id or a phone number).
func (p place) appendTo(b []byte) []byte {
	for _, s := range [...]string{p.table, p.column, p.row} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return b
}

// encodedLen is the length of p's encoding.
func (p place) encodedLen() int { return 3 + len(p.table) + len(p.column) + len(p.row) }

// parsePlace reads an encoding made by appendTo.
func parsePlace(b []byte) (place, bool) {
	var s [3]string
	for i := range s {
		if len(b) == 0 || len(b) < 1+int(b[0]) {
			return place{}, false
		}
		s[i], b = string(b[1:1+b[0]]), b[1+b[0]:]
	}
	return place{s[0], s[1], s[2]}, len(b) == 0
}

var (
	// errMisplaced is what opening a value sealed for another place says.
	errMisplaced = errors.New("sealed value belongs to another row")
	// errUnbound is what opening a value in a form from before binding
	// says, once the migration that binds them has finished.
	errUnbound = errors.New("sealed value is not bound to its place")
	// errForged is what opening a value that names its place but does
	// not open says.
	errForged = errors.New("sealed value does not open (damaged or tampered with)")
)

// misplaced returns errMisplaced for a value that says it was sealed for
// encoded instead of want, naming the column it belongs to when that is
// another. Row keys are not named: one may be a phone number.
func misplaced(encoded []byte, want place) error {
	got, ok := parsePlace(encoded)
	if ok && (got.table != want.table || got.column != want.column) {
		return fmt.Errorf("%w (it was sealed for %s.%s)", errMisplaced, got.table, got.column)
	}
	return errMisplaced
}
