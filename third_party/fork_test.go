package thirdparty

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/securetextd/securetextd/internal/need"
)

// TestGoSMTPFork proves that go-smtp/ is the go-smtp release that
// go-smtp/PATCHES.md names plus docs/go-smtp-*.patch, and nothing else:
// it downloads the release through the module proxy (or finds it in the
// module cache), checks it against the hash PATCHES.md records, applies
// the patches in name order to a copy with patch(1), and compares the two
// trees file by file. A file changed by hand, a patch edited but not
// applied (or applied but not kept), a file added or left out: each is
// named.
func TestGoSMTPFork(t *testing.T) {
	patch := need.Program(t, "patch", "patch")
	notes, err := os.ReadFile("go-smtp/PATCHES.md")
	if err != nil {
		t.Fatal(err)
	}
	// The release, as a go.sum line in PATCHES.md.
	m := regexp.MustCompile(`(?m)^(github\.com/emersion/go-smtp) (v\S+) (h1:\S+)$`).FindSubmatch(notes)
	if m == nil {
		t.Fatal("go-smtp/PATCHES.md has no go.sum line for the release it carries")
	}
	module, version, sum := string(m[1]), string(m[2]), string(m[3])

	// The root module uses the copy in place of that release.
	list := goCmd(t, ".", "list", "-m", "-f", "{{.Version}} {{with .Replace}}{{.Path}}{{end}}", module)
	if want := version + " ./third_party/go-smtp"; strings.TrimSpace(list) != want {
		t.Errorf("go.mod: %s is %q, want %q: that release, replaced by the copy", module, strings.TrimSpace(list), want)
	}

	pristine := download(t, module, version, sum)
	patched := filepath.Join(t.TempDir(), "go-smtp")
	if err := os.CopyFS(patched, os.DirFS(pristine)); err != nil {
		t.Fatal(err)
	}
	patches, err := filepath.Glob("../docs/go-smtp-*.patch")
	if err != nil || len(patches) == 0 {
		t.Fatalf("no docs/go-smtp-*.patch (%v)", err)
	}
	for _, p := range patches {
		name := filepath.Base(p)
		if !bytes.Contains(notes, []byte("docs/"+name)) {
			t.Errorf("go-smtp/PATCHES.md does not list docs/%s", name)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(patch, "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-i", abs)
		cmd.Dir = patched
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docs/%s does not apply to %s %s: %v\n%s", name, module, version, err, out)
		}
	}

	if diff := compareTrees(t, patched, "go-smtp", "PATCHES.md"); len(diff) > 0 {
		t.Errorf("third_party/go-smtp is not %s %s plus docs/go-smtp-*.patch:\n\t%s",
			module, version, strings.Join(diff, "\n\t"))
	}
}

// download returns the directory of module@version in the module cache,
// downloading it first if need be, after checking that its hash is sum.
// It runs outside any module, so that go.mod and go.sum are not touched.
func download(t *testing.T, module, version, sum string) string {
	t.Helper()
	out := goCmd(t, t.TempDir(), "mod", "download", "-json", module+"@"+version)
	var got struct{ Dir, Sum, Error string }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}
	if got.Sum != sum {
		t.Fatalf("%s@%s: the module proxy's hash is %q, PATCHES.md's is %q", module, version, got.Sum, sum)
	}
	return got.Dir
}

// goCmd runs the go command in dir and returns its standard output.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// compareTrees lists how the regular files under got differ from those
// under want, by path relative to each, leaving out the names in except.
func compareTrees(t *testing.T, want, got string, except ...string) []string {
	t.Helper()
	w, g := files(t, want), files(t, got)
	for _, name := range except {
		delete(g, name)
	}
	var diff []string
	for name, content := range w {
		switch gc, ok := g[name]; {
		case !ok:
			diff = append(diff, "missing: "+name)
		case !bytes.Equal(gc, content):
			diff = append(diff, "differs: "+name)
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			diff = append(diff, "extra:   "+name)
		}
	}
	slices.Sort(diff)
	return diff
}

// files reads every regular file under dir, by slash-separated path.
func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := make(map[string][]byte)
	err := fs.WalkDir(os.DirFS(dir), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		m[path] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
