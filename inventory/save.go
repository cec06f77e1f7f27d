package inventory

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// ErrModified is returned by Save when the file changed on disk since the
// inventory was loaded or last saved: writing would lose someone's edit.
var ErrModified = errors.New("file changed on disk since it was loaded; load it again and retry")

// Save writes the inventory to inv.Path (see Marshal for what is written).
//
// The write is atomic: a temporary file in the same directory is written,
// fsynced and renamed over the original, whose mode is kept (0600, less the
// umask, for a new file); a symlink is followed, not replaced. Save refuses
// to write an inventory that would not parse back, returns ErrModified when
// the file is no longer what Load read, and will not replace an existing
// file with an inventory made by New (an error wrapping fs.ErrExist). Save
// does not lock; use Update for read-modify-write cycles.
func Save(inv *Inventory) error {
	data, err := inv.Marshal()
	if err != nil {
		return fmt.Errorf("save inventory %s: %w", inv.Path, err)
	}
	if _, err := Parse(inv.Path, data); err != nil {
		return fmt.Errorf("save inventory %s: refuse to write an invalid inventory:\n%w", inv.Path, err)
	}
	path := realPath(inv.Path)
	if inv.onDisk {
		current, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("save inventory %s: %w", inv.Path, err)
		}
		if err != nil || sha256.Sum256(current) != inv.sum {
			return fmt.Errorf("save inventory %s: %w", inv.Path, ErrModified)
		}
		if bytes.Equal(current, data) {
			return nil
		}
	} else if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("save inventory %s: refuse to replace an existing file with an inventory that was not loaded from it: %w", inv.Path, fs.ErrExist)
	}
	dir := filepath.Dir(path)
	if err := renameio.WriteFile(path, data, 0o600, renameio.WithTempDir(dir)); err != nil {
		return fmt.Errorf("save inventory %s: %w", inv.Path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("save inventory %s: %w", inv.Path, err)
	}
	inv.sum, inv.onDisk = sha256.Sum256(data), true
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return d.Close()
}
