package pack

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// release packs the same tree for amd64 and arm64/v8 with labels, joins the two layouts into one
// index layout, and returns that layout's top index.
func release(t *testing.T, src, out string) v1.ImageIndex {
	t.Helper()
	labels := map[string]string{"org.opencontainers.image.version": "1.2.3"}
	var dirs []string
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		var b Builder
		if err := b.AddTree(filepath.Join(src, "lib"), "/app/lib"); err != nil {
			t.Fatal(err)
		}
		img, err := b.ImageWith(v1.Config{Labels: labels}, Meta{Platform: &p, Created: time.Unix(1700000000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), p.Architecture)
		if err := WriteLayout(dir, img); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	idx, err := JoinLayouts(dirs, labels)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteIndexLayout(out, name.MustParseReference("example.test/op:1.2.3").(name.Tag), idx); err != nil {
		t.Fatal(err)
	}
	top, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "1.2.3" ||
		m.Manifests[0].Annotations["io.containerd.image.name"] != "example.test/op:1.2.3" {
		t.Fatalf("index.json should name one index by its ref, got %+v", m.Manifests)
	}
	inner, err := top.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return inner
}

func TestReleaseIndexHasBothPlatformsLabelsAndStableDigest(t *testing.T) {
	src := tree(t)
	idx := release(t, src, filepath.Join(t.TempDir(), "a"))
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Annotations["org.opencontainers.image.version"] != "1.2.3" {
		t.Fatalf("index annotations %v", m.Annotations)
	}
	var platforms []string
	for _, d := range m.Manifests {
		platforms = append(platforms, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Platform().String() != d.Platform.String() {
			t.Fatalf("config says %s, index says %s", cf.Platform(), d.Platform)
		}
		if cf.Config.Labels["org.opencontainers.image.version"] != "1.2.3" || !cf.Created.Equal(time.Unix(1700000000, 0)) {
			t.Fatalf("%s: labels %v, created %v", d.Platform, cf.Config.Labels, cf.Created)
		}
	}
	if len(platforms) != 2 || platforms[0] != "linux/amd64" || platforms[1] != "linux/arm64/v8" {
		t.Fatalf("platforms %v", platforms)
	}

	// The same inputs, copied elsewhere later, give the same index digest.
	again := release(t, tree(t), filepath.Join(t.TempDir(), "b"))
	d1, _ := idx.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Fatalf("index digests differ: %s vs %s", d1, d2)
	}
	// And a changed file changes it.
	if err := os.WriteFile(filepath.Join(src, "lib", "sub", "b.js"), []byte("changed"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed := release(t, src, filepath.Join(t.TempDir(), "c"))
	if d3, _ := changed.Digest(); d3 == d1 {
		t.Fatal("a changed file kept the index digest")
	}
}
