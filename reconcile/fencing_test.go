package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/manifest"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/playbooks"
)

func TestCheckFencing(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 1, 2, 0, time.UTC)
	// The inventory is at generation 7; it recorded content "A" for h1 and
	// nothing for h2.
	newInv := func(t *testing.T) *inventory.Inventory {
		in, err := inventory.Parse("c.yaml", []byte(inv))
		if err != nil {
			t.Fatal(err)
		}
		in.State.Generation = 7
		hs := in.HostState("h1")
		hs.SpecSHA256 = "A"
		in.SetHostState("h1", hs)
		return in
	}
	held := func(gen int64, sha, writer string) playbooks.HeldSpec {
		return playbooks.HeldSpec{Generation: gen, Writer: writer, WrittenAt: at, ContentSHA256: sha}
	}
	tests := []struct {
		name     string
		held     map[string]playbooks.HeldSpec
		host     string // "" for no refusal
		gen      int64
		diverged bool
	}{
		{"nothing held", nil, "", 0, false},
		{"same generation and content", map[string]playbooks.HeldSpec{"h1": held(7, "A", "bob@desk")}, "", 0, false},
		{"older generations", map[string]playbooks.HeldSpec{"h1": held(6, "B", "bob@desk"), "h2": held(1, "C", "bob@desk")}, "", 0, false},
		{"newer generation", map[string]playbooks.HeldSpec{"h1": held(7, "A", "me@here"), "h2": held(8, "B", "bob@desk")}, "h2", 8, false},
		{"newer generation, same content, same writer", map[string]playbooks.HeldSpec{"h1": held(8, "A", "me@here")}, "h1", 8, false},
		{"newest named among several", map[string]playbooks.HeldSpec{"h1": held(9, "B", "bob@desk"), "h2": held(8, "B", "bob@desk")}, "h1", 9, false},
		{"same generation, other content, other writer", map[string]playbooks.HeldSpec{"h1": held(7, "B", "bob@desk")}, "h1", 7, true},
		{"same generation, other content, this writer (own lost answer)", map[string]playbooks.HeldSpec{"h1": held(7, "B", "me@here")}, "", 0, false},
		{"same generation, nothing recorded for the host", map[string]playbooks.HeldSpec{"h2": held(7, "B", "bob@desk")}, "", 0, false},
		{"same generation, content unknown (status only)", map[string]playbooks.HeldSpec{"h1": {Generation: 7, Writer: "bob@desk"}}, "", 0, false},
		{"newer beats diverged", map[string]playbooks.HeldSpec{"h1": held(7, "B", "bob@desk"), "h2": held(8, "B", "bob@desk")}, "h2", 8, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFencing(newInv(t), tt.held, "me@here")
			var fe *FencedError
			if tt.host == "" {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if !errors.As(err, &fe) || fe.Host != tt.host || fe.Held.Generation != tt.gen || fe.Diverged != tt.diverged || fe.Generation != 7 {
				t.Fatalf("err = %#v, want a FencedError for %s at generation %d (diverged %v)", err, tt.host, tt.gen, tt.diverged)
			}
			msg := err.Error()
			for _, want := range []string{tt.host + " holds", "written by " + tt.held[tt.host].Writer, at.Local().Format(time.DateTime),
				"c.yaml", "Nothing was changed", "clusterctl recover --from " + tt.host} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q: %s", want, msg)
				}
			}
		})
	}
}

