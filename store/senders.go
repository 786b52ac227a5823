package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"runtime"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/securetextd/securetextd"
)

// Password hashing: argon2id with one of OWASP's equivalent parameter sets
// (7 MiB, five passes, one lane), stored in the PHC string format
//
//	$argon2id$v=19$m=7168,t=5,p=1$<salt>$<hash>
//
// so that the parameters can be raised later without breaking old hashes.
// OWASP rates 7 MiB × 5 passes as strong as 19 MiB × 2; the smaller memory
// keeps the daemon's footprint flat when logins and a 100 MiB upload come
// together (a 19 MiB hash made the Go heap's goal jump by 40 MiB).
const (
	argonMemory  = 7 * 1024 // KiB
	argonTime    = 5
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16

	// MinPasswordLen is the shortest password accepted, in characters.
	MinPasswordLen = 10
)

// HashPassword hashes a password with argon2id and a fresh random salt, in
// the PHC string format. It takes about as long, and as much memory (7 MiB),
// as a check.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt) // never fails
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches encoded, a hash made by
// HashPassword (with these or other argon2id parameters). The comparison
// takes the same time wherever the hashes differ. An error means encoded
// is not a hash this package can read.
func CheckPassword(encoded, password string) (bool, error) {
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return false, errors.New("store: check password: not an argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(f[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("store: check password: unsupported argon2 version")
	}
	var memory, time uint32
	var threads uint8
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &memory, &time, &threads); err != nil {
		return false, fmt.Errorf("store: check password: bad parameters: %w", err)
	}
	// Bound what a tampered row could make us spend.
	if memory < 8 || memory > 1<<21 || time < 1 || time > 16 || threads < 1 {
		return false, errors.New("store: check password: parameters out of range")
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(f[4])
	if err != nil {
		return false, fmt.Errorf("store: check password: bad salt: %w", err)
	}
	want, err := b64.DecodeString(f[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, errors.New("store: check password: bad hash")
	}
	got := argon2.IDKey([]byte(password), salt, time, memory, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// hash runs fn while holding one of the DB's hashing slots, so that a burst
// of logins waits instead of taking 7 MiB each at once.
//
// Once fn is done, a garbage collection frees its 7 MiB at once. Left to
// the pacer, a collection that ran during the hash, with those 7 MiB
// live, would set the heap's next goal at twice that (the daemon's heap
// grew from 12 to 20 MiB after one AUTH), and a message arriving on the
// logged-in session would fill it: the peak resident memory is where the
// heap goal went. Collected now, the next goal is twice what the daemon
// keeps, and the message reuses the hash's pages. A collection of a heap
// of a few MiB costs a millisecond or two, next to the hash's tens.
func (db *DB) hash(ctx context.Context, fn func()) error {
	select {
	case db.hashing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.hashing }()
	fn()
	runtime.GC()
	return nil
}

// newPasswordHash checks that password is long enough (an EINVALID error
// otherwise) and hashes it, holding a hashing slot.
func (db *DB) newPasswordHash(ctx context.Context, password string) (string, error) {
	if err := checkNewPassword(password); err != nil {
		return "", err
	}
	var encoded string
	var err error
	if err := db.hash(ctx, func() { encoded, err = HashPassword(password) }); err != nil {
		return "", err
	}
	return encoded, err
}

// verifyPassword checks password against encoded, a stored hash, holding a
// hashing slot. An account that does not exist (known false) costs the
// same: password is hashed all the same, with a dummy salt, and false is
// returned. So timing does not tell which accounts exist.
func (db *DB) verifyPassword(ctx context.Context, encoded string, known bool, password string) (bool, error) {
	var ok bool
	var checkErr error
	err := db.hash(ctx, func() {
		if !known {
			argon2.IDKey([]byte(password), make([]byte, argonSaltLen), argonTime, argonMemory, argonThreads, argonKeyLen)
			return
		}
		ok, checkErr = CheckPassword(encoded, password)
	})
	if err != nil {
		return false, err
	}
	return ok, checkErr
}

// CreateSender creates an account that may submit mail after SMTP AUTH.
// address must be a bare address ("dr.who@clinic.example", no display name);
// it is stored lowercased. The password needs MinPasswordLen characters.
// It is an ECONFLICT error if the account exists.
func (db *DB) CreateSender(ctx context.Context, address, password string) error {
	address, err := parseSenderAddress(address)
	if err != nil {
		return err
	}
	encoded, err := db.newPasswordHash(ctx, password)
	if err != nil {
		return wrap("create sender", err)
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM senders WHERE address = ?)`, address).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return securetextd.Errorf(securetextd.ECONFLICT, "The sender %s exists already.", address)
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO senders (address, password, created) VALUES (?, ?, ?)`,
			address, encoded, nanos(db.Now()))
		return err
	})
	return wrap("create sender", err)
}

