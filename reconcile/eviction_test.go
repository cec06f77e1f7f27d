package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/playbooks"
)

// runningNode is a fakeNode that reports every pod of its spec as running
// and ready, and can be switched off.
type runningNode struct {
	fakeNode
	down bool
}

func (n *runningNode) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	if n.down {
		return nil, errors.New("ssh: connection lost")
	}
	out, err := n.fakeNode.Run(ctx, cmd, stdin)
	if err != nil || !strings.Contains(cmd, " status") || n.held == nil {
		return out, err
	}
	var st nodeapi.NodeStatus
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, err
	}
	for _, p := range n.held.Pods {
		st.Pods = append(st.Pods, nodeapi.PodStatus{UID: p.UID, Namespace: p.Namespace, Name: p.Name, Phase: "Running",
			Conditions: []nodeapi.Condition{{Type: "Ready", Status: nodeapi.True}}})
	}
	return json.Marshal(st)
}

const lostHostObjects = `apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      affinity:
        nodeAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              preference: {matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [h1]}]}
      containers: [{name: c, image: busybox:1}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      nodeSelector: {kubernetes.io/hostname: h1}
      containers: [{name: c, image: busybox:1}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: c, image: busybox:1}]
`

// TestLostHostPodsAreReplaced: a host that stops answering keeps its pods
// until the eviction timeout; then its ReplicaSet pod is replaced on the
// other host, its StatefulSet pod waits (being deleted) and its DaemonSet
// pod stays; when the host answers again it is told to stop the replaced
// pods, and their objects go once it runs them no more.
func TestLostHostPodsAreReplaced(t *testing.T) {
	in, err := inventory.Parse("c.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	in.Cluster.PodEvictionTimeout = time.Minute
	objs, err := manifest.Decode("objs.yaml", []byte(lostHostObjects))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := Store(in, o); err != nil {
			t.Fatal(err)
		}
	}
	nodes := map[string]*runningNode{"h1": {fakeNode: fakeNode{name: "h1"}}, "h2": {fakeNode: fakeNode{name: "h2"}}}
	dial := func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }
	fleet := playbooks.Connect(context.Background(), in.HostNames(), dial, 4)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	loop := func(at time.Duration) *Result {
		t.Helper()
		res, err := Run(context.Background(), in, fleet, Options{Writer: "me@test", Now: now.Add(at), Seed: at.String()})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	podsOn := func() map[string][]string {
		cl, err := Load(in)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, p := range cl.Pods {
			state := p.Spec.NodeName
			if p.DeletionTimestamp != nil {
				state += " (deleting)"
			}
			out[p.Labels["app"]] = append(out[p.Labels["app"]], state)
		}
		return out
	}
	for i := 0; i < 3; i++ {
		loop(time.Duration(i) * time.Second)
	}
	// db is pinned to h1, web prefers it: both run on the host that fails.
	lost, other := "h1", "h2"
	if before := podsOn(); len(before["web"]) != 1 || before["web"][0] != lost || len(before["db"]) != 1 || before["db"][0] != lost || len(before["agent"]) != 2 {
		t.Fatalf("before the failure: %v", before)
	}
	nodes[lost].down = true

	res := loop(10 * time.Second)
	if got := in.HostState(lost).NotReadySince; !got.Equal(now.Add(10 * time.Second)) {
		t.Errorf("notReadySince = %v, want the first loop that lost the host", got)
	}
	if after := podsOn(); len(after["web"]) != 1 || after["web"][0] != lost || len(after["db"]) != 1 || after["db"][0] != lost {
		t.Errorf("within the timeout: pods %v; want nothing moved", after)
	}
	for _, o := range res.Controllers.Put {
		if o.GetObjectKind().GroupVersionKind().Kind == "Pod" {
			t.Errorf("within the timeout: pod %s changed", o.GetName())
		}
	}

	loop(80 * time.Second) // lost since 10 s, timeout 1 min
	after := podsOn()
	want := map[string]bool{lost + " (deleting)": true, other: true}
	if len(after["web"]) != 2 || !want[after["web"][0]] || !want[after["web"][1]] || after["web"][0] == after["web"][1] {
		t.Errorf("web after the timeout = %v, want the lost pod deleting and a replacement on %s", after["web"], other)
	}
	if len(after["db"]) != 1 || after["db"][0] != lost+" (deleting)" {
		t.Errorf("db after the timeout = %v, want its one pod deleting, not replaced", after["db"])
	}
	if len(after["agent"]) != 2 || strings.Contains(strings.Join(after["agent"], ","), "deleting") {
		t.Errorf("agent after the timeout = %v, want both DaemonSet pods kept", after["agent"])
	}
	for _, p := range nodes[other].held.Pods {
		if strings.HasPrefix(p.Name, "db-") {
			t.Errorf("the StatefulSet pod was started on %s while its old one may still run", other)
		}
	}

	// The host answers again: the loop pushes it a spec without the evicted
	// pods (it still reports them, so they stay until it stops them)...
	nodes[lost].down = false
	loop(90 * time.Second)
	for _, p := range nodes[lost].held.Pods {
		if strings.HasPrefix(p.Name, "web-") || strings.HasPrefix(p.Name, "db-") {
			t.Errorf("%s is still in the returned host's spec", p.Name)
		}
	}
	if !in.HostState(lost).NotReadySince.IsZero() {
		t.Error("notReadySince kept after the host answered")
	}
	// ...then they are gone, and the StatefulSet makes its pod again.
	loop(100 * time.Second)
	loop(110 * time.Second)
	final := podsOn()
	if len(final["web"]) != 1 || final["web"][0] != other || len(final["db"]) != 1 || strings.Contains(final["db"][0], "deleting") {
		t.Errorf("after the host returned: %v, want web on %s only and db re-created", final, other)
	}
}

