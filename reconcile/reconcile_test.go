package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/playbooks"
)

// fakeNode answers `agentlet status` and `agentlet apply` like a Ready node.
type fakeNode struct {
	mu      sync.Mutex
	name    string
	held    *nodeapi.NodeSpec
	applies int
}

func (n *fakeNode) Run(_ context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case strings.Contains(cmd, " status"):
		st := nodeapi.NodeStatus{APIVersion: nodeapi.APIVersion, DaemonRunning: true,
			Conditions:  []nodeapi.Condition{{Type: nodeapi.ConditionReady, Status: nodeapi.True}},
			Allocatable: nodeapi.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, Pods: 110}}
		if n.held != nil {
			st.SpecGeneration = n.held.Generation
		}
		return json.Marshal(st)
	case strings.HasSuffix(cmd, " apply"):
		spec, err := nodeapi.DecodeNodeSpec(stdin)
		if err != nil {
			return nil, err
		}
		if err := nodeapi.CheckFence(n.held, spec); err != nil {
			return nil, err
		}
		n.applies++
		if nodeapi.SameContent(n.held, spec) {
			return []byte("unchanged\n"), nil
		}
		n.held = spec
		return []byte("applied\n"), nil
	}
	return nil, fmt.Errorf("unexpected command %q", cmd)
}
func (n *fakeNode) Upload(context.Context, io.Reader, string, os.FileMode) error { return nil }
func (n *fakeNode) TempPath(string) string                                       { return "/tmp/x" }
func (n *fakeNode) Close() error                                                 { return nil }

const inv = `apiVersion: clusterctl.dev/v1alpha1
kind: Inventory
cluster: {name: t}
hosts:
  - {name: h1, address: 10.0.0.1}
  - {name: h2, address: 10.0.0.2}
state:
  generation: 1
  hosts:
    h1: {podCIDR: 10.244.0.0/24}
    h2: {podCIDR: 10.244.1.0/24}
`

const pods = `apiVersion: v1
kind: Pod
metadata: {name: a, namespace: default}
spec:
  containers: [{name: c, image: busybox:1, resources: {requests: {cpu: 1500m}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: default}
spec:
  containers: [{name: c, image: busybox:1, resources: {requests: {cpu: 1500m}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: huge, namespace: default}
spec:
  containers: [{name: c, image: busybox:1, resources: {requests: {cpu: "8"}}}]
`

func TestRunSchedulesPushesAndSettles(t *testing.T) {
	in, err := inventory.Parse("c.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode("pods.yaml", []byte(pods))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		// apply assigns identities; Decode drops user-set ones.
		o.Obj.(*corev1.Pod).UID = types.UID(fmt.Sprintf("%08d-1111-4111-8111-111111111111", i))
		if err := Store(in, o); err != nil {
			t.Fatal(err)
		}
	}
	nodes := map[string]*fakeNode{"h1": {name: "h1"}, "h2": {name: "h2"}}
	dial := func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }
	now := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)

	fleet := playbooks.Connect(context.Background(), in.HostNames(), dial, 4)
	res, err := Run(context.Background(), in, fleet, Options{Writer: "me@test", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.PodErrors) > 0 {
		t.Fatalf("pod errors: %v", res.PodErrors)
	}
	// a and b need 1.5 cores each on 1.9-core nodes: one per node.
	if len(res.Bindings) != 2 || res.Bindings["default/a"] == res.Bindings["default/b"] {
		t.Errorf("bindings = %v, want a and b on different nodes", res.Bindings)
	}
	if u, ok := res.Unschedulable["default/huge"]; !ok || !strings.Contains(u.Message, "Insufficient cpu") {
		t.Errorf("huge: %+v", res.Unschedulable)
	}
	if !res.Bumped || res.Generation != 2 || in.State.Generation != 2 {
		t.Errorf("generation: bumped=%v res=%d inv=%d, want 2", res.Bumped, res.Generation, in.State.Generation)
	}
	for name, n := range nodes {
		if n.held == nil || n.held.Generation != 2 || len(n.held.Pods) != 1 {
			t.Errorf("%s holds %+v, want generation 2 with one pod", name, n.held)
		}
		if in.HostState(name).SpecSHA256 == "" {
			t.Errorf("%s: spec checksum not recorded", name)
		}
	}
	p, _ := Load(in)
	if a, _ := p.Pod("default", "a"); a.Spec.NodeName == "" {
		t.Error("binding not stored in the inventory")
	}

	// A second loop with nothing new changes nothing and pushes nothing.
	res, err = Run(context.Background(), in, fleet, Options{Writer: "me@test", Now: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() || len(res.Pushed) != 0 || in.State.Generation != 2 {
		t.Errorf("second loop: changed=%v pushed=%v generation=%d", res.Changed(), res.Pushed, in.State.Generation)
	}

	// Dry run plans without touching nodes or the inventory.
	in.DeleteObject("Pod", "default", "a")
	before := nodes["h1"].applies + nodes["h2"].applies
	res, err = Run(context.Background(), in, fleet, Options{Writer: "me@test", Now: now, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Bumped || in.State.Generation != 2 || nodes["h1"].applies+nodes["h2"].applies != before {
		t.Errorf("dry run: bumped=%v generation=%d applies %d→%d", res.Bumped, in.State.Generation, before, nodes["h1"].applies+nodes["h2"].applies)
	}
}

func TestCordonedHostTakesNoNewPods(t *testing.T) {
	in, err := inventory.Parse("c.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	hs := in.HostState("h1")
	hs.Unschedulable = true
	in.SetHostState("h1", hs)
	objs, err := manifest.Decode("pods.yaml", []byte(pods))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		o.Obj.(*corev1.Pod).UID = types.UID(fmt.Sprintf("%08d-1111-4111-8111-111111111111", i))
		if err := Store(in, o); err != nil {
			t.Fatal(err)
		}
	}
	nodes := map[string]*fakeNode{"h1": {name: "h1"}, "h2": {name: "h2"}}
	dial := func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }
	fleet := playbooks.Connect(context.Background(), in.HostNames(), dial, 4)
	res, err := Run(context.Background(), in, fleet, Options{Writer: "me@test", Now: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	for k, node := range res.Bindings {
		if node == "h1" {
			t.Errorf("%s bound to cordoned h1", k)
		}
	}
	// a or b fits on h2 (1.5 of 1.9 cores); the other must wait, saying why.
	if len(res.Bindings) != 1 || !strings.Contains(res.Unschedulable["default/huge"].Message, "node(s) were unschedulable") {
		t.Errorf("bindings %v, unschedulable %+v", res.Bindings, res.Unschedulable)
	}
}
