// Package dist ships the agentlet binaries inside clusterctl, one per
// architecture, so `clusterctl up` can upload the agent to a host.
//
// The binaries are build outputs of `make build` (bin/agentlet-linux-ARCH).
// The directory keeps a committed .keep file so the package compiles on a
// clean checkout; Binary then reports what to do. agentlet itself never
// imports this package.
package dist

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed all:bin
var binaries embed.FS

const prefix = "agentlet-linux-"

// Binary returns the embedded agentlet binary for arch (a GOARCH).
func Binary(arch string) ([]byte, error) {
	data, err := binaries.ReadFile("bin/" + prefix + arch)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("clusterctl built without agentlet for linux/%s; run make build", arch)
	}
	if err != nil {
		return nil, fmt.Errorf("read embedded agentlet for %s: %w", arch, err)
	}
	return data, nil
}

// SHA256 returns the hex SHA-256 of the embedded agentlet binary for arch, as
// printed by sha256sum, to verify an upload before switching to it.
func SHA256(arch string) (string, error) {
	data, err := Binary(arch)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// Arches lists the architectures with an embedded binary, sorted.
func Arches() []string {
	entries, err := binaries.ReadDir("bin")
	if err != nil {
		return nil
	}
	var arches []string
	for _, e := range entries {
		if arch, ok := strings.CutPrefix(e.Name(), prefix); ok && !e.IsDir() && arch != "" {
			arches = append(arches, arch)
		}
	}
	sort.Strings(arches)
	return arches
}
