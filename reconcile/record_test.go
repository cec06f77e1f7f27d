package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/agentlet"
	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/playbooks"
)

// recordingNode is a fakeNode whose snapshot and audit commands run the
// real agentlet, its state under root, and that counts its commands.
type recordingNode struct {
	*fakeNode
	root string
	cmds []string
}

func (n *recordingNode) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	n.cmds = append(n.cmds, cmd)
	fields := strings.Fields(cmd)
	if len(fields) < 2 || (fields[1] != "snapshot" && fields[1] != "audit") {
		return n.fakeNode.Run(ctx, cmd, stdin)
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	if code := agentlet.Main(ctx, agentlet.Env{In: stdin, Out: &out, Err: &errb}, append(fields[1:], "--root", n.root)); code != 0 {
		return nil, fmt.Errorf("%s: exit %d: %s", cmd, code, errb.String())
	}
	return out.Bytes(), nil
}

func (n *recordingNode) count(word string) int {
	c := 0
	for _, cmd := range n.cmds {
		if strings.Contains(cmd, " "+word+" ") {
			c++
		}
	}
	return c
}

func recordingFleet(t *testing.T, in *inventory.Inventory, nodes map[string]*recordingNode) *playbooks.Fleet {
	dial := func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }
	return playbooks.Connect(t.Context(), in.HostNames(), dial, 4)
}

