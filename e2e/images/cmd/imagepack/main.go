// imagepack packs local files into a single-layer image: a tarball (docker-archive format, which
// `ctr images import` in containerd 1.6 names from its RepoTags) and/or an OCI image layout
// holding that one image with its platform (imageindex joins such layouts into a multi-platform
// index). Output is deterministic: the same inputs give the same bytes, so the same digest.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"lockstep.dev/e2e/images/internal/flagkv"
	"lockstep.dev/e2e/images/internal/pack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagepack:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imagepack", flag.ContinueOnError)
	ref := fs.String("name", "", "image reference, e.g. lockstep.local/x:dev")
	out := fs.String("out", "", "output tarball (docker-archive)")
	layoutDir := fs.String("layout", "", "output OCI image layout directory (replaced)")
	platformText := fs.String("platform", "", "os/arch[/variant], e.g. linux/arm64 (default: this host's)")
	createdText := fs.String("created", "", "creation time as Unix seconds, e.g. $SOURCE_DATE_EPOCH (default: the epoch)")
	entrypoint := fs.String("entrypoint", "", `entrypoint as a JSON array, e.g. ["/app"]`)
	user := fs.String("user", "", "user[:group], e.g. 65532:65532")
	workdir := fs.String("workdir", "", "working directory")
	var files, dirs, mkdirs, env, labels flagkv.Repeated
	fs.Var(&files, "file", "SRC:DST[:MODE] (octal mode; default 0755 if SRC is executable, else 0644); repeatable")
	fs.Var(&dirs, "dir", "SRC:DST, a whole tree with symlinks kept; repeatable")
	fs.Var(&mkdirs, "mkdir", "DST[:MODE], an empty directory (e.g. /tmp:1777); repeatable")
	fs.Var(&env, "env", "K=V; repeatable")
	fs.Var(&labels, "label", "K=V, an image config label; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ref == "" || (*out == "" && *layoutDir == "") {
		return fmt.Errorf("--name and --out or --layout are required")
	}
	meta, err := parseMeta(*platformText, *createdText)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(*ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("--name: %w", err)
	}

	var b pack.Builder
	for _, f := range files {
		src, dst, mode, err := pack.ParseFileSpec(f)
		if err != nil {
			return err
		}
		if err := b.AddFile(src, dst, mode); err != nil {
			return err
		}
	}
	for _, d := range dirs {
		src, dst, ok := strings.Cut(d, ":")
		if !ok || src == "" || dst == "" {
			return fmt.Errorf("--dir %q: want SRC:DST", d)
		}
		if err := b.AddTree(src, dst); err != nil {
			return err
		}
	}

	for _, m := range mkdirs {
		dst, modeText, hasMode := strings.Cut(m, ":")
		mode := int64(0o755)
		if hasMode {
			if mode, err = strconv.ParseInt(modeText, 8, 32); err != nil || mode < 0 || mode > 0o7777 {
				return fmt.Errorf("--mkdir %q: MODE must be octal, e.g. 1777", m)
			}
		}
		if err := b.AddDirMode(dst, mode); err != nil {
			return err
		}
	}

	cfg := v1.Config{User: *user, WorkingDir: *workdir, Env: env}
	if cfg.Labels, err = flagkv.Map("--label", labels); err != nil {
		return err
	}
	if *entrypoint != "" {
		if err := json.Unmarshal([]byte(*entrypoint), &cfg.Entrypoint); err != nil {
			return fmt.Errorf("--entrypoint must be a JSON array of strings: %w", err)
		}
	}
	if *workdir != "" {
		b.AddDir(*workdir)
	}
	img, err := b.ImageWith(cfg, meta)
	if err != nil {
		return err
	}
	if *layoutDir != "" {
		if err := pack.WriteLayout(*layoutDir, img); err != nil {
			return err
		}
	}
	if *out == "" {
		return nil
	}
	tmp := *out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, *out)
}

func parseMeta(platformText, createdText string) (pack.Meta, error) {
	var meta pack.Meta
	if platformText != "" {
		p, err := v1.ParsePlatform(platformText)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return meta, fmt.Errorf("--platform %q: want os/arch[/variant]", platformText)
		}
		meta.Platform = p
	}
	if createdText != "" {
		secs, err := strconv.ParseInt(createdText, 10, 64)
		if err != nil || secs < 0 {
			return meta, fmt.Errorf("--created %q: want Unix seconds", createdText)
		}
		meta.Created = time.Unix(secs, 0).UTC()
	}
	return meta, nil
}
