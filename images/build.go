package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultPath is the PATH every image gets before any Spec.Env.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// epoch is the only timestamp that appears in an image.
func epoch() time.Time { return time.Unix(0, 0).UTC() }

// Spec describes a single-layer image.
type Spec struct {
	OS         string // default linux
	Arch       string // GOARCH: amd64, arm64, ... (required)
	Variant    string // platform variant, e.g. v8; empty for none
	Entries    []Entry
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=VALUE, after DefaultPath
	WorkingDir string   // default /
	// CreatedBy is the layer's history entry; default "clusterctl images".
	CreatedBy string
}

// Entry is one file system entry of the layer.
type Entry struct {
	Path     string // absolute path inside the image
	Type     byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	Mode     int64
	Src      string // regular files: where a caller read Data from (informational)
	Data     []byte // regular files: the content
	Linkname string // symlinks
}

// Build assembles the image in memory. It reads nothing from disk: regular
// file entries must carry their Data.
func Build(s Spec) (v1.Image, error) {
	if s.Arch == "" {
		return nil, fmt.Errorf("build image: no architecture")
	}
	layerTar, err := LayerTar(s.Entries)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressionLevel(gzip.BestCompression), tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	osName, wd, createdBy := s.OS, s.WorkingDir, s.CreatedBy
	if osName == "" {
		osName = "linux"
	}
	if wd == "" {
		wd = "/"
	}
	if createdBy == "" {
		createdBy = "clusterctl images"
	}
	cfg := &v1.ConfigFile{
		Architecture: s.Arch,
		OS:           osName,
		Variant:      s.Variant,
		Created:      v1.Time{Time: epoch()},
		Config: v1.Config{
			Env:        append([]string{DefaultPath}, s.Env...),
			Entrypoint: s.Entrypoint,
			Cmd:        s.Cmd,
			WorkingDir: wd,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(base, cfg)
	if err != nil {
		return nil, fmt.Errorf("set image config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch()}, CreatedBy: createdBy},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	return img, nil
}

// LayerTar renders the entries as an uncompressed tar: sorted by path, parent
// directories added (0755) where not given, owner root, every time the epoch.
func LayerTar(entries []Entry) ([]byte, error) {
	byPath := map[string]Entry{}
	for _, e := range entries {
		p := path.Clean("/" + e.Path)
		if p == "/" {
			return nil, fmt.Errorf("entry %q: the root directory cannot be an entry", e.Path)
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("entry %s: given twice", p)
		}
		e.Path = p
		byPath[p] = e
	}
	for p := range byPath {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if prev, ok := byPath[d]; ok {
				if prev.Type != tar.TypeDir {
					return nil, fmt.Errorf("entry %s: parent %s is not a directory", p, d)
				}
				continue
			}
			byPath[d] = Entry{Path: d, Type: tar.TypeDir, Mode: 0o755}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := byPath[p]
		hdr := &tar.Header{
			Typeflag: e.Type,
			Name:     strings.TrimPrefix(p, "/"),
			Mode:     e.Mode,
			ModTime:  epoch(),
		}
		switch e.Type {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeSymlink:
			hdr.Linkname = e.Linkname
		case tar.TypeReg:
			hdr.Size = int64(len(e.Data))
		default:
			return nil, fmt.Errorf("entry %s: unsupported type %q", p, e.Type)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write tar header %s: %w", p, err)
		}
		if e.Type == tar.TypeReg {
			if _, err := tw.Write(e.Data); err != nil {
				return nil, fmt.Errorf("write tar entry %s: %w", p, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer tar: %w", err)
	}
	return buf.Bytes(), nil
}