// heldSnapshot reads what a node holds, as `clusterctl recover` does.
func heldSnapshot(t *testing.T, in *inventory.Inventory, nodes map[string]*recordingNode, host string) *inventory.Snapshot {
	t.Helper()
	res := recordingFleet(t, in, nodes).GetSnapshots(t.Context(), []string{host})
	if res[0].Err != nil || res[0].Snapshot == nil {
		t.Fatalf("%s holds no snapshot: %v", host, res[0].Err)
	}
	s, err := res[0].Snapshot.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRunRecordsChanges checks that a loop that changes something leaves a
// snapshot of the inventory's state and an audit record on every node, that
// a loop that changes nothing costs no extra round trip, that a command's
// own changes are recorded even when its loop changes nothing else, and
// that an inventory recovered from a node's snapshot is converged.
func TestRunRecordsChanges(t *testing.T) {
	in, err := inventory.Parse("c.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
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
	nodes := map[string]*recordingNode{}
	for _, h := range in.HostNames() {
		nodes[h] = &recordingNode{fakeNode: &fakeNode{name: h}, root: t.TempDir()}
	}
	fleet := recordingFleet(t, in, nodes)
	now := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	apply := &playbooks.AuditRecord{Command: []string{"clusterctl", "apply", "-f", "pods.yaml"}}

	// 1. Pods are bound and pushed: recorded on both nodes.
	res, err := Run(t.Context(), in, fleet, Options{Writer: "me@test", Now: now, Seed: "s1", Audit: apply})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Recorded) != 2 {
		t.Fatalf("recorded on %d nodes, want 2: %+v", len(res.Recorded), res.Recorded)
	}
	for _, r := range res.Recorded {
		if r.Err != nil || !r.Changed {
			t.Errorf("record on %s: %+v", r.Host, r)
		}
	}
	want, _ := in.Snapshot().Marshal()
	for h := range nodes {
		if got, _ := heldSnapshot(t, in, nodes, h).Marshal(); !bytes.Equal(got, want) {
			t.Errorf("%s holds a snapshot that is not the inventory's state:\n%s\nwant:\n%s", h, got, want)
		}
	}
	trail := fleet.AuditTrail(t.Context(), []string{"h1", "h2"}, 0)
	merged := playbooks.MergeAudit(trail)
	if len(merged) != 1 || len(merged[0].Hosts) != 2 {
		t.Fatalf("audit = %+v, want one record on both nodes", merged)
	}
	rec := merged[0]
	if rec.Generation != 2 || rec.Writer != "me@test" || !rec.Time.Equal(now) || strings.Join(rec.Command, " ") != "clusterctl apply -f pods.yaml" {
		t.Errorf("record = %+v", rec.AuditRecord)
	}
	if got := rec.Summary(); got != "2 bound; 2 nodes updated" {
		t.Errorf("record summary = %q", got)
	}

	// 2. Nothing new: no snapshot round trip.
	before := nodes["h1"].count("snapshot") + nodes["h2"].count("snapshot")
	res, err = Run(t.Context(), in, fleet, Options{Writer: "me@test", Now: now.Add(time.Minute), Seed: "s2",
		Audit: &playbooks.AuditRecord{Command: []string{"clusterctl", "reconcile"}}})
	if err != nil {
		t.Fatal(err)
	}
	after := nodes["h1"].count("snapshot") + nodes["h2"].count("snapshot")
	if res.Changed() || res.Recorded != nil || after != before {
		t.Errorf("no-op loop: changed=%v recorded=%+v snapshot commands %d→%d", res.Changed(), res.Recorded, before, after)
	}

	// 3. A command that changed objects no node needs (an unused
	// ConfigMap) is recorded although the generation stays.
	cm, err := manifest.Decode("cm.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unused, namespace: default}\ndata: {a: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Store(in, cm[0]); err != nil {
		t.Fatal(err)
	}
	created := &playbooks.AuditRecord{Command: []string{"clusterctl", "apply", "-f", "cm.yaml"}}
	created.Add(playbooks.AuditChange{Action: playbooks.ActionCreated, Kind: "ConfigMap", Namespace: "default", Name: "unused"})
	res, err = Run(t.Context(), in, fleet, Options{Writer: "me@test", Now: now.Add(2 * time.Minute), Seed: "s3", Audit: created})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bumped || len(res.Recorded) != 2 || res.Recorded[0].Err != nil {
		t.Fatalf("command with changes: bumped=%v recorded=%+v", res.Bumped, res.Recorded)
	}
	held := heldSnapshot(t, in, nodes, "h2")
	if held.State.Generation != 2 || held.ObjectCounts()["ConfigMap"] != 1 {
		t.Errorf("h2 snapshot: generation %d, objects %v; want the ConfigMap at generation 2", held.State.Generation, held.ObjectCounts())
	}
	if merged := playbooks.MergeAudit(fleet.AuditTrail(t.Context(), []string{"h1", "h2"}, 0)); len(merged) != 2 || merged[0].Changes[0].Name != "unused" {
		t.Errorf("audit after the ConfigMap = %+v", merged)
	}

	// 4. Recover: a new inventory with the user's part only, restored from
	// a node's snapshot, is converged.
	fresh, err := inventory.Parse("new.yaml", []byte(inv[:strings.Index(inv, "state:")]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Restore(held); err != nil {
		t.Fatal(err)
	}
	res, err = Run(t.Context(), fresh, recordingFleet(t, fresh, nodes), Options{Writer: "other@test", Now: now.Add(3 * time.Minute), Seed: "s4"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() || len(res.Pushed) != 0 {
		data, _ := json.Marshal(res.Controllers.Delete)
		t.Errorf("loop after recover changed something: bumped=%v bindings=%v pushed=%+v deletes=%s", res.Bumped, res.Bindings, res.Pushed, data)
	}
}

// BenchmarkSnapshot measures the snapshot of a cluster of about 1,000
// stored objects, made by the real controllers (100 Deployments of 5
// replicas with a ConfigMap and a Service each: Deployments, ReplicaSets,
// pods, ConfigMaps, Services): its size, raw and compressed, and the time
// to export and compress it.
func BenchmarkSnapshot(b *testing.B) {
	var text strings.Builder
	text.WriteString("apiVersion: clusterctl.dev/v1alpha1\nkind: Inventory\ncluster: {name: t}\nhosts:\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&text, "  - {name: h%d, address: 10.0.0.%d}\n", i, i)
	}
	text.WriteString("state:\n  generation: 1\n  hosts:\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&text, "    h%d: {podCIDR: 10.244.%d.0/24}\n", i, i)
	}
	in, err := inventory.Parse("c.yaml", []byte(text.String()))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		objs, err := manifest.Decode("app.yaml", []byte(fmt.Sprintf(benchApp, i)))
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range objs {
			if err := Store(in, o); err != nil {
				b.Fatal(err)
			}
		}
	}
	nodes := map[string]*recordingNode{}
	for _, h := range in.HostNames() {
		nodes[h] = &recordingNode{fakeNode: &fakeNode{name: h}, root: b.TempDir()}
	}
	fleet := playbooks.Connect(context.Background(), in.HostNames(), func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }, 8)
	for i := 0; i < 3; i++ { // Deployment → ReplicaSet → pods
		if _, err := Run(context.Background(), in, fleet, Options{Writer: "me@test", Now: time.Date(2026, 11, 21, 22, 0, i, 0, time.UTC), Seed: fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
	}
	counts := in.Snapshot().ObjectCounts()
	total := 0
	for _, n := range counts {
		total += n
	}
	b.ResetTimer()
	var stored playbooks.StoredSnapshot
	for b.Loop() {
		if stored, err = playbooks.NewStoredSnapshot(in.Snapshot(), "me@test", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total), "objects")
	b.ReportMetric(float64(stored.Size), "raw-bytes")
	b.ReportMetric(float64(len(stored.Data)), "gzip-bytes")
	b.Logf("objects by kind: %v", counts)
}

const benchApp = `apiVersion: v1
kind: ConfigMap
metadata: {name: app%[1]d-config, namespace: default}
data: {app.conf: "listen 8080\nworkers 4\nlog info\n"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app%[1]d, namespace: default, labels: {app: app%[1]d, tier: web}}
spec:
  replicas: 5
  selector: {matchLabels: {app: app%[1]d}}
  template:
    metadata: {labels: {app: app%[1]d, tier: web}}
    spec:
      containers:
      - name: web
        image: registry.example/team/app%[1]d:1.4.2
        command: [httpd, -f, -p, "8080"]
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 5}
        resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 64Mi}}
        volumeMounts: [{name: config, mountPath: /etc/app}]
      volumes: [{name: config, configMap: {name: app%[1]d-config}}]
---
apiVersion: v1
kind: Service
metadata: {name: app%[1]d, namespace: default}
spec:
  selector: {app: app%[1]d}
  ports: [{port: 80, targetPort: http}]
`
