package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/agentlet"
	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/playbooks"
)

const recoverInventory = `apiVersion: clusterctl.dev/v1alpha1
kind: Inventory
cluster: {name: lab}
hosts:
  - {name: h1, address: 10.250.0.11}
  - {name: h2, address: 10.250.0.12}
`

func TestRecoverHosts(t *testing.T) {
	inv, err := inventory.Parse("new.yaml", []byte(recoverInventory))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from []string
		want string
		ok   bool
	}{
		{nil, "h1,h2", true},
		{[]string{"h2"}, "h2", true},
		{[]string{"h2,h1", "h2"}, "h2,h1", true},
		{[]string{"h3"}, "", false},
		{[]string{","}, "", false},
	}
	for _, tt := range tests {
		got, err := recoverHosts(inv, tt.from)
		if (err == nil) != tt.ok || strings.Join(got, ",") != tt.want {
			t.Errorf("recoverHosts(%q) = %q, %v; want %q ok=%v", tt.from, got, err, tt.want, tt.ok)
		}
	}
}

// TestPrintRecovery restores a snapshot into a fresh inventory and checks
// the summary names the generation, the winner, the hosts that disagree,
// the objects by kind and the hosts' allocations.
func TestPrintRecovery(t *testing.T) {
	src, err := inventory.Parse("old.yaml", []byte(recoverInventory+`state:
  generation: 9
  hosts:
    h1: {podCIDR: 10.244.0.0/24, internalIP: 10.250.0.11, specSHA256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
    h3: {podCIDR: 10.244.2.0/24}
  objects:
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: default}}
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: b, namespace: default}}
    - {apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: default}}
`))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	stored, err := playbooks.NewStoredSnapshot(src.Snapshot(), "ann@laptop", at)
	if err != nil {
		t.Fatal(err)
	}
	choice := playbooks.ChooseSnapshot([]playbooks.SnapshotResult{
		{Host: "h1", Snapshot: &stored}, {Host: "h2", Snapshot: &playbooks.StoredSnapshot{Generation: 8, SHA256: "x", Writer: "bob@ci", WrittenAt: at}}})
	snap, err := choice.Chosen.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("new.yaml", []byte(recoverInventory))
	if err != nil {
		t.Fatal(err)
	}
	diffs, err := inv.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	printRecovery(&Env{Out: &out, Err: &errb}, inv, choice, snap, diffs, false)
	for _, want := range []string{
		"recovered generation 9 from h1: written by ann@laptop at 2026-11-21T22:00:00Z\n",
		"objects: 3 (2 ConfigMap, 1 Deployment)\n",
		"  h1: podCIDR 10.244.0.0/24, internalIP 10.250.0.11\n",
		"  h3: podCIDR 10.244.2.0/24, no spec recorded\n",
		"wrote the state of new.yaml",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	for _, want := range []string{
		"h2: holds older generation 8, written by bob@ci",
		"warning: host h3 is in the snapshot but not in hosts",
		"warning: host h2 has no recorded state in the snapshot",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
}

func TestRaiseGeneration(t *testing.T) {
	src, err := inventory.Parse("old.yaml", []byte(recoverInventory+`state:
  generation: 4
  hosts:
    h1: {podCIDR: 10.244.0.0/24, specSHA256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
`))
	if err != nil {
		t.Fatal(err)
	}
	snap := src.Snapshot()
	raiseGeneration(snap, 6)
	if hs := snap.State.Hosts["h1"]; snap.State.Generation != 6 || hs.SpecSHA256 != "" || hs.PodCIDR.String() != "10.244.0.0/24" {
		t.Errorf("raised snapshot: generation %d, h1 %+v", snap.State.Generation, hs)
	}
	if src.HostState("h1").SpecSHA256 == "" {
		t.Error("raiseGeneration changed the inventory the snapshot was taken from")
	}
}

// agentletHost runs agentlet commands in-process, its state under root.
type agentletHost struct {
	root string
	down bool
}

func (h *agentletHost) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	if h.down {
		return nil, errors.New("connection lost")
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	args := append(strings.Fields(strings.TrimPrefix(cmd, nodeapi.BinaryPath+" ")), "--root", h.root)
	if code := agentlet.Main(ctx, agentlet.Env{In: stdin, Out: &out, Err: &errb}, args); code != 0 {
		return nil, fmt.Errorf("exit %d: %s", code, errb.String())
	}
	return out.Bytes(), nil
}
func (h *agentletHost) Upload(context.Context, io.Reader, string, os.FileMode) error { return nil }
func (h *agentletHost) TempPath(string) string                                       { return "/tmp/x" }
func (h *agentletHost) Close() error                                                 { return nil }

// TestRecordState: a command that changes the state outside a loop (up,
// cordon) leaves the snapshot and its audit record on the hosts, and a
// host that cannot take it is a warning.
func TestRecordState(t *testing.T) {
	inv, err := inventory.Parse("c.yaml", []byte(recoverInventory+"state:\n  generation: 3\n  hosts:\n    h1: {podCIDR: 10.244.0.0/24, unschedulable: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]*agentletHost{"h1": {root: t.TempDir()}, "h2": {root: t.TempDir(), down: true}}
	fleet := playbooks.Connect(t.Context(), inv.HostNames(), func(_ context.Context, n string) (playbooks.Host, error) { return hosts[n], nil }, 2)
	var errb bytes.Buffer
	env := &Env{Out: &bytes.Buffer{}, Err: &errb}
	app := &cli.App{Name: "clusterctl", Writer: env.Out, ErrWriter: env.Err, Commands: []*cli.Command{{Name: "cordon",
		Action: func(c *cli.Context) error {
			recordState(c, env, inv, fleet, []string{"h1", "h2"}, playbooks.AuditChange{Action: "cordoned", Kind: "Node", Name: "h1"})
			return nil
		}}}}
	if err := app.Run([]string{"clusterctl", "cordon", "h1"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "warning: h2: could not record") {
		t.Errorf("no warning for h2: %q", errb.String())
	}
	got := fleet.GetSnapshots(t.Context(), []string{"h1"})
	if got[0].Err != nil || got[0].Snapshot == nil || got[0].Snapshot.Generation != 3 {
		t.Fatalf("h1 holds %+v", got[0])
	}
	snap, err := got[0].Snapshot.Snapshot()
	if err != nil || !snap.State.Hosts["h1"].Unschedulable {
		t.Errorf("h1 snapshot %+v, %v: want h1 cordoned", snap, err)
	}
	trail := fleet.AuditTrail(t.Context(), []string{"h1"}, 0)
	if len(trail[0].Records) != 1 || strings.Join(trail[0].Records[0].Command, " ") != "clusterctl cordon h1" || trail[0].Records[0].Changes[0].Action != "cordoned" {
		t.Errorf("h1 audit = %+v", trail[0])
	}
}
