package inventory

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Where the CLI looks for the inventory when no -i flag is given.
const (
	// EnvInventory names the environment variable holding the inventory path.
	EnvInventory = "CLUSTERCTL_INVENTORY"
	// DefaultFile is the inventory path used when nothing else is set.
	DefaultFile = "cluster.yaml"
	// maxFileSize bounds what Load reads; inventories are a few KiB.
	maxFileSize = 16 << 20
)

// DefaultPath returns the inventory path to use when no -i flag is given:
// $CLUSTERCTL_INVENTORY if set, else ./cluster.yaml.
func DefaultPath(getenv func(string) string) string {
	if p := getenv(EnvInventory); p != "" {
		return p
	}
	return DefaultFile
}

// Load reads and parses the inventory at path. Invalid inventories yield a
// *ValidationError. "~" in ssh paths expands to the user's home directory.
//
// Load does not lock; use Update for read-modify-write cycles.
func Load(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read inventory %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("read inventory %s: larger than %d MiB", path, maxFileSize>>20)
	}
	inv, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	inv.HomeDir, _ = os.UserHomeDir() // without one, "~" paths stay as written
	inv.sum, inv.onDisk = sha256.Sum256(data), true
	return inv, nil
}

// Update runs one locked read-modify-write cycle on the inventory at path:
// lock (waiting up to wait, see Lock), load, fn, save if fn changed State,
// unlock. If fn returns an error nothing is saved.
func Update(ctx context.Context, path string, wait time.Duration, fn func(*Inventory) error) (err error) {
	unlock, err := Lock(ctx, path, wait)
	if err != nil {
		return err
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	inv, err := Load(path)
	if err != nil {
		return err
	}
	before := inv.State.clone()
	if err := fn(inv); err != nil {
		return err
	}
	if inv.State.equal(before) {
		return nil
	}
	return Save(inv)
}

// realPath follows symlinks so that the file they point to is locked and
// replaced, not the link. A path that does not exist yet is used as is.
func realPath(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		return p
	}
	return path
}