// SetSenderPassword replaces a sender's password. It is an ENOTFOUND error
// if there is no such sender.
func (db *DB) SetSenderPassword(ctx context.Context, address, password string) error {
	address = normalizeAddress(address)
	encoded, err := db.newPasswordHash(ctx, password)
	if err != nil {
		return wrap("set sender password", err)
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE senders SET password = ? WHERE address = ?`, encoded, address)
		if err != nil {
			return err
		}
		if err := mustAffectOne(res, "No sender %s.", address); err != nil {
			return err
		}
		// The console's sign-ins with the old password end (console.go).
		return endConsoleSessions(ctx, tx, address)
	})
	return wrap("set sender password", err)
}

// DeleteSender deletes a sender account. It is an ENOTFOUND error if there
// is no such sender. Messages the sender sent are kept.
func (db *DB) DeleteSender(ctx context.Context, address string) error {
	address = normalizeAddress(address)
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM senders WHERE address = ?`, address)
		if err != nil {
			return err
		}
		return mustAffectOne(res, "No sender %s.", address)
	})
	return wrap("delete sender", err)
}

// ListSenders returns the sender accounts, by address.
func (db *DB) ListSenders(ctx context.Context) ([]securetextd.Sender, error) {
	var senders []securetextd.Sender
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT address, created FROM senders ORDER BY address`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s securetextd.Sender
			var created int64
			if err := rows.Scan(&s.Address, &created); err != nil {
				return err
			}
			s.Created = fromNanos(created)
			senders = append(senders, s)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: list senders: %w", err)
	}
	return senders, nil
}

// CountSenders returns the number of sender accounts.
func (db *DB) CountSenders(ctx context.Context) (int, error) {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM senders`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count senders: %w", err)
	}
	return n, nil
}

// AuthenticateSender checks a sender's address and password. Both an
// unknown address and a wrong password get the same EUNAUTHORIZED error,
// after the same time: for an unknown address a hash is computed all the
// same, so that timing does not tell which addresses have accounts.
func (db *DB) AuthenticateSender(ctx context.Context, address, password string) (*securetextd.Sender, error) {
	address = normalizeAddress(address)
	encoded, created, known, err := db.senderPassword(ctx, address)
	if err != nil {
		return nil, fmt.Errorf("store: authenticate sender: %w", err)
	}

	now := db.Now()
	if known && db.auths.hit(address, encoded, password, now) {
		return &securetextd.Sender{Address: address, Created: fromNanos(created)}, nil
	}
	ok, err := db.verifyPassword(ctx, encoded, known, password)
	if err != nil {
		return nil, fmt.Errorf("store: authenticate sender %s: %w", address, err)
	}
	if !ok {
		return nil, securetextd.Errorf(securetextd.EUNAUTHORIZED, "Wrong address or password.")
	}
	db.auths.remember(address, encoded, password, now)
	return &securetextd.Sender{Address: address, Created: fromNanos(created)}, nil
}

// RememberedSender returns the sender account address, if password is
// the one it logged in with lately: a login that AuthenticateSender
// remembers (authcache.go), checked without hashing. It returns nil when
// the login is not remembered, whether the password is wrong or only
// not checked lately: AuthenticateSender then tells. The SMTP listener
// asks it when its throttle would refuse a check (smtp/throttle.go),
// since this costs no hash and no guess can pass it.
func (db *DB) RememberedSender(ctx context.Context, address, password string) (*securetextd.Sender, error) {
	address = normalizeAddress(address)
	encoded, created, known, err := db.senderPassword(ctx, address)
	if err != nil {
		return nil, fmt.Errorf("store: remembered sender: %w", err)
	}
	if !known || !db.auths.hit(address, encoded, password, db.Now()) {
		return nil, nil
	}
	return &securetextd.Sender{Address: address, Created: fromNanos(created)}, nil
}

// senderPassword returns the stored password hash of sender account
// address (normalized) and when it was made; known is false when there
// is no such account.
func (db *DB) senderPassword(ctx context.Context, address string) (encoded string, created int64, known bool, err error) {
	err = db.read.QueryRowContext(ctx,
		`SELECT password, created FROM senders WHERE address = ?`, address).Scan(&encoded, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, false, nil
	}
	return encoded, created, err == nil, err
}

// parseSenderAddress checks that s is a bare email address and returns it
// lowercased.
func parseSenderAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != strings.TrimSpace(s) {
		return "", securetextd.Errorf(securetextd.EINVALID,
			"%q is not an email address: give the bare address, as in dr.who@clinic.example", s)
	}
	return strings.ToLower(a.Address), nil
}

// normalizeAddress is the form addresses are stored and looked up in.
func normalizeAddress(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// checkNewPassword refuses passwords too short to resist guessing.
func checkNewPassword(password string) error {
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return securetextd.Errorf(securetextd.EINVALID, "The password needs at least %d characters.", MinPasswordLen)
	}
	return nil
}

// mustAffectOne returns an ENOTFOUND error, with the given message, unless
// res changed exactly one row.
func mustAffectOne(res sql.Result, format string, args ...any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return securetextd.Errorf(securetextd.ENOTFOUND, format, args...)
	}
	return nil
}
