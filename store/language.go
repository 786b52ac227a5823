package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/securetextd/securetextd"
)

// accountLanguage returns the language a job for phone is written in:
// the one the account chose (recipients.language), else given (the
// sender's, or the page's that asked), else "" for the default. It is
// read inside the job's own transaction, so a choice made just before
// counts.
func accountLanguage(ctx context.Context, tx *sql.Tx, phone securetextd.Phone, given string) (string, error) {
	var chosen string
	err := tx.QueryRowContext(ctx, `SELECT language FROM recipients WHERE phone = ?`, phone).Scan(&chosen)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return given, nil
	case err != nil:
		return "", err
	case chosen != "":
		return chosen, nil
	}
	return given, nil
}

// RecipientLanguage returns the language phone's account chose, "" for
// none (or no account). The text and notice workers ask it when they
// send, so that the account's choice beats the sender's, even one made
// after the message was queued.
func (db *DB) RecipientLanguage(ctx context.Context, phone securetextd.Phone) (string, error) {
	var chosen string
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		chosen, err = accountLanguage(ctx, tx, phone, "")
		return err
	})
	return chosen, wrap("recipient language "+phone.Masked(), err)
}
