// Package pause holds the sandbox (pause) image archive agentlet imports into
// containerd: a docker-archive tarball for the architecture agentlet is built
// for (each binary embeds only its own, see embed_*.go).
//
// The archives are build outputs of `make build` (cmd/pause → tools/mkimage →
// image/ARCH/pause-linux-ARCH.tar). Each directory keeps a committed .keep
// file so the package compiles on a clean checkout; Archive then reports what
// to do.
package pause

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/clusterctl/clusterctl/version"
)

// Ref is the image reference the archives carry (version.PauseImage).
const Ref = version.PauseImage

// FileName is the archive's file name for arch inside the image directory.
func FileName(arch string) string { return "pause-linux-" + arch + ".tar" }

// Archive returns the embedded pause image archive for arch (a GOARCH).
func Archive(arch string) ([]byte, error) {
	data, err := images.ReadFile("image/" + arch + "/" + FileName(arch))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("agentlet built without the pause image for %s; run make build", arch)
	}
	if err != nil {
		return nil, fmt.Errorf("read embedded pause image for %s: %w", arch, err)
	}
	return data, nil
}
