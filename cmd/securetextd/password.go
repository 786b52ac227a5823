package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pwcheckName is the program that judges a sender's new password
// (cmd/securetextd-pwcheck): 12 characters and a zxcvbn score of 3, with
// the account's address and the organization's name counted as the first
// guesses. It is a program of its own because the estimator's dictionaries
// take 6.5 MiB of heap in every process that links them, and the daemon,
// which sets no passwords, must not carry them; TestDaemonLeavesEstimatorOut
// keeps it so.
const pwcheckName = "securetextd-pwcheck"

// pwcheckTimeout bounds one judgement, which takes milliseconds.
const pwcheckTimeout = 30 * time.Second

// findPWCheck returns the path of securetextd-pwcheck: beside this
// program, where `make build` and `go install ./cmd/...` put it. Nowhere
// else is looked at: the program is given passwords, so a PATH that
// reaches a directory someone else can write must not choose it.
func defaultFindPWCheck() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding %s: %w", pwcheckName, err)
	}
	path := filepath.Join(filepath.Dir(exe), pwcheckName)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s, which judges the strength of new passwords, is not installed beside %s: "+
			"install both programs (make build builds them into bin/)", pwcheckName, exe)
	}
	return path, nil
}

// findPWCheck is defaultFindPWCheck; tests, whose binary has no
// securetextd-pwcheck beside it, replace it.
var findPWCheck = defaultFindPWCheck

// checkSenderPassword returns why password is too weak for the sender
// account address of org, in words for the operator who typed it, or nil.
// `user add` and `user passwd` ask it; the demo account's password is
// generated (rand.Text, 130 random bits) and needs no judge. The password
// goes to securetextd-pwcheck on its standard input, never in its
// arguments.
func checkSenderPassword(password, address, org string) error {
	path, err := findPWCheck()
	if err != nil {
		return err
	}
	req, err := json.Marshal(map[string]string{"password": password, "address": address, "org": org})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), pwcheckTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Stdin = bytes.NewReader(req)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && exit.ExitCode() == 1 && out.Len() > 0:
		return errors.New(strings.TrimSpace(out.String()))
	}
	if msg := strings.TrimSpace(errOut.String()); msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	return fmt.Errorf("judging the password with %s: %w", path, err)
}
