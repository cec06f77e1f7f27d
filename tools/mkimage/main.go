// Command mkimage builds a single-layer linux container image from local files
// and writes it as a docker-archive tarball that `ctr -n k8s.io images import`
// accepts. It needs no registry and no docker daemon.
//
// Every timestamp in the image is the Unix epoch and entries are sorted, so
// the same inputs always give the same bytes (reproducible builds).
//
//	go run ./tools/mkimage -ref localhost/clusterctl/pause:1 -arch amd64 \
//	    -file /pause=build/pause-linux-amd64:0755 -entrypoint /pause \
//	    -o agentlet/pause/image/amd64/pause-linux-amd64.tar
//
//	go run ./tools/mkimage -ref localhost/clusterctl/busybox:1 -arch amd64 \
//	    -file /bin/busybox=/usr/bin/busybox:0755 -link /bin/sh=busybox \
//	    -dir /tmp:1777 -entrypoint /bin/sh -cmd -c -cmd 'sleep 3600' \
//	    -env LANG=C.UTF-8 -o busybox.tar
//
// -entrypoint and -cmd may be repeated, one argument each, or given once as a
// JSON array (-cmd '["-c","sleep 3600"]').
//
// It is the command-line front end of package images (images.Build and
// images.WriteArchive); like that package it is build-time only: nothing
// shipped imports go-containerregistry.
package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/clusterctl/clusterctl/images"
)

// createdBy is the history entry of every layer mkimage writes; it is part
// of the image config, so changing it changes every image digest.
const createdBy = "clusterctl mkimage"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage marks bad flags (exit code 2).
var errUsage = errors.New("usage")

// listFlag collects repeated string flags.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// argvFlag collects an argv: one element per occurrence, or a JSON array.
type argvFlag []string

func (a *argvFlag) String() string { return strings.Join(*a, " ") }
func (a *argvFlag) Set(s string) error {
	if strings.HasPrefix(strings.TrimSpace(s), "[") {
		var v []string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return fmt.Errorf("parse JSON array %q: %w", s, err)
		}
		*a = append(*a, v...)
		return nil
	}
	*a = append(*a, s)
	return nil
}

// Options describe one image.
type Options struct {
	Ref string
	images.Spec
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files, links, dirs, envs listFlag
	var entrypoint, cmd argvFlag
	opts := Options{}
	fs.StringVar(&opts.Ref, "ref", "", "image reference, e.g. localhost/clusterctl/pause:1 (required)")
	fs.StringVar(&opts.Arch, "arch", "", "GOARCH of the image: amd64, arm64, ... (required)")
	fs.StringVar(&opts.OS, "os", "linux", "OS of the image")
	fs.StringVar(&opts.Variant, "variant", "", "platform variant (e.g. v8 for arm64); empty for none")
	fs.StringVar(&opts.WorkingDir, "workdir", "/", "working directory")
	out := fs.String("o", "", "output docker-archive tarball (required)")
	busybox := fs.Bool("busybox", false, "build the busybox test image (this machine's busybox-static, all applets) instead of -file/-link/-dir entries")
	fs.Var(&files, "file", "DST=SRC[:MODE] regular file (octal mode, default 0644); repeatable")
	fs.Var(&links, "link", "DST=TARGET symlink; repeatable")
	fs.Var(&dirs, "dir", "DST[:MODE] directory (default 0755); repeatable")
	fs.Var(&envs, "env", "KEY=VALUE environment variable; repeatable")
	fs.Var(&entrypoint, "entrypoint", "entrypoint argument; repeat per argument or pass a JSON array")
	fs.Var(&cmd, "cmd", "cmd argument; repeat per argument or pass a JSON array")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	var problems []error
	if opts.Ref == "" {
		problems = append(problems, errors.New("-ref is required"))
	}
	if opts.Arch == "" {
		problems = append(problems, errors.New("-arch is required"))
	}
	if *out == "" {
		problems = append(problems, errors.New("-o is required"))
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	entries, err := parseEntries(files, links, dirs)
	if err != nil {
		problems = append(problems, err)
	}
	for _, e := range envs {
		if !strings.Contains(e, "=") {
			problems = append(problems, fmt.Errorf("-env %q: want KEY=VALUE", e))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", errUsage, errors.Join(problems...))
	}
	if *busybox {
		img, err := images.Busybox(opts.Arch, opts.Ref)
		if err != nil {
			return err
		}
		if err := images.WriteArchive(*out, opts.Ref, img); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s/%s busybox -> %s\n", opts.Ref, opts.OS, opts.Arch, *out)
		return nil
	}
	opts.Entries, opts.Entrypoint, opts.Cmd, opts.Env = entries, entrypoint, cmd, envs
	for i := range opts.Entries {
		e := &opts.Entries[i]
		if e.Type == tar.TypeReg && e.Data == nil {
			data, err := os.ReadFile(e.Src)
			if err != nil {
				return fmt.Errorf("read %s for %s: %w", e.Src, e.Path, err)
			}
			e.Data = data
		}
	}

	ref, err := name.NewTag(opts.Ref)
	if err != nil {
		return fmt.Errorf("parse reference %q: %w", opts.Ref, err)
	}
	opts.CreatedBy = createdBy
	img, err := images.Build(opts.Spec)
	if err != nil {
		return err
	}
	if err := images.WriteArchive(*out, opts.Ref, img); err != nil {
		return err
	}
	id, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("compute image id: %w", err)
	}
	fmt.Fprintf(stdout, "%s %s/%s id=%s -> %s\n", ref.Name(), opts.OS, opts.Arch, id, *out)
	return nil
}

// parseEntries turns the -file, -link and -dir flags into layer entries.
func parseEntries(files, links, dirs []string) ([]images.Entry, error) {
	var entries []images.Entry
	var errs []error
	for _, f := range files {
		dst, rest, ok := strings.Cut(f, "=")
		if !ok || dst == "" || rest == "" {
			errs = append(errs, fmt.Errorf("-file %q: want DST=SRC[:MODE]", f))
			continue
		}
		src, mode, err := splitMode(rest, 0o644)
		if err != nil {
			errs = append(errs, fmt.Errorf("-file %q: %w", f, err))
			continue
		}
		entries = append(entries, images.Entry{Path: dst, Type: tar.TypeReg, Mode: mode, Src: src})
	}
	for _, l := range links {
		dst, target, ok := strings.Cut(l, "=")
		if !ok || dst == "" || target == "" {
			errs = append(errs, fmt.Errorf("-link %q: want DST=TARGET", l))
			continue
		}
		entries = append(entries, images.Entry{Path: dst, Type: tar.TypeSymlink, Mode: 0o777, Linkname: target})
	}
	for _, d := range dirs {
		dst, mode, err := splitMode(d, 0o755)
		if err != nil {
			errs = append(errs, fmt.Errorf("-dir %q: %w", d, err))
			continue
		}
		entries = append(entries, images.Entry{Path: dst, Type: tar.TypeDir, Mode: mode})
	}
	return entries, errors.Join(errs...)
}

// splitMode splits "X:0755" into X and the octal mode; without ":MODE" the
// default applies.
func splitMode(s string, def int64) (string, int64, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return s, def, nil
	}
	m, err := strconv.ParseInt(s[i+1:], 8, 64)
	if err != nil || m < 0 || m > 0o7777 {
		return "", 0, fmt.Errorf("bad octal mode %q", s[i+1:])
	}
	return s[:i], m, nil
}
