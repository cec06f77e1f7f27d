package sched

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/clusterctl/clusterctl/nodeapi"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/plan")

// cluster is a sched-*.yaml fixture: nodes, and pods each repeated count
// times (names suffixed -0, -1, ... when count > 1).
type cluster struct {
	Nodes []Node `json:"nodes"`
	Pods  []struct {
		Count int        `json:"count"`
		Pod   corev1.Pod `json:"pod"`
	} `json:"pods"`
}

func readCluster(t *testing.T, path string) ([]*corev1.Pod, []Node) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c cluster
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	var pods []*corev1.Pod
	for _, p := range c.Pods {
		if p.Count <= 1 {
			pods = append(pods, p.Pod.DeepCopy())
			continue
		}
		for i := range p.Count {
			q := p.Pod.DeepCopy()
			q.Name = fmt.Sprintf("%s-%d", q.Name, i)
			pods = append(pods, q)
		}
	}
	return pods, c.Nodes
}

func TestScheduleGolden(t *testing.T) {
	files, err := filepath.Glob("../../testdata/plan/sched-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			pods, nodes := readCluster(t, file)
			got := Schedule(pods, nodes)
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			golden := strings.TrimSuffix(file, ".yaml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(out)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", golden, diff)
			}
			checkInvariants(t, pods, nodes, got)
		})
	}
}

