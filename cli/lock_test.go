package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clusterctl/clusterctl/agentlet"
	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/playbooks"
	"github.com/clusterctl/clusterctl/reconcile"
	"github.com/clusterctl/clusterctl/remote"
)

func TestLeaseHolder(t *testing.T) {
	h := leaseHolder()
	who, pid, ok := parseHolder(h)
	if !ok || who != writer() || pid != os.Getpid() || !strings.HasSuffix(h, ", run "+runID+")") {
		t.Fatalf("leaseHolder() = %q parses to %q %d %v", h, who, pid, ok)
	}
	for _, bad := range []string{"", "alice@laptop", "alice@laptop (pid x, run ab)", "alice@laptop (pid 12)"} {
		if _, _, ok := parseHolder(bad); ok {
			t.Errorf("parseHolder(%q) accepted", bad)
		}
	}
}

func TestOwnDeadHolder(t *testing.T) {
	// A pid that is surely not running: above the kernel's pid_max.
	dead := 1 << 30
	tests := []struct {
		name   string
		holder string
		want   bool
		why    string
	}{
		{"mine, process gone", fmt.Sprintf("%s (pid %d, run 00ff)", writer(), dead), true, ""},
		{"mine, still running", fmt.Sprintf("%s (pid %d, run 00ff)", writer(), os.Getpid()), false, "still running here"},
		{"someone else's", fmt.Sprintf("bob@elsewhere (pid %d, run 00ff)", dead), false, "not by " + writer()},
		{"not a clusterctl holder", "manual", false, "held by manual"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept := map[string]string{}
			if got := ownDeadHolder(tt.holder, kept, "h1"); got != tt.want || !strings.Contains(kept["h1"], tt.why) {
				t.Errorf("ownDeadHolder = %v, kept %q; want %v, %q", got, kept["h1"], tt.want, tt.why)
			}
		})
	}
}

func TestLeaseTTL(t *testing.T) {
	tests := []struct {
		env  string
		want time.Duration
		ok   bool
	}{
		{"", 60 * time.Second, true},
		{"10s", 10 * time.Second, true},
		{"1s", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		env := &Env{Getenv: func(k string) string {
			if k == EnvLeaseTTL {
				return tt.env
			}
			return ""
		}}
		got, err := leaseTTL(env)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%s=%q: %s, %v; want %s (ok %v)", EnvLeaseTTL, tt.env, got, err, tt.want, tt.ok)
		}
	}
}

// agentletNode is a host whose agentlet commands run the real agentlet
// in-process on a state directory of its own, except `status`, which
// reports a Ready node holding the spec on disk (no daemon runs here).
type agentletNode struct {
	root       string
	statusDown bool // `status` fails (the daemon's answer lost), lease commands work
	mu         sync.Mutex
	cmds       []string
}

func (n *agentletNode) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	n.mu.Lock()
	n.cmds = append(n.cmds, cmd)
	n.mu.Unlock()
	inner, ok := strings.CutPrefix(cmd, fmt.Sprintf("if [ -x %s ]; then exec %s ", nodeapi.BinaryPath, nodeapi.BinaryPath))
	if ok {
		inner, ok = strings.CutSuffix(inner, "; else exit 127; fi")
	} else {
		inner, ok = strings.CutPrefix(cmd, nodeapi.BinaryPath+" ")
	}
	if !ok {
		return nil, fmt.Errorf("unexpected command %q", cmd)
	}
	if inner == "status" && n.statusDown {
		return nil, errors.New("status: connection reset")
	}
	if inner == "status" {
		st := nodeapi.NodeStatus{APIVersion: nodeapi.APIVersion, DaemonRunning: true,
			Conditions:  []nodeapi.Condition{{Type: nodeapi.ConditionReady, Status: nodeapi.True}},
			Allocatable: nodeapi.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, Pods: 110}}
		if data, err := os.ReadFile(filepath.Join(n.root, nodeapi.SpecPath)); err == nil {
			var s nodeapi.NodeSpec
			json.Unmarshal(data, &s)
			st.SpecGeneration, st.SpecWriter = s.Generation, s.Writer
		}
		return json.Marshal(st)
	}
	var args []string
	for _, w := range regexp.MustCompile(`'[^']*'|\S+`).FindAllString(inner, -1) {
		args = append(args, strings.Trim(w, "'"))
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	if code := agentlet.Main(ctx, agentlet.Env{In: stdin, Out: &out, Err: &errb}, append(args, "--root", n.root)); code != 0 {
		return nil, &remote.CommandError{Cmd: cmd, ExitCode: code, Stderr: errb.String()}
	}
	return out.Bytes(), nil
}
func (n *agentletNode) Upload(context.Context, io.Reader, string, os.FileMode) error { return nil }
func (n *agentletNode) TempPath(string) string                                       { return "/tmp/x" }
func (n *agentletNode) Close() error                                                 { return nil }

