package smtp

import (
	"encoding/base64"
	"testing"
)

// TestAccountChangeTakesEffectAtOnce: a node that has just logged an
// account in refuses the old password as soon as another process (the
// CLI's `user passwd`, another node) changes it, and refuses the account
// as soon as it is removed. Whatever the node keeps to spare itself work
// per connection (the store's login cache) must not outlive the row.
func TestAccountChangeTakesEffectAtOnce(t *testing.T) {
	shared := newSharedDB(t)
	node := newTestServerOn(t, shared.open(), func(c *Config) { c.AllowInsecureAuth = true }, nil)
	cli := shared.open() // another process's handle on the same database
	login := func(password, code string) {
		t.Helper()
		c := dialRaw(t, node.addr, "client.test")
		c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+testAccount+"\x00"+password)), code)
		c.conn.Close()
	}
	const newPassword = "a brand new passphrase 456"
	login(testPassword, "235")
	login(testPassword, "235") // the second login is the one a cache would answer
	if err := cli.SetSenderPassword(t.Context(), testAccount, newPassword); err != nil {
		t.Fatal(err)
	}
	login(testPassword, "535")
	login(newPassword, "235")
	login(newPassword, "235")
	if err := cli.DeleteSender(t.Context(), testAccount); err != nil {
		t.Fatal(err)
	}
	login(newPassword, "535")
}