func TestScheduleMessages(t *testing.T) {
	db := taint("dedicated", "db", corev1.TaintEffectNoSchedule)
	tests := []struct {
		name  string
		pods  []*corev1.Pod
		nodes []Node
		want  map[string]Unschedulable
	}{
		{
			name:  "reasons counted and sorted as strings",
			pods:  []*corev1.Pod{newPod("p", requests("3", ""))},
			nodes: []Node{node("h1", allocatable(2000, 1<<30, 10)), node("h2", allocatable(2000, 1<<30, 10)), node("h3", db)},
			want: map[string]Unschedulable{"default/p": {
				Message: "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 2 Insufficient cpu.",
				Reasons: map[string]string{"h1": "Insufficient cpu", "h2": "Insufficient cpu", "h3": "node(s) had untolerated taint {dedicated: db}"},
			}},
		},
		{
			name:  "a node with several reasons counts each",
			pods:  []*corev1.Pod{newPod("p", requests("3", "2Gi"))},
			nodes: []Node{node("h1", allocatable(2000, 1<<30, 0))},
			want: map[string]Unschedulable{"default/p": {
				Message: "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods.",
				Reasons: map[string]string{"h1": "Too many pods, Insufficient cpu, Insufficient memory"},
			}},
		},
		{
			name:  "the first failing filter decides",
			pods:  []*corev1.Pod{newPod("p", requests("3", ""))},
			nodes: []Node{node("h1", func(n *Node) { n.Unschedulable = true }, allocatable(0, 0, 0))},
			want: map[string]Unschedulable{"default/p": {
				Message: "0/1 nodes are available: 1 node(s) were unschedulable.",
				Reasons: map[string]string{"h1": ReasonUnschedulable},
			}},
		},
		{
			name: "no nodes",
			pods: []*corev1.Pod{newPod("p")},
			want: map[string]Unschedulable{"default/p": {Message: "no nodes available to schedule pods", Reasons: map[string]string{}}},
		},
		{
			name: "pre-filter rejection names every node",
			pods: []*corev1.Pod{newPod("p", func(p *corev1.Pod) {
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{}}
			})},
			nodes: []Node{node("h1"), node("h2")},
			want: map[string]Unschedulable{"default/p": {
				Message: "0/2 nodes are available: pod uses spec.topologySpreadConstraints, which clusterctl's scheduler does not support.",
				Reasons: map[string]string{
					"h1": "pod uses spec.topologySpreadConstraints, which clusterctl's scheduler does not support",
					"h2": "pod uses spec.topologySpreadConstraints, which clusterctl's scheduler does not support",
				},
			}},
		},
		{
			name:  "bound to missing and dead nodes",
			pods:  []*corev1.Pod{newPod("a", boundTo("gone")), newPod("b", boundTo("h2")), newPod("c", boundTo("h3")), newPod("d", boundTo("h1"))},
			nodes: []Node{node("h1"), node("h2", func(n *Node) { n.Ready = false }), node("h3", func(n *Node) { n.Unreachable = true })},
			want: map[string]Unschedulable{
				"default/a": {Message: "bound to node gone, which does not exist", Reasons: map[string]string{"gone": ReasonNodeNotFound}},
				"default/b": {Message: "bound to node h2, which is not ready", Reasons: map[string]string{"h2": ReasonNotReady}},
				"default/c": {Message: "bound to node h3, which is unreachable", Reasons: map[string]string{"h3": ReasonNodeUnreachable}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Schedule(tt.pods, tt.nodes)
			if diff := cmp.Diff(tt.want, got.Unschedulable); diff != "" {
				t.Errorf("unschedulable (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScheduleOrderAndUsage(t *testing.T) {
	nodes := []Node{node("h2", allocatable(1000, 1<<30, 10)), node("h1", allocatable(1000, 1<<30, 10))}
	// "late" is listed first but created later: "early" goes first, to h1
	// (h2 has a bound pod), and what it uses leaves no room for "late".
	pods := []*corev1.Pod{
		newPod("late", requests("600m", ""), created(2)),
		newPod("early", requests("600m", ""), created(1)),
		newPod("bound", requests("500m", ""), boundTo("h2")),
	}
	got := Schedule(pods, nodes)
	want := map[string]string{"default/early": "h1"}
	if diff := cmp.Diff(want, got.Bindings); diff != "" {
		t.Errorf("bindings (-want +got):\n%s", diff)
	}
	if u, ok := got.Unschedulable["default/late"]; !ok || u.Message != "0/2 nodes are available: 2 Insufficient cpu." {
		t.Errorf("late: %+v", got.Unschedulable)
	}
	// Equal creation times order by namespace/name.
	got = Schedule([]*corev1.Pod{newPod("b", requests("600m", "")), newPod("a", requests("600m", ""))}, nodes)
	if diff := cmp.Diff(map[string]string{"default/a": "h1", "default/b": "h2"}, got.Bindings); diff != "" {
		t.Errorf("bindings (-want +got):\n%s", diff)
	}
}

func TestScheduleDoesNotModifyInput(t *testing.T) {
	pods, nodes := readCluster(t, "../../testdata/plan/sched-constraints.yaml")
	var podsBefore []*corev1.Pod
	for _, p := range pods {
		podsBefore = append(podsBefore, p.DeepCopy())
	}
	nodesBefore := slices.Clone(nodes)
	Schedule(pods, nodes)
	if diff := cmp.Diff(podsBefore, pods); diff != "" {
		t.Errorf("pods modified:\n%s", diff)
	}
	if diff := cmp.Diff(nodesBefore, nodes); diff != "" {
		t.Errorf("nodes modified:\n%s", diff)
	}
}

// TestScheduleProperties schedules random clusters and checks, with an
// oracle independent of the plugins: nothing is bound where it does not
// fit, no node's requests exceed its allocatable, every unbound pod is
// either bound or explained, and the result is the same across runs and
// input orders.
func TestScheduleProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for iter := range 300 {
		pods, nodes := randomCluster(rng)
		got := Schedule(pods, nodes)
		checkInvariants(t, pods, nodes, got)
		if t.Failed() {
			t.Fatalf("iteration %d failed", iter)
		}
		for range 3 {
			p2, n2 := slices.Clone(pods), slices.Clone(nodes)
			rng.Shuffle(len(p2), func(i, j int) { p2[i], p2[j] = p2[j], p2[i] })
			rng.Shuffle(len(n2), func(i, j int) { n2[i], n2[j] = n2[j], n2[i] })
			if diff := cmp.Diff(got, Schedule(p2, n2)); diff != "" {
				t.Fatalf("iteration %d: result depends on input order (-first +shuffled):\n%s", iter, diff)
			}
		}
	}
}

func randomCluster(rng *rand.Rand) ([]*corev1.Pod, []Node) {
	zones := []string{"a", "b", "c"}
	var nodes []Node
	for i := range 1 + rng.IntN(12) {
		n := node(fmt.Sprintf("n%02d", i), labels("zone", zones[rng.IntN(3)]),
			allocatable(int64(500+rng.IntN(8)*500), int64(1+rng.IntN(8))<<29, int64(rng.IntN(8))))
		n.Ready = rng.IntN(8) != 0
		n.Unreachable = rng.IntN(12) == 0
		n.Unschedulable = rng.IntN(10) == 0
		if rng.IntN(4) == 0 {
			n.Taints = append(n.Taints, corev1.Taint{Key: "dedicated", Value: zones[rng.IntN(3)], Effect: corev1.TaintEffectNoSchedule})
		}
		if rng.IntN(4) == 0 {
			n.Taints = append(n.Taints, corev1.Taint{Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule})
		}
		nodes = append(nodes, n)
	}
	var pods []*corev1.Pod
	for i := range rng.IntN(60) {
		var opts []podOpt
		if rng.IntN(5) != 0 {
			cpu, mem := fmt.Sprintf("%dm", rng.IntN(1200)), fmt.Sprintf("%dMi", rng.IntN(1500))
			if rng.IntN(6) == 0 {
				cpu = ""
			}
			opts = append(opts, requests(cpu, mem))
		}
		if rng.IntN(4) == 0 {
			opts = append(opts, withNodeSelector("zone", zones[rng.IntN(3)]))
		}
		if rng.IntN(3) == 0 {
			opts = append(opts, tolerations(corev1.Toleration{Key: "dedicated", Value: zones[rng.IntN(3)], Effect: corev1.TaintEffectNoSchedule}))
		}
		if rng.IntN(8) == 0 {
			opts = append(opts, tolerations(corev1.Toleration{Operator: corev1.TolerationOpExists}))
		}
		if rng.IntN(5) == 0 {
			opts = append(opts, hostPort(int32(8000+rng.IntN(3)), "", ""))
		}
		if rng.IntN(6) == 0 {
			opts = append(opts, required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				expr("zone", corev1.NodeSelectorOpNotIn, zones[rng.IntN(3)])}}))
		}
		if rng.IntN(6) == 0 { // init container bigger than the main one
			opts = append(opts, func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "i", Image: "x", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(fmt.Sprintf("%dm", rng.IntN(2000)))}}}}
			})
		}
		opts = append(opts, created(rng.IntN(5)))
		pods = append(pods, newPod(fmt.Sprintf("p%02d", i), opts...))
	}
	// Bind some pods up front, where they fit (greedily, in order).
	used := make([]nodeapi.Resources, len(nodes))
	for _, p := range pods {
		if rng.IntN(4) != 0 {
			continue
		}
		i := rng.IntN(len(nodes))
		r := NewPodInfo(p).Requests
		if len(NewPodInfo(p).HostPorts) > 0 || used[i].CPUMillis+r.MilliCPU > nodes[i].Allocatable.CPUMillis ||
			used[i].MemoryBytes+r.Memory > nodes[i].Allocatable.MemoryBytes || used[i].Pods+1 > nodes[i].Allocatable.Pods {
			continue
		}
		used[i].CPUMillis += r.MilliCPU
		used[i].MemoryBytes += r.Memory
		used[i].Pods++
		p.Spec.NodeName = nodes[i].Name
	}
	return pods, nodes
}

