package store

import (
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

func TestSenders(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	const pw = "correct horse battery"

	if err := db.CreateSender(ctx, "Dr.Who@Clinic.Example", pw); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSender(ctx, "nurse@clinic.example", "another good one"); err != nil {
		t.Fatal(err)
	}

	t.Run("create refuses", func(t *testing.T) {
		for _, tt := range []struct {
			address, password, code string
		}{
			{"dr.who@clinic.example", pw, securetextd.ECONFLICT},
			{"DR.WHO@clinic.example", pw, securetextd.ECONFLICT},
			{"new@clinic.example", "short", securetextd.EINVALID},
			{"new@clinic.example", "ééééééééé", securetextd.EINVALID}, // 9 characters, 18 bytes
			{"Dr Who <new@clinic.example>", pw, securetextd.EINVALID},
			{"<new@clinic.example>", pw, securetextd.EINVALID},
			{"not an address", pw, securetextd.EINVALID},
			{"", pw, securetextd.EINVALID},
		} {
			err := db.CreateSender(ctx, tt.address, tt.password)
			if securetextd.ErrorCode(err) != tt.code {
				t.Errorf("CreateSender(%q, %q) = %v, want %s", tt.address, tt.password, err, tt.code)
			}
		}
	})

	t.Run("authenticate", func(t *testing.T) {
		s, err := db.AuthenticateSender(ctx, "DR.WHO@clinic.example", pw)
		if err != nil {
			t.Fatal(err)
		}
		if s.Address != "dr.who@clinic.example" || s.Created.IsZero() {
			t.Errorf("sender %+v", s)
		}
		for _, tt := range []struct{ address, password string }{
			{"dr.who@clinic.example", pw + "!"},
			{"dr.who@clinic.example", ""},
			{"dr.who@clinic.example", "another good one"}, // someone else's
			{"unknown@clinic.example", pw},
			{"", ""},
		} {
			s, err := db.AuthenticateSender(ctx, tt.address, tt.password)
			if s != nil {
				t.Errorf("AuthenticateSender(%q, %q) returned a sender", tt.address, tt.password)
			}
			wantCode(t, err, securetextd.EUNAUTHORIZED)
			// The same message for both, so that it tells nothing.
			if securetextd.ErrorMessage(err) != "Wrong address or password." {
				t.Errorf("message %q", securetextd.ErrorMessage(err))
			}
		}
	})

	t.Run("list and count", func(t *testing.T) {
		list, err := db.ListSenders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Address != "dr.who@clinic.example" || list[1].Address != "nurse@clinic.example" {
			t.Errorf("ListSenders = %+v", list)
		}
		if n, err := db.CountSenders(ctx); err != nil || n != 2 {
			t.Errorf("CountSenders = %d, %v", n, err)
		}
	})

	t.Run("set password", func(t *testing.T) {
		if err := db.SetSenderPassword(ctx, "nurse@clinic.example", "a new password"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AuthenticateSender(ctx, "nurse@clinic.example", "another good one"); securetextd.ErrorCode(err) != securetextd.EUNAUTHORIZED {
			t.Errorf("old password: %v", err)
		}
		if _, err := db.AuthenticateSender(ctx, "nurse@clinic.example", "a new password"); err != nil {
			t.Errorf("new password: %v", err)
		}
		wantCode(t, db.SetSenderPassword(ctx, "nobody@clinic.example", "a new password"), securetextd.ENOTFOUND)
		wantCode(t, db.SetSenderPassword(ctx, "nurse@clinic.example", "short"), securetextd.EINVALID)
	})

	t.Run("delete", func(t *testing.T) {
		if err := db.DeleteSender(ctx, "NURSE@clinic.example"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.DeleteSender(ctx, "nurse@clinic.example"), securetextd.ENOTFOUND)
		if _, err := db.AuthenticateSender(ctx, "nurse@clinic.example", "a new password"); securetextd.ErrorCode(err) != securetextd.EUNAUTHORIZED {
			t.Errorf("deleted sender: %v", err)
		}
		if n, _ := db.CountSenders(ctx); n != 1 {
			t.Errorf("CountSenders = %d after delete", n)
		}
	})
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=7168,t=5,p=1$") {
		t.Errorf("hash %q is not in the expected PHC form", h)
	}
	if h2, _ := HashPassword("correct horse battery"); h2 == h {
		t.Error("two hashes of one password are equal: no salt?")
	}
	if ok, err := CheckPassword(h, "correct horse battery"); !ok || err != nil {
		t.Errorf("CheckPassword(right) = %v, %v", ok, err)
	}
	if ok, err := CheckPassword(h, "correct horse batterY"); ok || err != nil {
		t.Errorf("CheckPassword(wrong) = %v, %v", ok, err)
	}
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		strings.Replace(h, "m=7168", "m=99999999", 1),
		strings.Replace(h, "v=19", "v=16", 1),
	} {
		if ok, err := CheckPassword(bad, "x"); ok || err == nil {
			t.Errorf("CheckPassword(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}

// TestAuthCache: a second login with the same password skips the hash; a
// wrong password, a changed password or an expired entry does not pass
// through the cache.
func TestAuthCache(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	now := time.Now()
	db.Now = func() time.Time { return now }
	if err := db.CreateSender(ctx, "dr@clinic.example", "first password 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AuthenticateSender(ctx, "dr@clinic.example", "first password 1"); err != nil {
		t.Fatal(err)
	}
	var encoded string
	db.read.QueryRow(`SELECT password FROM senders WHERE address = 'dr@clinic.example'`).Scan(&encoded)
	if !db.auths.hit("dr@clinic.example", encoded, "first password 1", now) {
		t.Fatal("a successful login was not remembered")
	}
	if _, err := db.AuthenticateSender(ctx, "dr@clinic.example", "wrong password 1"); err == nil {
		t.Error("a wrong password passed")
	}
	if err := db.SetSenderPassword(ctx, "dr@clinic.example", "second password 2"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AuthenticateSender(ctx, "dr@clinic.example", "first password 1"); err == nil {
		t.Error("the old password passed through the cache after a change")
	}
	if _, err := db.AuthenticateSender(ctx, "dr@clinic.example", "second password 2"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(authCacheTTL + time.Second)
	db.read.QueryRow(`SELECT password FROM senders WHERE address = 'dr@clinic.example'`).Scan(&encoded)
	if db.auths.hit("dr@clinic.example", encoded, "second password 2", now) {
		t.Error("an expired entry hit")
	}
	if err := db.DeleteSender(ctx, "dr@clinic.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AuthenticateSender(ctx, "dr@clinic.example", "second password 2"); err == nil {
		t.Error("a deleted account logged in through the cache")
	}
}
