package playbooks

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// ImageArchive is a local docker-archive or OCI-archive tarball, checked and
// hashed once before it is sent to every host.
type ImageArchive struct {
	Path   string
	Format string // "docker" (manifest.json) or "oci" (index.json)
	Size   int64
	SHA256 string
	// Names are the image names the archive declares (docker RepoTags, or
	// the OCI index's image name annotations); ctr decides what it imports.
	Names []string

	f *os.File
}

// OpenImageArchive opens path, checks that it is a tar holding a docker
// manifest.json or an OCI index.json, and hashes it. Close releases it.
func OpenImageArchive(path string) (*ImageArchive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open image archive: %w", err)
	}
	a := &ImageArchive{Path: path, f: f}
	if err := a.inspect(); err != nil {
		f.Close()
		return nil, fmt.Errorf("read image archive %s: %w", path, err)
	}
	return a, nil
}

// Close closes the archive.
func (a *ImageArchive) Close() error { return a.f.Close() }

// inspect hashes the archive and reads its manifest.json or index.json in
// one pass.
func (a *ImageArchive) inspect() error {
	h := sha256.New()
	n, err := io.Copy(h, a.f)
	if err != nil {
		return err
	}
	a.Size, a.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	tr := tar.NewReader(io.NewSectionReader(a.f, 0, n))
	var manifest, index []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("not a tar archive: %w", err)
		}
		switch strings.TrimPrefix(hdr.Name, "./") {
		case "manifest.json":
			manifest, err = io.ReadAll(io.LimitReader(tr, 16<<20))
		case "index.json":
			index, err = io.ReadAll(io.LimitReader(tr, 16<<20))
		}
		if err != nil {
			return err
		}
	}
	switch {
	case manifest != nil:
		a.Format = "docker"
		var m []struct{ RepoTags []string }
		if err := json.Unmarshal(manifest, &m); err != nil {
			return fmt.Errorf("parse manifest.json: %w", err)
		}
		for _, e := range m {
			a.Names = append(a.Names, e.RepoTags...)
		}
	case index != nil:
		a.Format = "oci"
		var idx struct {
			Manifests []struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(index, &idx); err != nil {
			return fmt.Errorf("parse index.json: %w", err)
		}
		for _, m := range idx.Manifests {
			if n := m.Annotations["io.containerd.image.name"]; n != "" {
				a.Names = append(a.Names, n)
			} else if n := m.Annotations["org.opencontainers.image.ref.name"]; n != "" {
				a.Names = append(a.Names, n)
			}
		}
	default:
		return errors.New("neither a docker archive (manifest.json) nor an OCI archive (index.json)")
	}
	return nil
}

// ImageLoadOptions configures LoadImage.
type ImageLoadOptions struct {
	Archive  *ImageArchive
	Hosts    []string
	Dial     Dialer
	Parallel int
	Progress Progress
}

// ImageLoadResult is the outcome of LoadImage on one host.
type ImageLoadResult struct {
	HostResult
	// Images are the names imported, each ready for CRI (content complete
	// and unpacked for the overlayfs snapshotter) in the k8s.io namespace.
	Images []string
}

// imageImportMarker separates ctr's import output from the ready list.
const imageImportMarker = "--- clusterctl: ready images ---"

// LoadImage side-loads an image archive into containerd on every host, in
// parallel, for hosts that cannot pull: upload over SFTP to a temp file,
// verify its sha256, `ctr images import` into CRI's k8s.io namespace (the
// host's platform only, unpacked for overlayfs, the snapshotter CRI is
// configured with), check with `ctr images check` that every imported image
// is ready, remove the temp file. One round trip after the upload.
func LoadImage(ctx context.Context, opts ImageLoadOptions) []ImageLoadResult {
	results := make([]ImageLoadResult, len(opts.Hosts))
	forEach(ctx, opts.Hosts, opts.Parallel, func(ctx context.Context, i int, name string) {
		start := time.Now()
		r := &upRun{opts: &UpOptions{Progress: opts.Progress}, res: HostResult{Host: name}, name: name}
		images := r.loadImage(ctx, opts)
		r.res.Elapsed = time.Since(start)
		msg, st := "imported "+strings.Join(images, ", "), HostDone
		if r.res.Err != nil {
			msg, st = r.res.Err.Error(), Failed
		}
		opts.Progress.emit(Event{Host: name, Step: "done", State: st, Message: msg})
		results[i] = ImageLoadResult{HostResult: r.res, Images: images}
	})
	return results
}

func (r *upRun) loadImage(ctx context.Context, opts ImageLoadOptions) []string {
	a := opts.Archive
	if !r.step("connect", func() (string, error) {
		h, err := opts.Dial(ctx, r.name)
		r.host = h
		return "", err
	}) {
		return nil
	}
	defer r.host.Close()
	h := r.host
	tmp := h.TempPath("clusterctl-image-")
	if !r.step("upload", func() (string, error) {
		return "", h.Upload(ctx, io.NewSectionReader(a.f, 0, a.Size), tmp, 0o600)
	}) {
		return nil
	}
	var images []string
	r.step("import", func() (string, error) {
		out, err := h.Run(ctx, imageImportCmd(tmp, a.SHA256), nil)
		if err != nil {
			return "", err
		}
		images, err = parseImageImport(out)
		if err != nil {
			return "", err
		}
		return "imported " + strings.Join(images, ", "), nil
	})
	return images
}

// imageImportCmd verifies and imports the uploaded archive, then lists the
// images that are ready; the temp file is removed in any case.
func imageImportCmd(tmp, sum string) string {
	ctr := "ctr --address " + ContainerdSocket + " -n k8s.io images"
	return fmt.Sprintf(`set -e; f=%[1]s; trap 'rm -f "$f"' EXIT
got=$(sha256sum "$f" | cut -d' ' -f1)
if [ "$got" != %[2]s ]; then echo "checksum mismatch after upload: got $got, want %[2]s" >&2; exit 1; fi
%[3]s import --snapshotter overlayfs "$f"
echo %[4]q
%[3]s check -q --snapshotter overlayfs`, shellQuote(tmp), sum, ctr, imageImportMarker)
}

// parseImageImport reads the names ctr import unpacked ("unpacking NAME
// (sha256:...)...done") and checks that each is in the ready list after the
// marker.
func parseImageImport(out []byte) ([]string, error) {
	imported, ready, found := strings.Cut(string(out), imageImportMarker+"\n")
	if !found {
		return nil, fmt.Errorf("no ready list after %q in output %q", imageImportMarker, out)
	}
	var names []string
	for line := range strings.SplitSeq(imported, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "unpacking ")
		if !ok {
			continue
		}
		if name, _, ok := strings.Cut(rest, " (sha256:"); ok && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("ctr imported no named image; output:\n%s", strings.TrimSpace(imported))
	}
	readyNames := strings.Fields(ready)
	var missing []string
	for _, n := range names {
		if !slices.Contains(readyNames, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("imported but not ready (content incomplete or not unpacked): %s", strings.Join(missing, ", "))
	}
	return names, nil
}