// checkInvariants checks a Schedule result against a straightforward
// restatement of the rules, not the plugins.
func checkInvariants(t *testing.T, pods []*corev1.Pod, nodes []Node, got Result) {
	t.Helper()
	byName := map[string]*Node{}
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	type usage struct {
		cpu, mem, pods int64
		ports          []HostPort
	}
	use := map[string]*usage{}
	for _, n := range nodes {
		use[n.Name] = &usage{}
	}
	add := func(p *corev1.Pod, node string) {
		u := use[node]
		pi := NewPodInfo(p)
		u.cpu += pi.Requests.MilliCPU
		u.mem += pi.Requests.Memory
		u.pods++
		u.ports = append(u.ports, pi.HostPorts...)
	}
	var unbound []*corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		key := p.Namespace + "/" + p.Name
		if p.Spec.NodeName != "" {
			if _, ok := got.Bindings[key]; ok {
				t.Errorf("%s: bound pod re-bound", key)
			}
			if n, ok := byName[p.Spec.NodeName]; ok {
				add(p, n.Name)
			}
			continue
		}
		if p.DeletionTimestamp != nil {
			continue
		}
		unbound = append(unbound, p)
	}
	for _, p := range unbound {
		key := p.Namespace + "/" + p.Name
		node, bound := got.Bindings[key]
		u, unsched := got.Unschedulable[key]
		if bound == unsched {
			t.Errorf("%s: bound=%v unschedulable=%v, want exactly one", key, bound, unsched)
			continue
		}
		if unsched {
			if len(p.Spec.SchedulingGates) == 0 && len(nodes) > 0 {
				if !strings.HasPrefix(u.Message, fmt.Sprintf("0/%d nodes are available: ", len(byName))) || len(u.Reasons) != len(byName) {
					t.Errorf("%s: message %q with %d reasons for %d nodes", key, u.Message, len(u.Reasons), len(byName))
				}
			}
			continue
		}
		n, ok := byName[node]
		if !ok {
			t.Errorf("%s: bound to unknown node %s", key, node)
			continue
		}
		if n.Unreachable || !n.Ready || n.Unschedulable {
			if !tolerateAll(p) {
				t.Errorf("%s: bound to %s, which is not ready, unreachable or cordoned", key, node)
			}
		}
		for _, taint := range n.Taints {
			if taint.Effect == corev1.TaintEffectNoSchedule && !tolerateAll(p) &&
				!slices.ContainsFunc(p.Spec.Tolerations, func(tol corev1.Toleration) bool {
					return tol.Key == taint.Key && tol.Value == taint.Value
				}) {
				t.Errorf("%s: bound to %s despite taint %v", key, node, taint)
			}
		}
		for k, v := range p.Spec.NodeSelector {
			if n.Labels[k] != v {
				t.Errorf("%s: bound to %s, which lacks %s=%s", key, node, k, v)
			}
		}
		pi := NewPodInfo(p)
		for _, hp := range pi.HostPorts {
			if slices.ContainsFunc(use[node].ports, func(x HostPort) bool { return x.Port == hp.Port && x.Protocol == hp.Protocol }) {
				t.Errorf("%s: bound to %s, where host port %d is taken", key, node, hp.Port)
			}
		}
		if pi.required != nil && !pi.required.matches(n) {
			t.Errorf("%s: bound to %s against its required affinity", key, node)
		}
		add(p, node)
	}
	for name, u := range use {
		n := byName[name]
		if u.pods > n.Allocatable.Pods || u.cpu > n.Allocatable.CPUMillis || u.mem > n.Allocatable.MemoryBytes {
			t.Errorf("node %s over-committed: %d pods, %dm cpu, %d bytes for %+v", name, u.pods, u.cpu, u.mem, n.Allocatable)
		}
	}
}

