package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// tools are the programs the harness found or installed, with the
// versions the report names.
type tools struct {
	mailpit               string
	postfixVersion        string
	mailpitVersion        string
	wrkVersion, goVersion string
	sqliteVersion         string
	perf                  bool
}

// debianNeeds maps a program to the Debian package that brings it.
var debianNeeds = [][2]string{
	{"/usr/sbin/postfix", "postfix"},
	{"/usr/sbin/smtp-sink", "postfix"},
	{"/usr/sbin/saslpasswd2", "sasl2-bin"},
	{"/usr/lib/x86_64-linux-gnu/sasl2/libsasldb.so", "libsasl2-modules-db"},
	{"/usr/lib/x86_64-linux-gnu/sasl2/libplain.so", "libsasl2-modules"},
	{"wrk", "wrk"},
	// Its dbstat table names the pages a commit writes (the writes phase).
	{"sqlite3", "sqlite3"},
}

// ensureTools installs what is missing: Debian packages with apt-get, and
// Mailpit with go install into bench/.tools/bin, where it stays for the
// next run (building it takes a minute or two).
func ensureTools(root string) tools {
	var missing []string
	for _, n := range debianNeeds {
		if !have(n[0]) && !contains(missing, n[1]) {
			missing = append(missing, n[1])
		}
	}
	if len(missing) > 0 {
		logf("installing %s with apt-get", strings.Join(missing, " "))
		// No questions: postfix is "No configuration", as the harness runs
		// a private instance.
		sel := exec.Command("debconf-set-selections")
		sel.Stdin = strings.NewReader("postfix postfix/main_mailer_type select No configuration\n")
		sel.Run()
		update := exec.Command("apt-get", "update", "-q")
		update.Run()
		args := append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			fatalf("apt-get install %s: %v\n%s", strings.Join(missing, " "), err, out)
		}
	}

	var t tools
	gobin := filepath.Join(root, "bench", ".tools", "bin")
	t.mailpit = filepath.Join(gobin, "mailpit")
	if !have(t.mailpit) {
		logf("installing Mailpit into %s (once; it takes a minute or two)", gobin)
		cmd := exec.Command("go", "install", "github.com/axllent/mailpit@latest")
		cmd.Env = append(os.Environ(), "GOBIN="+gobin)
		if out, err := cmd.CombinedOutput(); err != nil {
			fatalf("go install mailpit: %v\n%s", err, out)
		}
	}
	// go install builds Mailpit without its version stamped in: read
	// the module's version from the binary.
	for line := range strings.Lines(output("go", "version", "-m", t.mailpit)) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/axllent/mailpit" {
			t.mailpitVersion = f[2]
		}
	}
	t.postfixVersion = output("postconf", "-d", "-h", "mail_version")
	out, _ := exec.Command("wrk", "-v").CombinedOutput() // exits 1
	t.wrkVersion = strings.Fields(firstLine(string(out)) + " ?")[1]
	t.goVersion = output("go", "env", "GOVERSION")
	t.sqliteVersion = sqliteVersion()
	t.perf = have("perf") && exec.Command("perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true").Run() == nil
	return t
}

func have(name string) bool {
	if strings.HasPrefix(name, "/") {
		_, err := os.Stat(name)
		return err == nil
	}
	_, err := exec.LookPath(name)
	return err == nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}
