// Package pack builds a single-layer image from local files, deterministically: entries sorted by
// path, fixed timestamps, everything owned by root and readable by all, so the same inputs give
// the same layer and config digests.
package pack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is every timestamp in the image; a fixed value is what makes rebuilds bit-identical.
var epoch = time.Unix(0, 0).UTC()

type kind int

const (
	kindDir kind = iota
	kindFile
	kindSymlink
)

type entry struct {
	kind   kind
	mode   int64
	src    string // kindFile: file to copy
	target string // kindSymlink
}

// Builder collects entries keyed by their path inside the image (no leading slash).
// A later entry for the same path replaces an earlier one.
type Builder struct {
	entries map[string]entry
}

// ParseFileSpec reads SRC:DST[:MODE]; mode is octal, -1 when absent.
func ParseFileSpec(spec string) (src, dst string, mode int64, err error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", "", 0, fmt.Errorf("--file %q: want SRC:DST[:MODE]", spec)
	}
	mode = -1
	if len(parts) == 3 {
		mode, err = strconv.ParseInt(parts[2], 8, 32)
		if err != nil || mode < 0 || mode > 07777 {
			return "", "", 0, fmt.Errorf("--file %q: MODE must be octal, e.g. 0755", spec)
		}
	}
	return parts[0], parts[1], mode, nil
}

func clean(dst string) (string, error) {
	p := strings.TrimPrefix(path.Clean("/"+dst), "/")
	if p == "" {
		return "", fmt.Errorf("destination %q is the root", dst)
	}
	return p, nil
}

func (b *Builder) put(p string, e entry) {
	if b.entries == nil {
		b.entries = map[string]entry{}
	}
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		if _, ok := b.entries[dir]; !ok {
			b.entries[dir] = entry{kind: kindDir, mode: 0o755}
		}
	}
	b.entries[p] = e
}

// defaultMode keeps only "is it executable": owners and umasks on the build host must not leak
// into the image, and files must stay readable by a non-root user.
func defaultMode(m fs.FileMode) int64 {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// AddFile copies one file (following symlinks at SRC) to DST; mode < 0 means the default.
func (b *Builder) AddFile(src, dst string, mode int64) error {
	p, err := clean(dst)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	if mode < 0 {
		mode = defaultMode(st.Mode())
	}
	b.put(p, entry{kind: kindFile, mode: mode, src: src})
	return nil
}

// AddDir adds an empty directory (e.g. the working directory).
func (b *Builder) AddDir(dst string) {
	if p, err := clean(dst); err == nil {
		if _, ok := b.entries[p]; !ok {
			b.put(p, entry{kind: kindDir, mode: 0o755})
		}
	}
}

// AddDirMode adds a directory with an explicit mode (e.g. 01777 for /tmp).
func (b *Builder) AddDirMode(dst string, mode int64) error {
	p, err := clean(dst)
	if err != nil {
		return err
	}
	b.put(p, entry{kind: kindDir, mode: mode})
	return nil
}

// AddTree copies the tree at SRC to DST; symlinks inside it are kept as symlinks.
func (b *Builder) AddTree(src, dst string) error {
	root, err := clean(dst)
	if err != nil {
		return err
	}
	return filepath.WalkDir(src, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, file)
		if err != nil {
			return err
		}
		p := root
		if rel != "." {
			p = path.Join(root, filepath.ToSlash(rel))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(file)
			if err != nil {
				return err
			}
			b.put(p, entry{kind: kindSymlink, mode: 0o777, target: target})
		case info.IsDir():
			b.put(p, entry{kind: kindDir, mode: 0o755})
		case info.Mode().IsRegular():
			b.put(p, entry{kind: kindFile, mode: defaultMode(info.Mode()), src: file})
		default:
			return fmt.Errorf("%s: unsupported file type %s", file, info.Mode().Type())
		}
		return nil
	})
}

// WriteTar writes the layer as an uncompressed tar, entries sorted by path.
func (b *Builder) WriteTar(w io.Writer) error {
	paths := make([]string, 0, len(b.entries))
	for p := range b.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		e := b.entries[p]
		h := &tar.Header{Name: p, Mode: e.mode, ModTime: epoch, Uid: 0, Gid: 0, Format: tar.FormatPAX}
		switch e.kind {
		case kindDir:
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
		case kindSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.target
		case kindFile:
			h.Typeflag = tar.TypeReg
		}
		if e.kind != kindFile {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		if err := writeFile(tw, h, e.src); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, h *tar.Header, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h.Size = st.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if n, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	} else if n != h.Size {
		return fmt.Errorf("%s: changed while packing", src)
	}
	return nil
}

// Meta is what an image says about itself beyond its config: the platform it runs on (default:
// this host's architecture) and when it was made (default: the epoch). Release builds set Created
// from SOURCE_DATE_EPOCH so a rebuild of the same commit has the same digest.
type Meta struct {
	Platform *v1.Platform
	Created  time.Time
}

// Image returns a linux image of this host's architecture with one layer and the given config.
func (b *Builder) Image(cfg v1.Config) (v1.Image, error) {
	return b.ImageWith(cfg, Meta{})
}

// ImageWith returns a single-layer OCI image (OCI manifest, config and layer media types).
// The layer is compressed once, in memory; its digest is then stable and cheap to recompute.
// File timestamps stay at the epoch whatever Meta.Created says: only the config carries it.
func (b *Builder) ImageWith(cfg v1.Config, meta Meta) (v1.Image, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if err := b.WriteTar(zw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	data := gz.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if meta.Platform != nil {
		platform = *meta.Platform
	}
	created := epoch
	if !meta.Created.IsZero() {
		created = meta.Created.UTC()
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Created = v1.Time{Time: created}
	cf.Config = cfg
	cf.History = []v1.History{{Created: v1.Time{Time: created}, CreatedBy: "imagepack"}}
	return mutate.ConfigFile(img, cf)
}