func tolerateAll(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Spec.Tolerations, func(t corev1.Toleration) bool {
		return t.Key == "" && t.Operator == corev1.TolerationOpExists
	})
}

// BenchmarkSchedule places 10,000 pods on 500 nodes, all pods unbound, with
// a mix of requests, node selectors, tolerations and preferred affinity.
// Anchor: kube-scheduler's scheduler_perf SchedulingBasic thresholds,
// 680-810 pods/s at 5,000 nodes *including* API-server binds (see
// shared/notes/performance-anchors.md); this measures placement decisions
// alone, with every node filtered and scored.
func BenchmarkSchedule(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const numNodes, numPods = 500, 10000
	zones := []string{"a", "b", "c", "d"}
	nodes := make([]Node, numNodes)
	for i := range nodes {
		nodes[i] = node(fmt.Sprintf("node-%03d", i), labels("zone", zones[i%4], "disk", []string{"ssd", "hdd"}[i%2]),
			allocatable(32000, 128<<30, 110))
		if i%10 == 0 {
			nodes[i].Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
		}
	}
	pods := make([]*corev1.Pod, numPods)
	for i := range pods {
		opts := []podOpt{requests(fmt.Sprintf("%dm", 100+rng.IntN(900)), fmt.Sprintf("%dMi", 128+rng.IntN(1900))), created(i % 60)}
		switch i % 10 {
		case 0:
			opts = append(opts, withNodeSelector("disk", "ssd"))
		case 1:
			opts = append(opts, tolerations(corev1.Toleration{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}))
		case 2:
			opts = append(opts, func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
					{Weight: 50, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpIn, "b")}}}}}}
			})
		}
		pods[i] = newPod(fmt.Sprintf("pod-%05d", i), opts...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := Schedule(pods, nodes)
		if len(res.Bindings) != numPods {
			b.Fatalf("%d of %d pods bound; %d unschedulable", len(res.Bindings), numPods, len(res.Unschedulable))
		}
	}
	b.ReportMetric(float64(numPods)*float64(b.N)/b.Elapsed().Seconds(), "pods/s")
}
