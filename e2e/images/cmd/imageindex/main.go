// imageindex joins single-platform OCI layouts (imagepack --layout) into one OCI layout whose
// index.json names one image index: the multi-platform image a registry serves under one tag.
// The index carries the given annotations; the output is deterministic. Prints the index digest.
//
//	imageindex --out DIR --name REF [--annotation K=V ...] LAYOUT...
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"lockstep.dev/e2e/images/internal/flagkv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imageindex:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imageindex", flag.ContinueOnError)
	out := fs.String("out", "", "output OCI image layout directory (replaced)")
	ref := fs.String("name", "", "image reference the layout names the index by, e.g. ghcr.io/x/y:1.0.0")
	var annotations flagkv.Repeated
	fs.Var(&annotations, "annotation", "K=V on the index; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *ref == "" || fs.NArg() == 0 {
		return fmt.Errorf("want --out DIR --name REF LAYOUT...")
	}
	if _, err := name.NewTag(*ref, name.StrictValidation); err != nil {
		return fmt.Errorf("--name: %w", err)
	}
	annots, err := flagkv.Map("--annotation", annotations)
	if err != nil {
		return err
	}
	var adds []mutate.IndexAddendum
	for _, dir := range fs.Args() {
		more, err := images(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		adds = append(adds, more...)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if annots != nil {
		idx = mutate.Annotations(idx, annots).(v1.ImageIndex)
	}
	if err := os.RemoveAll(*out); err != nil {
		return err
	}
	p, err := layout.Write(*out, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": *ref})); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Println(d)
	return nil
}

// images reads every image a layout lists, each with the platform its descriptor names.
func images(dir string) ([]mutate.IndexAddendum, error) {
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
