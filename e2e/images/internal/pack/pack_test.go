package pack

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func tree(t *testing.T) string {
	dir := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "lib", "sub"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "lib", "sub", "b.js"), []byte("b"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "lib", "run"), []byte("#!"), 0o700))
	must(os.Symlink("sub/b.js", filepath.Join(dir, "lib", "link.js")))
	return dir
}

func build(t *testing.T, dir string) (*Builder, v1.Hash) {
	var b Builder
	if err := b.AddTree(filepath.Join(dir, "lib"), "/app/lib"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddFile(filepath.Join(dir, "lib", "run"), "/bin/run", 0o555); err != nil {
		t.Fatal(err)
	}
	img, err := b.Image(v1.Config{Entrypoint: []string{"/bin/run"}, User: "65532:65532"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return &b, d
}

func TestSameInputsSameDigestAndSaneEntries(t *testing.T) {
	dir := tree(t)
	b, d1 := build(t, dir)
	// A second copy of the tree, made later elsewhere, must give the same image.
	_, d2 := build(t, tree(t))
	if d1 != d2 {
		t.Fatalf("digests differ: %s vs %s", d1, d2)
	}

	var buf bytes.Buffer
	if err := b.WriteTar(&buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	got := map[string]*tar.Header{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name], order = h, append(order, h.Name)
	}
	want := []string{"app/", "app/lib/", "app/lib/link.js", "app/lib/run", "app/lib/sub/", "app/lib/sub/b.js", "bin/", "bin/run"}
	if len(order) != len(want) {
		t.Fatalf("entries %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("entries %v, want %v", order, want)
		}
	}
	for name, mode := range map[string]int64{"app/lib/sub/": 0o755, "app/lib/sub/b.js": 0o644, "app/lib/run": 0o755, "bin/run": 0o555} {
		if h := got[name]; h.Mode != mode || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 {
			t.Errorf("%s: mode %o uid %d gid %d mtime %v", name, h.Mode, h.Uid, h.Gid, h.ModTime)
		}
	}
	if h := got["app/lib/link.js"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "sub/b.js" {
		t.Errorf("link.js: type %c target %q, want a symlink to sub/b.js", h.Typeflag, h.Linkname)
	}
}
