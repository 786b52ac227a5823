package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/securetextd/securetextd/internal/need"
)

// TestMakeBuildSaysFirstBuildIsSlow: the first `make run` (or `make
// build`) compiles SQLite's C code, minutes on a slow machine with nothing
// printed by go build meanwhile; the Makefile says so first, and only
// then. `go list` is the real toolchain's, with an empty build cache as on
// a fresh machine; `go build` itself is left out, so that the test does
// not spend those minutes, and so is `go list` where the test plays a
// warm cache (FAKE_WARM).
func TestMakeBuildSaysFirstBuildIsSlow(t *testing.T) {
	makePath := need.Program(t, "make", "make")
	goPath, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	fakeGo := filepath.Join(t.TempDir(), "go")
	script := "#!/bin/sh\n" +
		"if [ \"$1\" = list ] && [ -n \"$FAKE_WARM\" ]; then echo false; exit 0; fi\n" +
		"if [ \"$1\" = list ]; then exec " + goPath + " \"$@\"; fi\n" +
		"echo \"(go $1)\"\n"
	if err := os.WriteFile(fakeGo, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	build := func(env ...string) string {
		t.Helper()
		cmd := exec.Command(makePath, "--no-print-directory", "-s", "build", "GO="+fakeGo)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make build: %v\n%s", err, out)
		}
		return string(out)
	}

	want := "building bin/securetextd: the first build compiles SQLite (C code, through cgo),\n" +
		"which takes a few minutes on a slow machine, with nothing printed meanwhile; later builds take seconds\n" +
		"(go build)\n"
	if got := build("GOCACHE=" + t.TempDir()); got != want {
		t.Errorf("make build with a cold cache printed:\n%s\nwant:\n%s", got, want)
	}
	if got := build("FAKE_WARM=1"); got != "(go build)\n" {
		t.Errorf("make build with a warm cache printed:\n%s\nwant only the build", got)
	}
}
