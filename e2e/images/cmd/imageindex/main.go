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

	"lockstep.dev/e2e/images/internal/flagkv"
	"lockstep.dev/e2e/images/internal/pack"
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
	tag, err := name.NewTag(*ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("--name: %w", err)
	}
	annots, err := flagkv.Map("--annotation", annotations)
	if err != nil {
		return err
	}
	idx, err := pack.JoinLayouts(fs.Args(), annots)
	if err != nil {
		return err
	}
	if err := pack.WriteIndexLayout(*out, tag, idx); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Println(d)
	return nil
}
