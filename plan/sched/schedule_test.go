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
				p.Spec.ResourceClaims = []corev1.PodResourceClaim{{}}
			})},
			nodes: []Node{node("h1"), node("h2")},
			want: map[string]Unschedulable{"default/p": {
				Message: "0/2 nodes are available: pod uses spec.resourceClaims, which clusterctl's scheduler does not support.",
				Reasons: map[string]string{
					"h1": "pod uses spec.resourceClaims, which clusterctl's scheduler does not support",
					"h2": "pod uses spec.resourceClaims, which clusterctl's scheduler does not support",
				},
			}},
		},
		{
			name: "an invalid spread constraint rejects the pod everywhere",
			pods: []*corev1.Pod{newPod("p", func(p *corev1.Pod) {
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{}}
			})},
			nodes: []Node{node("h1"), node("h2")},
			want: map[string]Unschedulable{"default/p": {
				Message: "0/2 nodes are available: invalid spec.topologySpreadConstraints[0]: maxSkew must be greater than zero.",
				Reasons: map[string]string{
					"h1": "invalid spec.topologySpreadConstraints[0]: maxSkew must be greater than zero",
					"h2": "invalid spec.topologySpreadConstraints[0]: maxSkew must be greater than zero",
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
		opts = append(opts, randomInterPod(rng)...)
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
	checkInterPodAffinity(t, pods, byName, got)
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

// randomInterPod returns random pod labels, inter-pod (anti-)affinity terms
// and topology spread constraints, over the labels app and zone.
func randomInterPod(rng *rand.Rand) []podOpt {
	apps := []string{"x", "y", "z"}
	keys := []string{hostnameKey, "zone"}
	var opts []podOpt
	if rng.IntN(2) == 0 {
		opts = append(opts, podLabels("app", apps[rng.IntN(3)]))
	}
	randomTerm := func() corev1.PodAffinityTerm { return term(keys[rng.IntN(2)], kv("app", apps[rng.IntN(3)])) }
	if rng.IntN(5) == 0 {
		opts = append(opts, requiredAntiAffinity(randomTerm()))
	}
	if rng.IntN(8) == 0 {
		opts = append(opts, requiredAffinity(randomTerm()))
	}
	if rng.IntN(6) == 0 {
		opts = append(opts, preferredAntiAffinity(weighted(int32(1+rng.IntN(100)), randomTerm())))
	}
	if rng.IntN(8) == 0 {
		opts = append(opts, preferredAffinity(weighted(int32(1+rng.IntN(100)), randomTerm())))
	}
	if rng.IntN(6) == 0 {
		when := []corev1.UnsatisfiableConstraintAction{corev1.DoNotSchedule, corev1.ScheduleAnyway}[rng.IntN(2)]
		c := spread(keys[rng.IntN(2)], int32(1+rng.IntN(2)), when)
		c.LabelSelector = selector("app", apps[rng.IntN(3)])
		opts = append(opts, spreadOver(c))
	}
	return opts
}

// checkInterPodAffinity checks the required inter-pod (anti-)affinity of
// the pods placed by got, with a straightforward restatement of the rules
// for pods in one namespace with matchLabels selectors (as randomInterPod
// makes them): no pod shares a topology domain with a pod that the
// required anti-affinity of either selects, unless both were bound before;
// and for each required affinity term of a placed pod, a pod matching all
// its terms shares the term's domain, or the pod matches them itself.
func checkInterPodAffinity(t *testing.T, pods []*corev1.Pod, byName map[string]*Node, got Result) {
	t.Helper()
	type placedPod struct {
		pod  *corev1.Pod
		node *Node
		new  bool
	}
	var all []placedPod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if n, ok := byName[p.Spec.NodeName]; ok && p.Spec.NodeName != "" {
			all = append(all, placedPod{p, n, false})
		} else if name, ok := got.Bindings[p.Namespace+"/"+p.Name]; ok {
			all = append(all, placedPod{p, byName[name], true})
		}
	}
	selects := func(term corev1.PodAffinityTerm, owner, target *corev1.Pod) bool {
		if owner.Namespace != target.Namespace {
			return false
		}
		for k, v := range term.LabelSelector.MatchLabels {
			if target.Labels[k] != v {
				return false
			}
		}
		return true
	}
	sameDomain := func(a, b *Node, key string) bool {
		va, oka := a.Labels[key]
		vb, okb := b.Labels[key]
		return oka && okb && va == vb
	}
	for _, a := range all {
		aff := a.pod.Spec.Affinity
		if aff == nil {
			continue
		}
		if aff.PodAntiAffinity != nil {
			for _, term := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				for _, b := range all {
					if b.pod != a.pod && (a.new || b.new) && selects(term, a.pod, b.pod) && sameDomain(a.node, b.node, term.TopologyKey) {
						t.Errorf("%s on %s and %s on %s break %s's anti-affinity on %s", a.pod.Name, a.node.Name, b.pod.Name, b.node.Name, a.pod.Name, term.TopologyKey)
					}
				}
			}
		}
		if aff.PodAffinity != nil && a.new {
			terms := aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution
			matchesAll := func(p *corev1.Pod) bool {
				for _, term := range terms {
					if !selects(term, a.pod, p) {
						return false
					}
				}
				return len(terms) > 0
			}
			for _, term := range terms {
				if _, ok := a.node.Labels[term.TopologyKey]; !ok {
					t.Errorf("%s on %s, which has no %s", a.pod.Name, a.node.Name, term.TopologyKey)
				}
				if matchesAll(a.pod) {
					continue
				}
				if !slices.ContainsFunc(all, func(b placedPod) bool {
					return b.pod != a.pod && matchesAll(b.pod) && sameDomain(a.node, b.node, term.TopologyKey)
				}) {
					t.Errorf("%s on %s without a pod it has affinity to on %s", a.pod.Name, a.node.Name, term.TopologyKey)
				}
			}
		}
	}
}

// interPodCluster is 100 nodes in 4 zones and 1,000 unbound pods, 100
// replicas each of 10 apps, with requests and the given options per app.
func interPodCluster(opts func(app string) []podOpt) ([]*corev1.Pod, []Node) {
	rng := rand.New(rand.NewPCG(3, 4))
	const numNodes, numApps, numReplicas = 100, 10, 100
	nodes := make([]Node, numNodes)
	for i := range nodes {
		nodes[i] = zoned(fmt.Sprintf("node-%03d", i), fmt.Sprintf("zone-%d", i%4), allocatable(32000, 128<<30, 110))
	}
	var pods []*corev1.Pod
	for a := range numApps {
		app := fmt.Sprintf("app-%d", a)
		for r := range numReplicas {
			o := []podOpt{podLabels("app", app), created(r % 60),
				requests(fmt.Sprintf("%dm", 100+rng.IntN(900)), fmt.Sprintf("%dMi", 128+rng.IntN(1900)))}
			pods = append(pods, newPod(fmt.Sprintf("%s-%03d", app, r), append(o, opts(app)...)...))
		}
	}
	return pods, nodes
}

func benchmarkPlacement(b *testing.B, pods []*corev1.Pod, nodes []Node) {
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := Schedule(pods, nodes)
		if len(res.Bindings) != len(pods) {
			b.Fatalf("%d of %d pods bound; %d unschedulable", len(res.Bindings), len(pods), len(res.Unschedulable))
		}
	}
	b.ReportMetric(float64(len(pods))*float64(b.N)/b.Elapsed().Seconds(), "pods/s")
}

