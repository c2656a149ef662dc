// imagepack packs local files into a single-layer image tarball (docker-archive format, which
// `ctr images import` in containerd 1.6 names from its RepoTags). Output is deterministic: the
// same inputs give the same bytes, so the same image digest.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"lockstep.dev/e2e/images/internal/pack"
)

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagepack:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imagepack", flag.ContinueOnError)
	ref := fs.String("name", "", "image reference, e.g. lockstep.local/x:dev")
	out := fs.String("out", "", "output tarball")
	entrypoint := fs.String("entrypoint", "", `entrypoint as a JSON array, e.g. ["/app"]`)
	user := fs.String("user", "", "user[:group], e.g. 65532:65532")
	workdir := fs.String("workdir", "", "working directory")
	var files, dirs, mkdirs, env repeated
	fs.Var(&files, "file", "SRC:DST[:MODE] (octal mode; default 0755 if SRC is executable, else 0644); repeatable")
	fs.Var(&dirs, "dir", "SRC:DST, a whole tree with symlinks kept; repeatable")
	fs.Var(&mkdirs, "mkdir", "DST[:MODE], an empty directory (e.g. /tmp:1777); repeatable")
	fs.Var(&env, "env", "K=V; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ref == "" || *out == "" {
		return fmt.Errorf("--name and --out are required")
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
	if *entrypoint != "" {
		if err := json.Unmarshal([]byte(*entrypoint), &cfg.Entrypoint); err != nil {
			return fmt.Errorf("--entrypoint must be a JSON array of strings: %w", err)
		}
	}
	if *workdir != "" {
		b.AddDir(*workdir)
	}
	img, err := b.Image(cfg)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, *out)
}
