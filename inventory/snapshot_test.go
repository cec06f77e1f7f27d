package inventory

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const snapshotSource = `apiVersion: clusterctl.dev/v1alpha1
kind: Inventory
cluster: {name: lab}
hosts:
  - {name: h1, address: 10.250.0.11}
  - {name: h2, address: 10.250.0.12}
  - {name: h3, address: 10.250.0.13}
state:
  generation: 12
  hosts:
    h1: {podCIDR: 10.244.0.0/24, internalIP: 10.250.0.11, specSHA256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
    h2: {podCIDR: 10.244.1.0/24, unschedulable: true}
    h3: {podCIDR: 10.244.2.0/24}
  objects:
    - apiVersion: v1
      kind: Secret
      metadata: {name: db, namespace: default}
      data: {password: aHVudGVyMg==}
    - apiVersion: v1
      kind: Service
      metadata: {name: web, namespace: default}
      spec: {clusterIP: 10.96.0.10, ports: [{port: 80, nodePort: 30080}], type: NodePort}
    - apiVersion: v1
      kind: Pod
      metadata: {name: web-0, namespace: default}
      spec: {nodeName: h2, containers: [{name: c, image: busybox}]}
    - apiVersion: apps/v1
      kind: ControllerRevision
      metadata: {name: web-5d4f, namespace: default}
      revision: 3
`

