package inventory

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// meaningOpts compare what an inventory means: every parsed field, objects
// by content (not by the line they were read from).
var meaningOpts = cmp.Options{
	cmp.AllowUnexported(SSH{}),
	cmpopts.IgnoreFields(Object{}, "Line"),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmpopts.EquateEmpty(),
}

// meaning is the part of an inventory that Save must keep.
type meaning struct {
	APIVersion, Kind string
	Cluster          Cluster
	SSH              SSH
	Hosts            []Host
	State            State
}

func meaningOf(inv *Inventory) meaning {
	return meaning{inv.APIVersion, inv.Kind, inv.Cluster, inv.SSH, inv.Hosts, inv.State}
}

// seedInventories adds every inventory in testdata/inventory to the corpus.
func seedInventories(f *testing.F) [][]byte {
	paths, err := filepath.Glob(filepath.Join(testdataDir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed inventories in %s: %v", testdataDir, err)
	}
	var out [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// FuzzParse checks that Parse never panics, that it returns either an
// inventory or a *ValidationError with problems, and that an accepted
// inventory survives what Save does (Marshal, then Parse) unchanged in
// meaning, with Marshal a fixed point from then on; and that its snapshot
// restores the same state.
func FuzzParse(f *testing.F) {
	for _, data := range seedInventories(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Parse error is not a *ValidationError with problems: %#v", err)
			}
			if inv != nil {
				t.Fatal("Parse returned an inventory with an error")
			}
			return
		}
		out, err := inv.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed inventory: %v", err)
		}
		back, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("Marshal wrote an inventory that does not parse:\n%v\n--- written:\n%s", err, out)
		}
		if diff := cmp.Diff(meaningOf(inv), meaningOf(back), meaningOpts); diff != "" {
			t.Fatalf("meaning changed through Marshal and Parse (-parsed +reparsed):\n%s\n--- written:\n%s", diff, out)
		}
		again, err := back.Marshal()
		if err != nil || !bytes.Equal(out, again) {
			t.Fatalf("Marshal is not a fixed point (%v):\n%s\n--- then:\n%s", err, out, again)
		}

		// The snapshot of the state restores it into the same file.
		snap, err := inv.Snapshot().Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseSnapshot(snap)
		if err != nil {
			t.Fatalf("ParseSnapshot(Snapshot().Marshal()): %v\n%s", err, snap)
		}
		fresh, err := Parse("fuzz.yaml", data)
		if err != nil {
			t.Fatal(err)
		}
		fresh.State = State{}
		if _, err := fresh.Restore(s); err != nil {
			t.Fatalf("Restore of the inventory's own snapshot: %v", err)
		}
		if diff := cmp.Diff(inv.State, fresh.State, meaningOpts); diff != "" {
			t.Fatalf("state changed through Snapshot and Restore (-parsed +restored):\n%s", diff)
		}
	})
}

// FuzzParseSnapshot checks that ParseSnapshot and Restore never panic, that
// Restore either fails and changes nothing or leaves an inventory that
// marshals to a valid file, and that a restored state snapshots back to
// itself.
func FuzzParseSnapshot(f *testing.F) {
	for _, data := range seedInventories(f) {
		inv, err := Parse("seed.yaml", data)
		if err != nil {
			continue
		}
		snap, err := inv.Snapshot().Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(snap)
	}
	f.Add([]byte(`{"apiVersion":"clusterctl.dev/v1alpha1","kind":"InventorySnapshot","state":{"generation":1,"objects":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}]}}`))
	target, err := os.ReadFile(filepath.Join(testdataDir, "valid-full.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSnapshot(data)
		if err != nil {
			return
		}
		inv, err := Parse("target.yaml", target)
		if err != nil {
			t.Fatal(err)
		}
		before := meaningOf(inv)
		if _, err := inv.Restore(s); err != nil {
			if diff := cmp.Diff(before, meaningOf(inv), meaningOpts); diff != "" {
				t.Fatalf("a failed Restore changed the inventory:\n%s", diff)
			}
			return
		}
		out, err := inv.Marshal()
		if err != nil {
			t.Fatalf("Marshal after Restore: %v", err)
		}
		if _, err := Parse("target.yaml", out); err != nil {
			t.Fatalf("Restore left an inventory that does not parse: %v\n%s", err, out)
		}
		again, err := ParseSnapshot(mustMarshal(t, inv.Snapshot()))
		if err != nil {
			t.Fatal(err)
		}
		restored, err := Parse("target.yaml", target)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := restored.Restore(again); err != nil {
			t.Fatalf("Restore of a restored state's snapshot: %v", err)
		}
		if diff := cmp.Diff(inv.State, restored.State, meaningOpts); diff != "" {
			t.Fatalf("state changed through a second Snapshot and Restore:\n%s", diff)
		}
	})
}

func mustMarshal(t *testing.T, s *Snapshot) []byte {
	t.Helper()
	data, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}
