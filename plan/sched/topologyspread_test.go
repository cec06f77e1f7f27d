package sched

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type spreadOpt func(*corev1.TopologySpreadConstraint)

// spread is a constraint on topologyKey with maxSkew selecting app=web.
func spread(topologyKey string, maxSkew int32, when corev1.UnsatisfiableConstraintAction, opts ...spreadOpt) corev1.TopologySpreadConstraint {
	c := corev1.TopologySpreadConstraint{TopologyKey: topologyKey, MaxSkew: maxSkew, WhenUnsatisfiable: when, LabelSelector: selector("app", "web")}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func minDomains(n int32) spreadOpt {
	return func(c *corev1.TopologySpreadConstraint) { c.MinDomains = &n }
}

func nodeAffinityPolicy(p corev1.NodeInclusionPolicy) spreadOpt {
	return func(c *corev1.TopologySpreadConstraint) { c.NodeAffinityPolicy = &p }
}

func nodeTaintsPolicy(p corev1.NodeInclusionPolicy) spreadOpt {
	return func(c *corev1.TopologySpreadConstraint) { c.NodeTaintsPolicy = &p }
}

func spreadOver(cs ...corev1.TopologySpreadConstraint) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, cs...)
	}
}

// spreadCluster: app=web pods, two on a1, one on b1 and, with more, one on
// c1; zones a (a1, a2), b (b1, b2) and c (c1), n0 without a zone.
func spreadCluster(more bool, opts ...func(*Node)) []*NodeInfo {
	nodes := []Node{zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b"), zoned("b2", "b"), zoned("c1", "c", opts...)}
	web := podLabels("app", "web")
	pods := []*corev1.Pod{
		newPod("w1", web, boundTo("a1")), newPod("w2", web, boundTo("a1")), newPod("w3", web, boundTo("b1")),
		newPod("other-ns", web, inNamespace("other"), boundTo("c1")),
		newPod("leaving", web, boundTo("c1"), deleting()),
		newPod("db", podLabels("app", "db"), boundTo("c1")),
	}
	if more {
		pods = append(pods, newPod("w4", web, boundTo("c1")))
	}
	return placed(nodes, pods...)
}

func TestPodTopologySpreadFilter(t *testing.T) {
	skew, missing := []string{ReasonTopologySpread}, []string{ReasonTopologySpreadMissingLabel}
	web := podLabels("app", "web")
	dns := corev1.DoNotSchedule
	tests := []struct {
		name  string
		pod   *corev1.Pod
		nodes []*NodeInfo
		want  map[string][]string
	}{
		{"no constraints", newPod("p", web), spreadCluster(false), map[string][]string{}},
		{"ScheduleAnyway does not filter", newPod("p", web, spreadOver(spread(zoneKey, 1, corev1.ScheduleAnyway))), spreadCluster(false), map[string][]string{}},
		// Zones a:2 b:1 c:0 (the other namespace's and the leaving pod do not count).
		{"zone", newPod("p", web, spreadOver(spread(zoneKey, 1, dns))), spreadCluster(false),
			map[string][]string{"a1": skew, "a2": skew, "b1": skew, "b2": skew}},
		{"zone, maxSkew 2", newPod("p", web, spreadOver(spread(zoneKey, 2, dns))), spreadCluster(false),
			map[string][]string{"a1": skew, "a2": skew}},
		{"the pod not matching its own selector", newPod("p", spreadOver(spread(zoneKey, 1, dns))), spreadCluster(false),
			map[string][]string{"a1": skew, "a2": skew}},
		// Hosts a1:2 b1:1, the others 0.
		{"hostname", newPod("p", web, spreadOver(spread(hostnameKey, 1, dns))), spreadCluster(false),
			map[string][]string{"a1": skew, "b1": skew}},
		// Zones a:2 b:1 c:1.
		{"zone, minimum 1", newPod("p", web, spreadOver(spread(zoneKey, 1, dns))), spreadCluster(true),
			map[string][]string{"a1": skew, "a2": skew}},
		{"minDomains above the domains makes the minimum 0", newPod("p", web, spreadOver(spread(zoneKey, 1, dns, minDomains(4)))), spreadCluster(true),
			map[string][]string{"a1": skew, "a2": skew, "b1": skew, "b2": skew, "c1": skew}},
		{"minDomains met", newPod("p", web, spreadOver(spread(zoneKey, 1, dns, minDomains(3)))), spreadCluster(true),
			map[string][]string{"a1": skew, "a2": skew}},
		{"all constraints must hold", newPod("p", web, spreadOver(spread(zoneKey, 1, dns), spread(hostnameKey, 1, dns))), spreadCluster(true),
			map[string][]string{"a1": skew, "a2": skew, "b1": skew, "c1": skew}},
		{"a node without the key", newPod("p", web, spreadOver(spread(zoneKey, 1, dns))),
			append(spreadCluster(false), nodeInfo(node("n0"))), map[string][]string{"a1": skew, "a2": skew, "b1": skew, "b2": skew, "n0": missing}},
		// Zone c excluded by the pod's node affinity: a:2 b:1, minimum 1.
		{"nodeAffinityPolicy Honor (default)", newPod("p", web, spreadOver(spread(zoneKey, 1, dns)),
			required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr(zoneKey, corev1.NodeSelectorOpNotIn, "c")}})),
			spreadCluster(false), map[string][]string{"a1": skew, "a2": skew}},
		// Only zone b counts (b:1, minimum 1): the others have no matching pods.
		{"nodeSelector with nodeAffinityPolicy Honor", newPod("p", web, spreadOver(spread(zoneKey, 1, dns)), withNodeSelector(zoneKey, "b")),
			spreadCluster(false), map[string][]string{}},
		{"nodeAffinityPolicy Ignore", newPod("p", web, spreadOver(spread(zoneKey, 1, dns, nodeAffinityPolicy(corev1.NodeInclusionPolicyIgnore))),
			required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr(zoneKey, corev1.NodeSelectorOpNotIn, "c")}})),
			spreadCluster(false), map[string][]string{"a1": skew, "a2": skew, "b1": skew, "b2": skew}},
		{"nodeTaintsPolicy Ignore (default)", newPod("p", web, spreadOver(spread(zoneKey, 1, dns))),
			spreadCluster(false, taint("dedicated", "db", corev1.TaintEffectNoSchedule)), map[string][]string{"a1": skew, "a2": skew, "b1": skew, "b2": skew}},
		{"nodeTaintsPolicy Honor", newPod("p", web, spreadOver(spread(zoneKey, 1, dns, nodeTaintsPolicy(corev1.NodeInclusionPolicyHonor)))),
			spreadCluster(false, taint("dedicated", "db", corev1.TaintEffectNoSchedule)), map[string][]string{"a1": skew, "a2": skew}},
		{"nodeTaintsPolicy Honor, tolerated", newPod("p", web, spreadOver(spread(zoneKey, 1, dns, nodeTaintsPolicy(corev1.NodeInclusionPolicyHonor))),
			tolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists})),
			spreadCluster(false, taint("dedicated", "db", corev1.TaintEffectNoSchedule)), map[string][]string{"a1": skew, "a2": skew, "b1": skew, "b2": skew}},
		{"nodeTaintsPolicy Honor, PreferNoSchedule does not count", newPod("p", web, spreadOver(spread(zoneKey, 1, dns, nodeTaintsPolicy(corev1.NodeInclusionPolicyHonor)))),
			spreadCluster(false, taint("spot", "", corev1.TaintEffectPreferNoSchedule)), map[string][]string{"a1": skew, "a2": skew, "b1": skew, "b2": skew}},
		{"nodeTaintsPolicy Honor, cordoned", newPod("p", web, spreadOver(spread(zoneKey, 1, dns, nodeTaintsPolicy(corev1.NodeInclusionPolicyHonor)))),
			spreadCluster(false, func(n *Node) { n.Unschedulable = true }), map[string][]string{"a1": skew, "a2": skew}},
		{"nodeTaintsPolicy Honor, not ready", newPod("p", web, spreadOver(spread(zoneKey, 1, dns, nodeTaintsPolicy(corev1.NodeInclusionPolicyHonor)))),
			spreadCluster(false, func(n *Node) { n.Ready = false }), map[string][]string{"a1": skew, "a2": skew}},
		{"no label selector matches nothing", newPod("p", web, spreadOver(spread(zoneKey, 1, dns, func(c *corev1.TopologySpreadConstraint) {
			c.LabelSelector = nil
		}))), spreadCluster(false), map[string][]string{}},
		{"an empty label selector counts no pods", newPod("p", web, spreadOver(spread(zoneKey, 1, dns, func(c *corev1.TopologySpreadConstraint) {
			c.LabelSelector = &metav1.LabelSelector{}
		}))), spreadCluster(false), map[string][]string{}},
		// Only w2 has rev=2: a:1 b:0 c:0.
		{"matchLabelKeys", newPod("p", web, podLabels("rev", "2"), spreadOver(spread(zoneKey, 1, dns, func(c *corev1.TopologySpreadConstraint) {
			c.MatchLabelKeys = []string{"rev"}
		}))), func() []*NodeInfo {
			nis := spreadCluster(false)
			nis[0].PodInfos[1].Pod.Labels["rev"] = "2"
			return nis
		}(), map[string][]string{"a1": skew, "a2": skew}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := filterAll(PodTopologySpread{}, tt.pod, tt.nodes, nil)
			if msg != "" {
				t.Fatalf("PreFilterCluster = %q", msg)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rejected nodes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodTopologySpreadInvalid(t *testing.T) {
	dns := corev1.DoNotSchedule
	bad := corev1.NodeInclusionPolicy("Sometimes")
	tests := []struct {
		c    corev1.TopologySpreadConstraint
		want string
	}{
		{spread(zoneKey, 0, dns), "maxSkew must be greater than zero"},
		{spread("", 1, dns), "topologyKey must not be empty"},
		{spread(zoneKey, 1, "Maybe"), `whenUnsatisfiable must be DoNotSchedule or ScheduleAnyway, not "Maybe"`},
		{spread(zoneKey, 1, dns, minDomains(0)), "minDomains must be greater than zero"},
		{spread(zoneKey, 1, corev1.ScheduleAnyway, minDomains(2)), "minDomains may only be set with whenUnsatisfiable DoNotSchedule"},
		{spread(zoneKey, 1, dns, nodeTaintsPolicy(bad)), `nodeTaintsPolicy must be Honor or Ignore, not "Sometimes"`},
		{spread(zoneKey, 1, dns, nodeAffinityPolicy(bad)), `nodeAffinityPolicy must be Honor or Ignore, not "Sometimes"`},
		{spread(zoneKey, 1, dns, func(c *corev1.TopologySpreadConstraint) {
			c.LabelSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "no spaces"}}
		}), `parse labelSelector: values[0][app]: Invalid value: "no spaces": a valid label must be an empty string or consist of ` +
			`alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character ` +
			`(e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			pod := newPod("p", spreadOver(spread(hostnameKey, 1, dns), tt.c))
			_, msg := filterAll(PodTopologySpread{}, pod, spreadCluster(false), nil)
			if want := "invalid spec.topologySpreadConstraints[1]: " + tt.want; msg != want {
				t.Errorf("PreFilterCluster = %q, want %q", msg, want)
			}
		})
	}
}

func TestPodTopologySpreadScore(t *testing.T) {
	web := podLabels("app", "web")
	sa := corev1.ScheduleAnyway
	tests := []struct {
		name  string
		pod   *corev1.Pod
		nodes []*NodeInfo
		want  map[string]int64 // nil: skipped
	}{
		{"no constraints", newPod("p", web), spreadCluster(false), nil},
		{"DoNotSchedule does not score", newPod("p", web, spreadOver(spread(zoneKey, 1, corev1.DoNotSchedule))), spreadCluster(false), nil},
		// a:2 b:1 c:0, weight log(3+2): raw a 3, b 2, c 0.
		{"zone", newPod("p", web, spreadOver(spread(zoneKey, 1, sa))), spreadCluster(false),
			map[string]int64{"a1": 0, "a2": 0, "b1": 33, "b2": 33, "c1": 100}},
		// maxSkew 3 adds 2: raw a 5, b 4, c 2.
		{"zone, maxSkew 3", newPod("p", web, spreadOver(spread(zoneKey, 3, sa))), spreadCluster(false),
			map[string]int64{"a1": 40, "a2": 40, "b1": 60, "b2": 60, "c1": 100}},
		// a1:2 b1:1, weight log(5+2): raw a1 4, b1 2.
		{"hostname", newPod("p", web, spreadOver(spread(hostnameKey, 1, sa))), spreadCluster(false),
			map[string]int64{"a1": 0, "a2": 100, "b1": 50, "b2": 100, "c1": 100}},
		{"a node without the key scores 0", newPod("p", web, spreadOver(spread(zoneKey, 1, sa))), append(spreadCluster(false), nodeInfo(node("n0"))),
			map[string]int64{"a1": 0, "a2": 0, "b1": 33, "b2": 33, "c1": 100, "n0": 0}},
		{"nothing matches", newPod("p", spreadOver(spread(zoneKey, 1, sa, func(c *corev1.TopologySpreadConstraint) {
			c.LabelSelector = selector("app", "none")
		}))), spreadCluster(false), map[string]int64{"a1": 100, "a2": 100, "b1": 100, "b2": 100, "c1": 100}},
		// Only zone a matches the pod's node selector: a:2 b:0 c:0, raw a 3.
		{"nodeAffinityPolicy Honor", newPod("p", web, spreadOver(spread(zoneKey, 1, sa)), withNodeSelector(zoneKey, "a")), spreadCluster(true),
			map[string]int64{"a1": 0, "a2": 0, "b1": 100, "b2": 100, "c1": 100}},
		// a:2 b:1 c:1: raw a 3, b and c 2; 100 * (3 + 2 - raw) / 3.
		{"nodeAffinityPolicy Ignore", newPod("p", web, spreadOver(spread(zoneKey, 1, sa, nodeAffinityPolicy(corev1.NodeInclusionPolicyIgnore))),
			withNodeSelector(zoneKey, "a")), spreadCluster(true),
			map[string]int64{"a1": 66, "a2": 66, "b1": 100, "b2": 100, "c1": 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scoreAll(PodTopologySpread{}, tt.pod, tt.nodes, nil)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("scores (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSchedulePodTopologySpread(t *testing.T) {
	replicas := func(n int, opts ...podOpt) []*corev1.Pod {
		var pods []*corev1.Pod
		for i := range n {
			pods = append(pods, newPod(fmt.Sprintf("web-%d", i), append([]podOpt{podLabels("app", "web"), created(10 + i)}, opts...)...))
		}
		return pods
	}
	sixNodes := []Node{zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b"), zoned("b2", "b"), zoned("c1", "c"), zoned("c2", "c")}
	db := taint("dedicated", "db", corev1.TaintEffectNoSchedule)
	tests := []struct {
		name     string
		pods     []*corev1.Pod
		nodes    []Node
		perZone  map[string]int // bound pods per zone, if set
		bindings map[string]string
		unsched  map[string]string
	}{
		{
			name:    "DoNotSchedule over zones",
			pods:    replicas(6, spreadOver(spread(zoneKey, 1, corev1.DoNotSchedule))),
			nodes:   sixNodes,
			perZone: map[string]int{"a": 2, "b": 2, "c": 2},
		},
		{
			name:    "ScheduleAnyway over zones",
			pods:    replicas(9, spreadOver(spread(zoneKey, 1, corev1.ScheduleAnyway))),
			nodes:   sixNodes,
			perZone: map[string]int{"a": 3, "b": 3, "c": 3},
		},
		{
			name:     "a tainted node still counts as a domain",
			pods:     replicas(2, spreadOver(spread(hostnameKey, 1, corev1.DoNotSchedule))),
			nodes:    []Node{node("h1"), node("h2", db)},
			bindings: map[string]string{"default/web-0": "h1"},
			unsched: map[string]string{"default/web-1": "0/2 nodes are available: " +
				"1 node(s) didn't match pod topology spread constraints, 1 node(s) had untolerated taint {dedicated: db}."},
		},
		{
			name:     "unless nodeTaintsPolicy is Honor",
			pods:     replicas(2, spreadOver(spread(hostnameKey, 1, corev1.DoNotSchedule, nodeTaintsPolicy(corev1.NodeInclusionPolicyHonor)))),
			nodes:    []Node{node("h1"), node("h2", db)},
			bindings: map[string]string{"default/web-0": "h1", "default/web-1": "h1"},
		},
		{
			name:     "missing label",
			pods:     replicas(1, spreadOver(spread(zoneKey, 1, corev1.DoNotSchedule))),
			nodes:    []Node{node("h1")},
			bindings: map[string]string{},
			unsched:  map[string]string{"default/web-0": "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label)."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Schedule(tt.pods, tt.nodes)
			msgs := map[string]string{}
			for k, u := range got.Unschedulable {
				msgs[k] = u.Message
			}
			if tt.unsched == nil {
				tt.unsched = map[string]string{}
			}
			if diff := cmp.Diff(tt.unsched, msgs); diff != "" {
				t.Errorf("unschedulable (-want +got):\n%s", diff)
			}
			if tt.bindings != nil {
				if diff := cmp.Diff(tt.bindings, got.Bindings); diff != "" {
					t.Errorf("bindings (-want +got):\n%s", diff)
				}
			}
			if tt.perZone != nil {
				zones := map[string]int{}
				for _, n := range got.Bindings {
					zones[n[:1]]++
				}
				if diff := cmp.Diff(tt.perZone, zones); diff != "" {
					t.Errorf("pods per zone (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestPodTopologySpreadWithoutPreFilter: called alone, the plugin sees only
// the node at hand.
func TestPodTopologySpreadWithoutPreFilter(t *testing.T) {
	pod := NewPodInfo(newPod("p", podLabels("app", "web"), spreadOver(spread(hostnameKey, 1, corev1.DoNotSchedule))))
	if got := (PodTopologySpread{}).Filter(pod, nodeInfo(node("n"), newPod("web", podLabels("app", "web")))); got != nil {
		t.Errorf("Filter = %q, want nil (the node is the minimum)", got)
	}
	if got := (PodTopologySpread{}).Filter(pod, nodeInfo(Node{Name: "n"})); !cmp.Equal(got, []string{ReasonTopologySpreadMissingLabel}) {
		t.Errorf("Filter = %q", got)
	}
	pod = NewPodInfo(newPod("p", podLabels("app", "web"), spreadOver(spread(hostnameKey, 3, corev1.ScheduleAnyway))))
	// One matching pod, weight log(1+2), plus maxSkew-1: round(1.0986 + 2) = 3.
	if got := (PodTopologySpread{}).Score(pod, nodeInfo(node("n"), newPod("web", podLabels("app", "web")))); got != 3 {
		t.Errorf("Score = %d, want 3", got)
	}
}
