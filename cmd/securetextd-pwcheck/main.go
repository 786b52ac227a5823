// Command securetextd-pwcheck judges the strength of a sender account's
// new password for `securetextd user add` and `securetextd user passwd`,
// which run it and pass the password on its standard input, never on its
// command line (where ps would show it).
//
// It is a program of its own so that the gateway does not carry its
// estimator: zxcvbn builds ranked dictionaries of common passwords, words
// and names when a program that links it starts, about 6.5 MiB of heap
// that every process of that program would keep for its whole life. The
// daemon sets no passwords, so it must not pay for them; only this short
// process does. Install it beside securetextd (`make build` builds both):
// securetextd looks for it in its own directory and nowhere else.
//
// The exchange is one JSON object on standard input,
//
//	{"password": "…", "address": "dr.jones@clinic.example", "org": "Riverside Clinic"}
//
// and the answer is the exit status: 0, strong enough; 1, too weak, with
// the reason on standard output in one line, in words for the operator who
// typed it; 2, the request could not be read, with the reason on standard
// error.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// request is what securetextd sends.
type request struct {
	Password string `json:"password"`
	Address  string `json:"address"`
	Org      string `json:"org"`
}

// maxRequest bounds the request read: a password, an address and a name.
const maxRequest = 64 << 10

func main() {
	os.Exit(serve(os.Stdin, os.Stdout, os.Stderr))
}

// serve reads one request from in, judges it and returns the exit status.
func serve(in io.Reader, out, errOut io.Writer) int {
	var req request
	dec := json.NewDecoder(io.LimitReader(in, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fmt.Fprintf(errOut, "securetextd-pwcheck: reading the request: %v\n", err)
		return 2
	}
	if err := checkSenderPassword(req.Password, req.Address, req.Org); err != nil {
		fmt.Fprintln(out, err)
		return 1
	}
	return 0
}
