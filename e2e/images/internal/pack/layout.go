package pack

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// WriteLayout replaces dir with an OCI layout whose index.json lists this one image with the
// platform its config names: what JoinLayouts reads.
func WriteLayout(dir string, img v1.Image) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithPlatform(*cf.Platform()))
}

// JoinLayouts returns one OCI image index over every image the layouts list, each under the
// platform its descriptor names, carrying the given annotations.
func JoinLayouts(dirs []string, annotations map[string]string) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, dir := range dirs {
		more, err := layoutImages(dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		adds = append(adds, more...)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if len(annotations) > 0 {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	return idx, nil
}

// WriteIndexLayout replaces dir with an OCI layout whose index.json names idx the way
// `docker buildx --output type=oci` does: the tag as org.opencontainers.image.ref.name (what
// skopeo's oci:DIR:TAG reads) and the whole reference as io.containerd.image.name (what
// `ctr images import` names it by).
func WriteIndexLayout(dir string, ref name.Tag, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.String(),
	}))
}

func layoutImages(dir string) ([]mutate.IndexAddendum, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var adds []mutate.IndexAddendum
	for _, desc := range m.Manifests {
		if desc.Platform == nil {
			return nil, fmt.Errorf("manifest %s has no platform", desc.Digest)
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: desc.Platform}})
	}
	if len(adds) == 0 {
		return nil, fmt.Errorf("no images")
	}
	return adds, nil
}
