package plan

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func testPod(ns, name string) nodeapi.PodSpec {
	return nodeapi.PodSpec{UID: ns + "-" + name + "-uid", Namespace: ns, Name: name, RestartPolicy: nodeapi.RestartAlways,
		Containers: []nodeapi.ContainerSpec{{Name: "c", Image: "busybox", ImagePullPolicy: nodeapi.PullIfNotPresent}}}
}

func TestNodeSpecs(t *testing.T) {
	cluster := nodeapi.ClusterInfo{Name: "lab", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", Domain: "cluster.local"}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	nodes := []NodeInput{
		{Name: "h1", PodCIDR: "10.244.0.0/24", Address: "10.250.0.11"},
		{Name: "h2", PodCIDR: "10.244.1.0/24", Address: "10.250.0.12"},
		{Name: "h3", PodCIDR: "10.244.2.0/24", Address: "10.250.0.13"},
	}
	pods := []nodeapi.PodSpec{
		testPod("web", "b"), testPod("db", "z"), testPod("web", "a"), testPod("a-b", "x"), testPod("a", "y"),
		testPod("web", "unbound"), testPod("web", "elsewhere"),
	}
	bindings := map[string]string{
		"web/b": "h1", "db/z": "h1", "web/a": "h1", "a-b/x": "h1", "a/y": "h1",
		"web/elsewhere": "gone", // not a listed node: goes nowhere
	}
	got := NodeSpecs(cluster, nodes, 7, "alice@laptop", now, pods, bindings)

	base := func(name, cidr string, pods ...nodeapi.PodSpec) nodeapi.NodeSpec {
		if pods == nil {
			pods = []nodeapi.PodSpec{}
		}
		return nodeapi.NodeSpec{APIVersion: nodeapi.APIVersion, NodeName: name, Cluster: cluster, PodCIDR: cidr,
			Generation: 7, Writer: "alice@laptop", WrittenAt: now, Pods: pods}
	}
	want := map[string]nodeapi.NodeSpec{
		// Sorted by namespace, then name: "a" < "a-b" < "db" < "web".
		"h1": base("h1", "10.244.0.0/24", testPod("a", "y"), testPod("a-b", "x"), testPod("db", "z"), testPod("web", "a"), testPod("web", "b")),
		"h2": base("h2", "10.244.1.0/24"),
		"h3": base("h3", "10.244.2.0/24"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NodeSpecs (-want +got):\n%s", diff)
	}
	for name, spec := range got {
		if err := spec.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if spec.Pods == nil {
			t.Errorf("%s: nil pod list, want empty", name)
		}
	}
	if len(NodeSpecs(cluster, nil, 1, "w", now, pods, bindings)) != 0 {
		t.Error("specs for no nodes")
	}
}

func TestSpecsEqual(t *testing.T) {
	cluster := nodeapi.ClusterInfo{Name: "lab", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", Domain: "cluster.local"}
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	spec := func(mutate func(*nodeapi.NodeSpec)) nodeapi.NodeSpec {
		s := NodeSpecs(cluster, []NodeInput{{Name: "h1", PodCIDR: "10.244.0.0/24"}}, 3, "alice@laptop", t0,
			[]nodeapi.PodSpec{testPod("web", "a")}, map[string]string{"web/a": "h1"})["h1"]
		if mutate != nil {
			mutate(&s)
		}
		return s
	}
	tests := []struct {
		name   string
		mutate func(*nodeapi.NodeSpec)
		want   bool
	}{
		{"identical", nil, true},
		{"another writer and time", func(s *nodeapi.NodeSpec) { s.Writer, s.WrittenAt = "bob@desk", t0.Add(time.Hour) }, true},
		{"pods removed", func(s *nodeapi.NodeSpec) { s.Pods = nil }, false},
		{"another generation", func(s *nodeapi.NodeSpec) { s.Generation = 4 }, false},
		{"a changed pod", func(s *nodeapi.NodeSpec) { s.Pods[0].Containers[0].Image = "busybox:2" }, false},
		{"another pod CIDR", func(s *nodeapi.NodeSpec) { s.PodCIDR = "10.244.9.0/24" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SpecsEqual(spec(nil), spec(tt.mutate)); got != tt.want {
				t.Errorf("SpecsEqual = %v, want %v", got, tt.want)
			}
		})
	}
	empty := func(pods []nodeapi.PodSpec) nodeapi.NodeSpec {
		return nodeapi.NodeSpec{APIVersion: nodeapi.APIVersion, NodeName: "h1", Generation: 1, Pods: pods}
	}
	if !SpecsEqual(empty(nil), empty([]nodeapi.PodSpec{})) {
		t.Error("a nil and an empty pod list differ; they are the same on the wire")
	}
}