func (n *agentletNode) commands(word string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, cmd := range n.cmds {
		if strings.Contains(cmd, word) {
			c++
		}
	}
	return c
}

const leaseInventory = `apiVersion: clusterctl.dev/v1alpha1
kind: Inventory
cluster: {name: t}
hosts:
  - {name: h1, address: 10.0.0.1}
  - {name: h2, address: 10.0.0.2}
  - {name: h3, address: 10.0.0.3}
state:
  generation: 1
  hosts:
    h1: {podCIDR: 10.244.0.0/24}
    h2: {podCIDR: 10.244.1.0/24}
    h3: {podCIDR: 10.244.2.0/24}
`

// TestLeaseOnPush: a loop takes the cluster lease only when it pushes,
// before it saves anything; refused, it changes nothing.
func TestLeaseOnPush(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(path, []byte(leaseInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode("pod.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default, uid: 00000000-1111-4111-8111-111111111111}\nspec:\n  containers: [{name: c, image: busybox:1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := reconcile.Store(inv, objs[0]); err != nil {
		t.Fatal(err)
	}
	if err := inventory.Save(inv); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*agentletNode{}
	for _, h := range inv.HostNames() {
		nodes[h] = &agentletNode{root: t.TempDir()}
	}
	fleet := playbooks.Connect(t.Context(), inv.HostNames(), func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }, 4)
	// bob holds the cluster lease.
	other := playbooks.Connect(t.Context(), inv.HostNames(), func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }, 4)
	bob, err := other.AcquireLease(t.Context(), playbooks.LeaseOptions{Holder: "bob@desk (pid 1, run b0b)", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	app := &cli.App{Name: "clusterctl"}
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.Duration("lock-wait", 0, "")
	c := cli.NewContext(app, fs, nil)
	c.Context = t.Context()
	c.Command = &cli.Command{Name: "reconcile"}
	var errb bytes.Buffer
	env := &Env{Out: io.Discard, Err: &errb, Getenv: func(string) string { return "" }}
	loop := func() (*reconcile.Result, error) {
		inv, err := inventory.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		l := newLeaseOnPush(c, env, inv, fleet, time.Now())
		defer l.release()
		res, err := l.run(c.Context, loopOptions(c, inv, nil, false))
		if err == nil && res.Changed() {
			err = inventory.Save(inv)
		}
		return res, err
	}

	before, _ := os.ReadFile(path)
	// No host reports a status: nothing to push to, but a new generation
	// (the specs differ from the none recorded) is still made under the
	// lease only.
	for _, n := range nodes {
		n.statusDown = true
	}
	res, err := loop()
	if !errors.As(err, new(*playbooks.LeaseError)) {
		t.Fatalf("loop without statuses while bob holds the lease: %+v, %v", res, err)
	}
	for _, n := range nodes {
		n.statusDown = false
	}
	_, err = loop()
	var le *playbooks.LeaseError
	if !errors.As(err, &le) || le.Holder != "bob@desk (pid 1, run b0b)" {
		t.Fatalf("loop while bob holds the lease: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a loop refused the lease saved the inventory")
	}
	for name, n := range nodes {
		if n.commands(" apply") != 0 {
			t.Errorf("%s was pushed to without the lease", name)
		}
	}

	// Bob is done: the loop takes the lease, pushes, saves and gives it back.
	if err := bob.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	res, err = loop()
	if err != nil || !res.Bumped || len(res.Bindings) != 1 {
		t.Fatalf("loop: %+v, %v", res, err)
	}
	for name, n := range nodes {
		// Acquires: bob's, the two refused loops', this loop's; releases:
		// bob's and this loop's.
		if n.commands(" apply") != 1 || n.commands("lease acquire") != 4 || n.commands("lease release") != 2 {
			t.Errorf("%s: %d applies, %d acquires, %d releases; want 1, 4, 2", name,
				n.commands(" apply"), n.commands("lease acquire"), n.commands("lease release"))
		}
	}
	for _, l := range fleet.ShowLeases(t.Context()) {
		if l.Lease != nil {
			t.Errorf("%s: lease left after the loop: %+v", l.Host, l.Lease)
		}
	}

	// Converged: no lease at all.
	acquires := nodes["h1"].commands("lease acquire")
	res, err = loop()
	if err != nil || res.Changed() || nodes["h1"].commands("lease acquire") != acquires {
		t.Errorf("converged loop: changed %v, %v, acquires %d → %d", res.Changed(), err, acquires, nodes["h1"].commands("lease acquire"))
	}
}