func TestHeldSpecs(t *testing.T) {
	nodes := map[string]*fakeNode{"h1": {name: "h1"}, "h2": {name: "h2"}, "h3": {name: "h3"}}
	dial := func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }
	fleet := playbooks.Connect(context.Background(), []string{"h1", "h2", "h3"}, dial, 4)
	spec := nodeapi.NodeSpec{APIVersion: nodeapi.APIVersion, NodeName: "h1", Generation: 4, Writer: "me@here",
		Cluster: nodeapi.ClusterInfo{Name: "t", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}, PodCIDR: "10.244.0.0/24"}
	if res := fleet.Push(context.Background(), map[string]nodeapi.NodeSpec{"h1": spec}, []string{"h1"}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	obs := []playbooks.Observation{
		{Host: "h1", Status: &nodeapi.NodeStatus{SpecGeneration: 3, SpecWriter: "old@x"}}, // lags behind the push
		{Host: "h2", Status: &nodeapi.NodeStatus{SpecGeneration: 5, SpecWriter: "bob@desk"}},
		{Host: "h3"}, // unreachable: nothing known
	}
	got := HeldSpecs(fleet, obs)
	if h1 := got["h1"]; h1.Generation != 4 || h1.Writer != "me@here" || h1.ContentSHA256 != nodeapi.ContentSHA256(&spec) {
		t.Errorf("h1 = %+v, want what was pushed", h1)
	}
	if h2 := got["h2"]; h2.Generation != 5 || h2.Writer != "bob@desk" || h2.ContentSHA256 != "" {
		t.Errorf("h2 = %+v, want the status' generation and writer", h2)
	}
	if _, ok := got["h3"]; ok || len(got) != 2 {
		t.Errorf("held = %+v, want h1 and h2 only", got)
	}
}

// TestContentSHA256SurvivesTheWire checks that the checksum the CLI records
// for a spec equals the one agentlet computes from the JSON it was sent
// (lenient decoding, as `agentlet lease acquire` does), for specs with
// pods and services: fencing compares the two.
func TestContentSHA256SurvivesTheWire(t *testing.T) {
	in, cl := fencingCluster(t)
	specs, podErrs := Desired(in, cl, DesiredInput{Generation: 3, Writer: "me@here", Now: time.Unix(1e9, 0)})
	if len(podErrs) > 0 {
		t.Fatal(podErrs)
	}
	if h1 := specs["h1"]; len(h1.Pods) != 3 || len(h1.Services) != 1 || len(h1.Peers) != 1 {
		t.Fatalf("h1's spec has %d pods, %d services, %d peers; want 3, 1, 1", len(h1.Pods), len(h1.Services), len(h1.Peers))
	}
	for name, spec := range specs {
		data, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		var back nodeapi.NodeSpec
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if a, b := nodeapi.ContentSHA256(&spec), nodeapi.ContentSHA256(&back); a != b {
			t.Errorf("%s: checksum %s before the wire, %s after", name, a, b)
		}
	}
}

func fencingCluster(t *testing.T) (*inventory.Inventory, *Cluster) {
	t.Helper()
	in, err := inventory.Parse("c.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode("x.yaml", []byte(pods+`---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		if p, ok := o.Obj.(*corev1.Pod); ok {
			p.UID = types.UID(fmt.Sprintf("%08d-1111-4111-8111-111111111111", i))
			p.Spec.NodeName = "h1"
			p.Labels = map[string]string{"app": "web"}
		}
		if err := Store(in, o); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := Load(in)
	if err != nil {
		t.Fatal(err)
	}
	return in, cl
}

// TestRunRefusesStaleInventory: a host holding a newer generation than the
// inventory stops the loop before anything is scheduled, pushed or stored.
func TestRunRefusesStaleInventory(t *testing.T) {
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
	newer := &nodeapi.NodeSpec{Generation: 5, Writer: "bob@desk"}
	nodes := map[string]*fakeNode{"h1": {name: "h1"}, "h2": {name: "h2", held: newer}}
	dial := func(_ context.Context, name string) (playbooks.Host, error) { return nodes[name], nil }
	fleet := playbooks.Connect(context.Background(), in.HostNames(), dial, 4)
	before, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		_, err = Run(context.Background(), in, fleet, Options{Writer: "me@test", Now: time.Unix(0, 0), DryRun: dry})
		var fe *FencedError
		if !errors.As(err, &fe) || fe.Host != "h2" || fe.Held.Generation != 5 || fe.Generation != 1 {
			t.Fatalf("dry run %v: err = %v, want h2's generation 5 to fence generation 1", dry, err)
		}
	}
	if nodes["h1"].applies+nodes["h2"].applies != 0 || nodes["h2"].held != newer {
		t.Errorf("a fenced run pushed: %d applies", nodes["h1"].applies+nodes["h2"].applies)
	}
	if after, err := in.Marshal(); err != nil || string(after) != string(before) {
		t.Errorf("a fenced run changed the inventory: %v", err)
	}
}
