package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func cpCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "cp",
		Usage:     "copy files and directories to and from a container (needs tar in the container)",
		ArgsUsage: "[NAMESPACE/]POD:PATH LOCAL | LOCAL [NAMESPACE/]POD:PATH",
		Flags: append([]cli.Flag{inventoryFlag(), namespaceFlag(),
			&cli.StringFlag{Name: "container", Aliases: []string{"c"}, Usage: "container name (default: the first)"},
		}, sshFlags()...),
		Action: func(c *cli.Context) error {
			args, err := trailingFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			if len(args) != 2 {
				return withCode(ExitUsage, errors.New("cp: want SRC DST, one of them POD:PATH"))
			}
			src, dst := args[0], args[1]
			if ns, pod, p, ok := remoteSpec(src, c.String("namespace")); ok {
				return copyFrom(c, env, ns, pod, p, dst)
			}
			if ns, pod, p, ok := remoteSpec(dst, c.String("namespace")); ok {
				return copyTo(c, env, src, ns, pod, p)
			}
			return withCode(ExitUsage, errors.New("cp: one of SRC and DST must be POD:PATH"))
		},
	}
}

// remoteSpec parses kubectl's [NAMESPACE/]POD:PATH.
func remoteSpec(s, defaultNS string) (ns, pod, p string, ok bool) {
	before, after, found := strings.Cut(s, ":")
	if !found || before == "" || after == "" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return "", "", "", false
	}
	ns, pod = defaultNS, before
	if n, p2, has := strings.Cut(before, "/"); has {
		ns, pod = n, p2
	}
	return ns, pod, after, true
}

func execLine(ns, pod, container string, stdin bool, cmd ...string) string {
	args := []string{nodeapi.BinaryPath, "exec", ns + "/" + pod}
	if container != "" {
		args = append(args, "-c", container)
	}
	if stdin {
		args = append(args, "-i")
	}
	return quoteArgs(append(append(args, "--"), cmd...))
}

// copyFrom streams `tar chf -` of the container path (symlinks followed, as
// ConfigMap and Secret files are links into ..data) and unpacks it locally.
func copyFrom(c *cli.Context, env *Env, ns, pod, p, dst string) error {
	c.Set("namespace", ns)
	_, h, err := podOnNode(c, env, pod)
	if err != nil {
		return err
	}
	defer h.Close()
	clean := path.Clean(p)
	dir, base := path.Dir(clean), path.Base(clean)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- untar(pr, dst, base) }()
	err = h.(streamer).Stream(c.Context, execLine(ns, pod, c.String("container"), false, "tar", "chf", "-", "-C", dir, base), nil, pw, env.Err)
	pw.CloseWithError(err)
	if uerr := <-done; err == nil {
		err = uerr
	}
	return silentExit(err)
}

// copyTo packs the local path and unpacks it in the container.
func copyTo(c *cli.Context, env *Env, src, ns, pod, p string) error {
	c.Set("namespace", ns)
	_, h, err := podOnNode(c, env, pod)
	if err != nil {
		return err
	}
	defer h.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarPath(pw, src, path.Base(path.Clean(p)))) }()
	dir := path.Dir(path.Clean(p))
	return silentExit(h.(streamer).Stream(c.Context, execLine(ns, pod, c.String("container"), true, "tar", "xf", "-", "-C", dir), pr, env.Out, env.Err))
}

// tarPath writes src (file or directory) as a tar stream whose top entry is named as.
func tarPath(w io.Writer, src, as string) error {
	tw := tar.NewWriter(w)
	err := filepath.Walk(src, func(file string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, file)
		if err != nil {
			return err
		}
		name := path.Join(as, filepath.ToSlash(rel))
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(file); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = name
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pack %s: %w", src, err)
	}
	return tw.Close()
}

// untar unpacks a stream whose entries start with base into dst: dst is the
// copy itself, or, when it is an existing directory, the place to put it.
// Entries that would land outside dst are refused.
func untar(r io.Reader, dst, base string) error {
	target := dst
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		target = filepath.Join(dst, base)
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		rel := strings.TrimPrefix(path.Clean(hdr.Name), base)
		if path.IsAbs(hdr.Name) || strings.HasPrefix(path.Clean(hdr.Name), "..") || (rel != "" && !strings.HasPrefix(rel, "/")) {
			return fmt.Errorf("unpack: refusing entry %q outside %s", hdr.Name, base)
		}
		out := filepath.Join(target, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(out, os.FileMode(hdr.Mode).Perm()|0o700); err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
			f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, os.FileMode(hdr.Mode).Perm())
			if err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("unpack %s: %w", out, err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, out); err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
		}
	}
}
