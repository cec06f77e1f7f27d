package inventory

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A save killed between writing its temporary file and renaming it leaves
// the file behind; the next save that writes removes it once it is old
// enough to belong to no save in progress, and nothing else.
func TestSaveRemovesStaleTempFiles(t *testing.T) {
	path := copyTestdata(t, "valid-minimal.yaml")
	dir := filepath.Dir(path)
	old := time.Now().Add(-2 * staleTempAge)
	files := []struct {
		name   string
		old    bool
		dir    bool
		remove bool
	}{
		{name: ".cluster.yaml3131436941396260344", old: true, remove: true}, // a killed save's
		{name: ".cluster.yaml42", old: true, remove: true},
		{name: ".cluster.yaml77", old: false},          // a save in progress
		{name: ".cluster.yaml.swp", old: true},         // an editor's
		{name: ".cluster.yaml", old: true},             // no digits
		{name: ".other.yaml123", old: true},            // another file's
		{name: "cluster.yaml123", old: true},           // not hidden
		{name: ".cluster.yaml9", old: true, dir: true}, // a directory
		{name: ".cluster.yaml12x", old: true},          // not only digits
		{name: ".cluster.yaml.lock", old: true},        // the lock file
		{name: "..cluster.yaml1", old: true},           // another prefix
		{name: ".cluster.yaml-1", old: true},           // a sign is not a digit
		{name: ".cluster.yaml0000000000000000001", old: true, remove: true},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		var err error
		if f.dir {
			err = os.Mkdir(p, 0o700)
		} else {
			err = os.WriteFile(p, []byte("x"), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.old {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}

	// A save that writes nothing new leaves everything alone.
	inv := mustLoad(t, path)
	if err := Save(inv); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.name)); err != nil {
			t.Errorf("%s: removed by a save that wrote nothing: %v", f.name, err)
		}
	}

	inv.State.Generation++
	if err := Save(inv); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		_, err := os.Lstat(filepath.Join(dir, f.name))
		if gone := os.IsNotExist(err); gone != f.remove {
			t.Errorf("%s: removed = %v, want %v (err %v)", f.name, gone, f.remove, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == "cluster.yaml" }) {
		t.Error("the inventory itself is gone")
	}
	if got := mustLoad(t, path).State.Generation; got != inv.State.Generation {
		t.Errorf("saved generation %d, want %d", got, inv.State.Generation)
	}
}
