package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

func TestLoadKeyFileRefusesLooseMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.txt")
	if _, err := WriteKeyFile(path, true); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyFile(path)
		if err == nil {
			t.Fatalf("mode %#o: loaded", mode)
		}
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "chmod 600") {
			t.Errorf("mode %#o: error %q should name the file and say chmod 600", mode, msg)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestKeyFileKinds(t *testing.T) {
	for _, tt := range []struct {
		name   string
		hybrid bool
		secret string
		public string
	}{
		{"hybrid", true, "AGE-SECRET-KEY-PQ-1", "age1pq1"},
		{"x25519", false, "AGE-SECRET-KEY-1", "age1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.txt")
			recipient, err := WriteKeyFile(path, tt.hybrid)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %#o, want 0600", fi.Mode().Perm())
			}
			text, _ := os.ReadFile(path)
			lines := strings.Split(strings.TrimSpace(string(text)), "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "# created: ") ||
				lines[1] != "# public key: "+recipient || !strings.HasPrefix(lines[2], tt.secret) {
				t.Errorf("key file:\n%s", text)
			}
			if !strings.HasPrefix(recipient, tt.public) || (!tt.hybrid && strings.HasPrefix(recipient, "age1pq1")) {
				t.Errorf("recipient %q", recipient)
			}

			k, err := LoadKeyFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if k.Recipient() != recipient {
				t.Errorf("Recipient() = %q, want %q", k.Recipient(), recipient)
			}
			sealed, err := k.seal([]byte("hello"))
			if err != nil {
				t.Fatal(err)
			}
			if plain, err := k.open(sealed); err != nil || string(plain) != "hello" {
				t.Errorf("open = %q, %v", plain, err)
			}
		})
	}
}

func TestWriteKeyFileRefusesOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.txt")
	if _, err := WriteKeyFile(path, false); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	_, err := WriteKeyFile(path, true)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second WriteKeyFile: %v, want an error saying the file exists", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the key file was changed")
	}
}

// TestKeyRotation checks that the first identity seals and all open: the
// old key, listed second, still opens what was sealed to it.
func TestKeyRotation(t *testing.T) {
	old, _ := age.GenerateX25519Identity()
	oldKeys, err := newKeyring([]age.Identity{old})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := oldKeys.seal([]byte("before rotation"))
	if err != nil {
		t.Fatal(err)
	}

	cur, _ := age.GenerateHybridIdentity()
	path := filepath.Join(t.TempDir(), "key.txt")
	text := "# new key first\n" + cur.String() + "\n\n# old key\n" + old.String() + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.Recipient() != cur.Recipient().String() {
		t.Errorf("seals to %q, want the first identity's %q", k.Recipient(), cur.Recipient())
	}
	if plain, err := k.open(sealed); err != nil || string(plain) != "before rotation" {
		t.Errorf("open with rotated keyring = %q, %v", plain, err)
	}
}

func TestLoadKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("AGE-SECRET-KEY-1NOTAKEY\n"), 0o600)
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	for _, path := range []string{bad, empty, filepath.Join(dir, "missing.txt")} {
		_, err := LoadKeyFile(path)
		if err == nil {
			t.Errorf("%s: loaded", path)
			continue
		}
		if strings.Contains(err.Error(), "NOTAKEY") {
			t.Errorf("%s: error quotes the key: %v", path, err)
		}
	}
}