// BenchmarkScheduleAntiAffinity places 1,000 pods on 100 nodes, each pod
// with required anti-affinity to its app's other replicas per host (so every
// node ends with one replica of each of the 10 apps) and preferred
// anti-affinity to them per zone. Every placement looks at every pod placed
// before it, as kube-scheduler does.
func BenchmarkScheduleAntiAffinity(b *testing.B) {
	pods, nodes := interPodCluster(func(app string) []podOpt {
		return []podOpt{
			requiredAntiAffinity(term(hostnameKey, kv("app", app))),
			preferredAntiAffinity(weighted(100, term(zoneKey, kv("app", app)))),
		}
	})
	benchmarkPlacement(b, pods, nodes)
}

// BenchmarkScheduleTopologySpread places 1,000 pods on 100 nodes, each app
// spread over zones (DoNotSchedule, maxSkew 1) and hosts (ScheduleAnyway).
func BenchmarkScheduleTopologySpread(b *testing.B) {
	pods, nodes := interPodCluster(func(app string) []podOpt {
		zone := spread(zoneKey, 1, corev1.DoNotSchedule)
		zone.LabelSelector = selector("app", app)
		host := spread(hostnameKey, 1, corev1.ScheduleAnyway)
		host.LabelSelector = selector("app", app)
		return []podOpt{spreadOver(zone, host)}
	})
	benchmarkPlacement(b, pods, nodes)
}

