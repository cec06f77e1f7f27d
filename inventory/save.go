package inventory

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

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
// does not lock; use Update for read-modify-write cycles. After writing, it
// removes temporary files that a save killed before its rename left next to
// the inventory (see removeStaleTemps).
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
	removeStaleTemps(dir, filepath.Base(path), time.Now())
	return nil
}

// staleTempAge is how old a temporary file must be before Save removes it:
// a younger one may belong to a save in progress.
const staleTempAge = time.Minute

// removeStaleTemps removes, best effort, the temporary files a save killed
// between writing and renaming left in dir (renameio names them "." + base
// + decimal digits): each is a full copy of the inventory, stored Secrets
// included, and they would otherwise pile up next to it (in a git checkout,
// as untracked files).
// Only regular files older than staleTempAge are removed.
func removeStaleTemps(dir, base string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "."+base)
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) >= staleTempAge {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
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
