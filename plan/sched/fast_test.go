package sched

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// replicaCluster makes a random cluster of apps with replicas: pods that
// share their template, as the fast path's classes do, with every
// scheduling feature the default plugins have (spread constraints with
// their policies and minDomains, preferred and required node affinity,
// PreferNoSchedule taints, host ports, inter-pod affinity on some apps),
// nodes missing topology labels or sharing a hostname value, some pods
// bound (some of them being deleted), and apps created at interleaved
// times so that classes alternate.
func replicaCluster(rng *rand.Rand) ([]*corev1.Pod, []Node) {
	zones := []string{"a", "b", "c", "d"}
	var nodes []Node
	for i := range 1 + rng.IntN(30) {
		name := fmt.Sprintf("n%02d", i)
		n := node(name, allocatable(int64(1000+rng.IntN(8)*500), int64(1+rng.IntN(8))<<29, int64(2+rng.IntN(10))))
		if rng.IntN(8) != 0 {
			n.Labels["zone"] = zones[rng.IntN(len(zones))]
			n.Labels[zoneKey] = n.Labels["zone"]
		}
		if rng.IntN(10) == 0 {
			delete(n.Labels, hostnameKey)
		} else if rng.IntN(15) == 0 {
			n.Labels[hostnameKey] = "shared"
		}
		if rng.IntN(3) == 0 {
			n.Labels["disk"] = []string{"ssd", "hdd"}[rng.IntN(2)]
		}
		n.Ready = rng.IntN(12) != 0
		n.Unschedulable = rng.IntN(12) == 0
		if rng.IntN(5) == 0 {
			n.Taints = append(n.Taints, corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule})
		}
		for range rng.IntN(3) {
			n.Taints = append(n.Taints, corev1.Taint{Key: []string{"spot", "old", "slow"}[rng.IntN(3)], Effect: corev1.TaintEffectPreferNoSchedule})
		}
		nodes = append(nodes, n)
	}
	policy := func() *corev1.NodeInclusionPolicy {
		p := []corev1.NodeInclusionPolicy{corev1.NodeInclusionPolicyHonor, corev1.NodeInclusionPolicyIgnore}[rng.IntN(2)]
		if rng.IntN(2) == 0 {
			return nil
		}
		return &p
	}
	var pods []*corev1.Pod
	numApps := 1 + rng.IntN(14)
	for a := range numApps {
		app := fmt.Sprintf("app%d", a)
		ns := []string{"default", "other"}[rng.IntN(2)]
		tmpl := newPod("tmpl", inNamespace(ns), podLabels("app", app, "tier", []string{"web", "db"}[rng.IntN(2)]))
		rl := corev1.ResourceList{}
		if rng.IntN(5) != 0 {
			rl[corev1.ResourceCPU] = resource.MustParse(fmt.Sprintf("%dm", 100*rng.IntN(8)))
		}
		if rng.IntN(5) != 0 {
			rl[corev1.ResourceMemory] = resource.MustParse(fmt.Sprintf("%dMi", 128*rng.IntN(8)))
		}
		tmpl.Spec.Containers[0].Resources.Requests = rl
		if rng.IntN(12) == 0 {
			hostPort(int32(9000+rng.IntN(2)), "", "")(tmpl)
		}
		if rng.IntN(4) == 0 {
			tmpl.Spec.NodeSelector = map[string]string{"disk": "ssd"}
		}
		if rng.IntN(3) == 0 {
			tmpl.Spec.Tolerations = append(tmpl.Spec.Tolerations, corev1.Toleration{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule})
		}
		if rng.IntN(4) == 0 {
			tmpl.Spec.Tolerations = append(tmpl.Spec.Tolerations, corev1.Toleration{Key: "spot", Operator: corev1.TolerationOpExists})
		}
		if rng.IntN(15) == 0 {
			tmpl.Spec.Tolerations = append(tmpl.Spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists})
		}
		if rng.IntN(3) == 0 {
			na := &corev1.NodeAffinity{}
			for range 1 + rng.IntN(2) {
				na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution, corev1.PreferredSchedulingTerm{
					Weight:     int32(1 + rng.IntN(100)),
					Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpIn, zones[rng.IntN(4)])}}})
			}
			if rng.IntN(3) == 0 {
				na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
					{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpNotIn, zones[rng.IntN(4)])}}}}
			}
			tmpl.Spec.Affinity = &corev1.Affinity{NodeAffinity: na}
		}
		if rng.IntN(2) == 0 {
			for range 1 + rng.IntN(2) {
				when := []corev1.UnsatisfiableConstraintAction{corev1.DoNotSchedule, corev1.ScheduleAnyway}[rng.IntN(2)]
				c := spread([]string{zoneKey, hostnameKey, "zone", "disk"}[rng.IntN(4)], int32(1+rng.IntN(3)), when)
				c.LabelSelector = selector("app", []string{app, app, "app0"}[rng.IntN(3)])
				if rng.IntN(4) == 0 {
					c.LabelSelector = selector("tier", "web")
				}
				if rng.IntN(4) == 0 {
					c.MatchLabelKeys = []string{"tier"}
				}
				if when == corev1.DoNotSchedule && rng.IntN(4) == 0 {
					c.MinDomains = ptrTo(int32(1 + rng.IntN(5)))
				}
				c.NodeAffinityPolicy, c.NodeTaintsPolicy = policy(), policy()
				tmpl.Spec.TopologySpreadConstraints = append(tmpl.Spec.TopologySpreadConstraints, c)
			}
		}
		if rng.IntN(8) == 0 { // an app with inter-pod terms: pods it selects leave the fast path
			for _, o := range randomInterPod(rng) {
				o(tmpl)
			}
			tmpl.Labels["app"] = app
		}
		created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, rng.IntN(4), 0, time.UTC))
		for r := range 1 + rng.IntN(25) {
			p := tmpl.DeepCopy()
			p.Name = fmt.Sprintf("%s-%02d", app, r)
			p.CreationTimestamp = created
			if rng.IntN(6) == 0 { // interleave apps created at the same time
				p.Name = fmt.Sprintf("z-%s-%02d", app, r)
			}
			if rng.IntN(8) == 0 && len(nodes) > 0 {
				p.Spec.NodeName = nodes[rng.IntN(len(nodes))].Name
				if rng.IntN(3) == 0 {
					p.DeletionTimestamp = &created
				}
			}
			pods = append(pods, p)
		}
	}
	return pods, nodes
}