func parseNamed(t *testing.T, name, data string) *Inventory {
	t.Helper()
	inv, err := Parse(name, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func snapshotOf(t *testing.T, inv *Inventory) *Snapshot {
	t.Helper()
	data, err := inv.Snapshot().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSnapshot(data)
	if err != nil {
		t.Fatalf("ParseSnapshot: %v\n%s", err, data)
	}
	return s
}

// TestRestoreKeepsTheUsersFile restores a snapshot into the commented lab
// inventory: everything outside state: stays byte for byte, state: is the
// snapshot's, and the file survives Save and Load.
func TestRestoreKeepsTheUsersFile(t *testing.T) {
	src := parseNamed(t, "src.yaml", snapshotSource)
	target, err := os.ReadFile(filepath.Join(testdataDir, "valid-comments.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "new.yaml")
	if err := os.WriteFile(path, target, 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	diffs, err := inv.Restore(snapshotOf(t, src))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(src.State, inv.State, meaningOpts); diff != "" {
		t.Errorf("restored state (-snapshot +restored):\n%s", diff)
	}
	// The lab file lists the same hosts at the same addresses.
	if len(diffs) != 0 {
		t.Errorf("differences = %q, want none", diffs)
	}
	if err := Save(inv); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Save keeps the user's part as Marshal renders it (yaml.v3 drops
	// blank lines, keeps comments and order).
	want, err := parseNamed(t, "new.yaml", string(target)).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	user, _, found := bytes.Cut(written, []byte("# managed by clusterctl"))
	if !found || !bytes.Equal(bytes.TrimSpace(user), bytes.TrimSpace(want)) {
		t.Errorf("the user's part changed:\n%s\nwant:\n%s", user, want)
	}
	for _, comment := range []string{"# Edit the hosts freely", "# a DNS-1123 label", "# quoted on purpose", "# trailing comment about the hosts"} {
		if !bytes.Contains(user, []byte(comment)) {
			t.Errorf("comment %q lost", comment)
		}
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(meaningOf(inv), meaningOf(back), meaningOpts); diff != "" {
		t.Errorf("saved and loaded (-restored +loaded):\n%s", diff)
	}
	for _, want := range []string{"clusterIP: 10.96.0.10", "nodeName: h2", "revision: 3", "unschedulable: true", "password: aHVudGVyMg=="} {
		if !bytes.Contains(written, []byte(want)) {
			t.Errorf("restored file lacks %q", want)
		}
	}
}

func TestRestoreReportsDifferences(t *testing.T) {
	src := parseNamed(t, "src.yaml", snapshotSource)
	inv := parseNamed(t, "new.yaml", `apiVersion: clusterctl.dev/v1alpha1
kind: Inventory
cluster: {name: lab2, serviceCIDR: 10.97.0.0/16}
hosts:
  - {name: h1, address: 10.250.0.11}
  - {name: h2, address: 10.250.0.99}
  - {name: h4, address: 10.250.0.14}
`)
	diffs, err := inv.Restore(snapshotOf(t, src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cluster.name is lab2 here but lab in the snapshot",
		"cluster.serviceCIDR is 10.97.0.0/16 here but 10.96.0.0/12 in the snapshot",
		"host h3 (10.250.0.13) is in the snapshot but not in hosts",
		"host h2 has address 10.250.0.99 here but 10.250.0.12 in the snapshot",
		"host h4 has no recorded state in the snapshot",
	}
	if len(diffs) != len(want) {
		t.Fatalf("differences:\n%s\nwant %d", strings.Join(diffs, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(diffs[i], w) {
			t.Errorf("difference %d = %q, want %q...", i, diffs[i], w)
		}
	}
	// h3's state is kept (its pod CIDR stays reserved), with Parse's warning.
	if _, ok := inv.State.Hosts["h3"]; !ok || len(inv.Warnings) == 0 {
		t.Errorf("h3 state dropped or not warned about: %+v %v", inv.State.Hosts, inv.Warnings)
	}
}

func TestRestoreRefusesInvalidState(t *testing.T) {
	src := parseNamed(t, "src.yaml", snapshotSource)
	tests := []struct {
		name   string
		target string
		edit   func(s *Snapshot)
		want   string
	}{
		{"pod CIDR outside the cluster's", `apiVersion: clusterctl.dev/v1alpha1
kind: Inventory
cluster: {name: lab, podCIDR: 10.200.0.0/16}
hosts: [{name: h1, address: 10.250.0.11}]
`, nil, "is not inside cluster.podCIDR"},
		{"duplicate object", "", func(s *Snapshot) { s.State.Objects = append(s.State.Objects, s.State.Objects[0]) }, "duplicate object"},
		{"bad host name", "", func(s *Snapshot) { s.State.Hosts["Not_A_Label"] = HostState{} }, "Not_A_Label"},
	}
	for _, tt := range tests {
		target := tt.target
		if target == "" {
			target = snapshotSource
		}
		inv := parseNamed(t, "new.yaml", target)
		before := inv.State
		s := snapshotOf(t, src)
		if tt.edit != nil {
			tt.edit(s)
		}
		_, err := inv.Restore(s)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Restore error = %v, want one containing %q", tt.name, err, tt.want)
		}
		if diff := cmp.Diff(before, inv.State, meaningOpts); diff != "" {
			t.Errorf("%s: a failed Restore changed the state:\n%s", tt.name, diff)
		}
	}
}

func TestParseSnapshotRejects(t *testing.T) {
	tests := map[string]string{
		"not json":       `snapshot`,
		"wrong kind":     `{"apiVersion":"clusterctl.dev/v1alpha1","kind":"Inventory","state":{"generation":1}}`,
		"object no name": `{"apiVersion":"clusterctl.dev/v1alpha1","kind":"InventorySnapshot","state":{"generation":1,"objects":[{"apiVersion":"v1","kind":"Pod"}]}}`,
		"object array":   `{"apiVersion":"clusterctl.dev/v1alpha1","kind":"InventorySnapshot","state":{"generation":1,"objects":[[]]}}`,
		"negative gen":   `{"apiVersion":"clusterctl.dev/v1alpha1","kind":"InventorySnapshot","state":{"generation":-1}}`,
		"trailing data":  `{"apiVersion":"clusterctl.dev/v1alpha1","kind":"InventorySnapshot","state":{"generation":1}} {}`,
	}
	for name, data := range tests {
		if _, err := ParseSnapshot([]byte(data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSnapshotCounts(t *testing.T) {
	got := parseNamed(t, "src.yaml", snapshotSource).Snapshot().ObjectCounts()
	want := map[string]int{"Secret": 1, "Service": 1, "Pod": 1, "ControllerRevision": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestRestoreIntoNewInventory: an inventory made in code (no parsed file)
// restores too, or refuses; it never drops part of the state silently.
func TestRestoreIntoNewInventory(t *testing.T) {
	src := parseNamed(t, "src.yaml", snapshotSource)
	inv := New("new.yaml", "lab")
	inv.Hosts = src.Hosts
	if _, err := inv.Restore(snapshotOf(t, src)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(src.State, inv.State, meaningOpts); diff != "" {
		t.Errorf("restored state (-snapshot +restored):\n%s", diff)
	}
	// Objects at generation 0 with no host state: a made-in-code inventory
	// does not write them; Restore must say so rather than lose them.
	only := snapshotOf(t, src)
	only.State.Generation, only.State.Hosts = 0, nil
	fresh := New("new.yaml", "lab")
	fresh.Hosts = src.Hosts
	if _, err := fresh.Restore(only); err != nil {
		if !strings.Contains(err.Error(), "would lose data") {
			t.Errorf("Restore error = %v", err)
		}
	} else if len(fresh.State.Objects) != len(only.State.Objects) {
		t.Errorf("Restore kept %d of %d objects", len(fresh.State.Objects), len(only.State.Objects))
	}
}