// fakeCluster is a filter and score plugin that records its calls, rejects
// every node it filters and scores nodes by name.
type fakeCluster struct {
	skip  bool
	calls *[]string
}

func (fakeCluster) Name() string { return "Fake" }

func (f fakeCluster) PreFilterCluster(p *PodInfo, c *Snapshot) (bool, string) {
	*f.calls = append(*f.calls, fmt.Sprintf("PreFilterCluster %s: %d nodes, state %v", p.Key, len(c.Nodes), p.State))
	p.writeState("Fake", p.Key)
	return f.skip, ""
}

func (f fakeCluster) Filter(p *PodInfo, n *NodeInfo) []string {
	*f.calls = append(*f.calls, "Filter "+n.Node.Name)
	return []string{"fake"}
}

func (f fakeCluster) PreScoreCluster(p *PodInfo, c *Snapshot, feasible []*NodeInfo) bool {
	var names []string
	for _, ni := range feasible {
		names = append(names, ni.Node.Name)
	}
	*f.calls = append(*f.calls, fmt.Sprintf("PreScoreCluster %s: %v, state %v", p.Key, names, p.State["Fake"]))
	return true
}

func (f fakeCluster) Score(p *PodInfo, n *NodeInfo) int64 {
	*f.calls = append(*f.calls, "Score "+n.Node.Name)
	return int64(n.Node.Name[1]) // h1 < h2
}

func TestClusterPlugins(t *testing.T) {
	nodes := []Node{node("h1"), node("h2"), node("h3", func(n *Node) { n.Unschedulable = true })}
	pods := []*corev1.Pod{newPod("a", created(1)), newPod("b", created(2))}
	var calls []string
	skipping := &Framework{Filters: []FilterPlugin{NodeUnschedulable{}, fakeCluster{skip: true, calls: &calls}},
		Scores: []WeightedScore{{fakeCluster{calls: &calls}, 1}}}
	got := skipping.Schedule(pods, nodes)
	if diff := cmp.Diff(map[string]string{"default/a": "h2", "default/b": "h2"}, got.Bindings); diff != "" {
		t.Errorf("bindings (-want +got):\n%s", diff)
	}
	want := []string{
		"PreFilterCluster default/a: 3 nodes, state map[]",
		"PreScoreCluster default/a: [h1 h2], state default/a", "Score h1", "Score h2",
		"PreFilterCluster default/b: 3 nodes, state map[]",
		"PreScoreCluster default/b: [h1 h2], state default/b", "Score h1", "Score h2",
	}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}

	calls = nil
	filtering := &Framework{Filters: []FilterPlugin{NodeUnschedulable{}, fakeCluster{calls: &calls}}}
	got = filtering.Schedule(pods[:1], nodes)
	if diff := cmp.Diff("0/3 nodes are available: 1 node(s) were unschedulable, 2 fake.", got.Unschedulable["default/a"].Message); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	want = []string{"PreFilterCluster default/a: 3 nodes, state map[]", "Filter h1", "Filter h2"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