// TestRunRecordsBeforePushing: the new generation and what each host is
// given are saved before the first host takes them, so a run killed
// mid-push leaves an inventory the next run (and fencing) agrees with.
func TestRunRecordsBeforePushing(t *testing.T) {
	in, err := inventory.Parse("c.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode("objs.yaml", []byte(lostHostObjects))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := Store(in, o); err != nil {
			t.Fatal(err)
		}
	}
	nodes := map[string]*runningNode{"h1": {fakeNode: fakeNode{name: "h1"}}, "h2": {fakeNode: fakeNode{name: "h2"}}}
	dial := func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }
	fleet := playbooks.Connect(context.Background(), in.HostNames(), dial, 4)
	saves := 0
	before := func() error {
		saves++
		for name, n := range nodes {
			if n.applies != 0 {
				t.Errorf("%s was pushed before the inventory was saved", name)
			}
			if in.HostState(name).SpecSHA256 == "" || in.State.Generation != 2 {
				t.Errorf("saved without %s's new spec or generation: %+v, generation %d", name, in.HostState(name), in.State.Generation)
			}
		}
		return nil
	}
	res, err := Run(context.Background(), in, fleet, Options{Writer: "me@test", Now: time.Unix(1e9, 0), Seed: "s", BeforePush: before})
	if err != nil {
		t.Fatal(err)
	}
	if saves != 1 || len(res.Pushed) != 2 || nodes["h1"].applies != 1 {
		t.Errorf("saves %d, pushed %v, h1 applies %d; want one save, then both pushed", saves, res.Pushed, nodes["h1"].applies)
	}
	// A failing save stops the run before any host changes.
	in.DeleteObject("DaemonSet", "default", "agent")
	_, err = Run(context.Background(), in, fleet, Options{Writer: "me@test", Now: time.Unix(1e9+60, 0), Seed: "t",
		BeforePush: func() error { return errors.New("disk full") }})
	if err == nil || !strings.Contains(err.Error(), "disk full") || nodes["h1"].applies != 1 {
		t.Errorf("failed save: err %v, h1 applies %d; want the error and no push", err, nodes["h1"].applies)
	}
}