func ptrTo[T any](v T) *T { return &v }

// TestFastPathMatchesGeneralPath schedules random clusters with and
// without the fast path: the results must be identical, bindings and
// reasons alike.
func TestFastPathMatchesGeneralPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(5000, 150))
	cases := 900
	if testing.Short() {
		cases = 150
	}
	defer func(n int) { hotClasses = n }(hotClasses)
	compare := func(pods []*corev1.Pod, nodes []Node) string {
		fast := Schedule(pods, nodes)
		generalPathOnly = true
		defer func() { generalPathOnly = false }()
		return cmp.Diff(Schedule(pods, nodes), fast)
	}
	fails := func(pods []*corev1.Pod, nodes []Node) bool { return compare(pods, nodes) != "" }
	for i := range cases {
		var pods []*corev1.Pod
		var nodes []Node
		switch i % 3 {
		case 0:
			pods, nodes = replicaCluster(rng)
		case 1:
			pods, nodes = randomCluster(rng)
		default:
			pods, nodes = fitCluster(rng)
		}
		hotClasses = []int{8, 2, 1}[i/3%3] // evict often, too
		if diff := compare(pods, nodes); diff != "" {
			pods, nodes = shrinkFit(pods, nodes, fails)
			t.Fatalf("case %d (%d hot classes): fast path differs (-general +fast):\n%s\nshrunk to (-general +fast):\n%s\n%s", i, hotClasses, diff, compare(pods, nodes), dumpCluster(pods, nodes))
		}
	}
}

// TestFastPathIsUsed makes sure the comparison above compares something:
// on a cluster of replicas the fast path places pods without the general
// path's per-node filters.
func TestFastPathIsUsed(t *testing.T) {
	pods, nodes := largeCluster(40, 10, 400)
	var calls []string
	counting := &Framework{Filters: []FilterPlugin{fakeCluster{calls: &calls}}}
	if counting.isDefault() || !Default().isDefault() {
		t.Fatal("isDefault is wrong")
	}
	infos := make([]*NodeInfo, len(nodes))
	for i := range nodes {
		infos[i] = &NodeInfo{Node: &nodes[i]}
	}
	s := &cycle{nodes: infos, snapshot: NewSnapshot(infos, nil)}
	f := newFastPath(s)
	placed := 0
	for _, p := range pods {
		pi := NewPodInfo(p)
		if i, class, ok := f.schedule(pi); ok {
			s.snapshot.add(s.nodes[i], pi)
			f.placed(s.nodes[i], pi, class)
			placed++
		}
	}
	if placed < len(pods)*9/10 {
		t.Errorf("fast path placed %d of %d pods", placed, len(pods))
	}
	if len(f.classes) != 10 {
		t.Errorf("%d classes for 10 apps", len(f.classes))
	}
}

// TestFastPathTouchedHotClass: a class whose per-node state is held when
// a pod selecting it with anti-affinity is placed leaves the fast path,
// and the classes after it still evict and place correctly.
func TestFastPathTouchedHotClass(t *testing.T) {
	var nodes []Node
	for i := range 12 {
		nodes = append(nodes, zoned(fmt.Sprintf("n%02d", i), []string{"a", "b", "c"}[i%3]))
	}
	var pods []*corev1.Pod
	add := func(app string, sec, replicas int, opts ...podOpt) {
		for r := range replicas {
			o := append([]podOpt{podLabels("app", app), created(sec), requests("100m", "64Mi")}, opts...)
			pods = append(pods, newPod(fmt.Sprintf("%s-%d", app, r), o...))
		}
	}
	add("victim", 0, 3)
	add("guard", 1, 1, requiredAntiAffinity(term(hostnameKey, kv("app", "victim"))))
	// More victims while the class is hot: touched, they take the general
	// path; then enough other classes to evict every hot one.
	for r := range 3 {
		pods = append(pods, newPod(fmt.Sprintf("victim-late-%d", r), podLabels("app", "victim"), created(2), requests("100m", "64Mi")))
	}
	for i := range 2 * hotClasses {
		add(fmt.Sprintf("filler-%02d", i), 3, 2)
	}
	fast := Schedule(pods, nodes)
	generalPathOnly = true
	defer func() { generalPathOnly = false }()
	if diff := cmp.Diff(Schedule(pods, nodes), fast); diff != "" {
		t.Errorf("fast path differs (-general +fast):\n%s", diff)
	}
	if len(fast.Bindings) != len(pods) {
		t.Errorf("%d of %d pods bound: %v", len(fast.Bindings), len(pods), fast.Unschedulable)
	}
}
