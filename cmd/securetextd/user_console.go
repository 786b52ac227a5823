package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/securetextd/securetextd"
)

// The console's side of `securetextd user`: admin accounts, which see
// every sender's messages in the console, and resetting an account's
// second factor when its phone is lost.
//
//	securetextd user admin ADDRESS on|off
//	securetextd user totp reset ADDRESS --by NAME

// runUserConsole runs `user admin` and `user totp`.
func runUserConsole(sub string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	by := fs.String("by", "", "who resets the second factor (for the audit trail)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	var address string
	var on bool
	switch sub {
	case "admin":
		if len(pos) != 2 || (pos[1] != "on" && pos[1] != "off") || *by != "" {
			return errUsage{"user admin needs ADDRESS and on or off"}
		}
		address, on = pos[0], pos[1] == "on"
	case "totp":
		if len(pos) != 2 || pos[0] != "reset" {
			return errUsage{"user totp needs reset ADDRESS --by NAME"}
		}
		if strings.TrimSpace(*by) == "" || len(*by) > 64 {
			return errUsage{"user totp reset needs --by NAME: who resets it, for the audit trail"}
		}
		address = pos[1]
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	db, err := openStore(cfg, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if sub == "admin" {
		if err := db.SetAdmin(operator(ctx), address, on); err != nil {
			return userError(err)
		}
		fmt.Fprintf(stdout, "%s is %s\n", address, map[bool]string{true: "an admin", false: "not an admin"}[on])
		return nil
	}
	who := securetextd.WithOrigin(ctx, securetextd.Origin{Actor: "operator:" + strings.TrimSpace(*by), Client: "cli"})
	if err := db.ResetTOTP(who, address); err != nil {
		return userError(err)
	}
	fmt.Fprintf(stdout, "cleared the second factor of %s: it enrols again at its next sign-in to the console\n", address)
	return nil
}
