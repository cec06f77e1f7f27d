package workloads

import (
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// daemonNodes maps node to the live daemon pods on it.
func (c *cluster) daemonNodes(ds string) map[string][]string {
	out := map[string][]string{}
	for _, p := range c.pods {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "DaemonSet" && ref.Name == ds && p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Name)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func nodesOf(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestDaemonSetPlacement(t *testing.T) {
	c := newCluster(t)
	ssd := map[string]string{"disk": "ssd"}
	c.nodes = []Node{
		node("node-a", ssd),
		node("node-b", ssd, corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}),
		node("node-c", map[string]string{"disk": "hdd"}),
	}
	c.add(newDaemonSet("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = ssd }))
	c.settle()
	placed := c.daemonNodes("agent")
	if diff := cmp.Diff([]string{"node-a"}, nodesOf(placed)); diff != "" {
		t.Fatalf("nodes with a daemon pod (-want +got):\n%s", diff)
	}
	p := c.pods[nsName{"default", placed["node-a"][0]}]
	hash := ComputeHash(&c.dss[nsName{"default", "agent"}].Spec.Template, nil)
	if p.Spec.NodeName != "node-a" || p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] != hash {
		t.Errorf("pod node %q hash label %q, want node-a and %s", p.Spec.NodeName, p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey], hash)
	}
	wantAffinity := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-a"}}}}},
	}}}
	if diff := cmp.Diff(wantAffinity, p.Spec.Affinity); diff != "" {
		t.Errorf("affinity (-want +got):\n%s", diff)
	}
	var tols []string
	for _, tol := range p.Spec.Tolerations {
		tols = append(tols, tol.Key+":"+string(tol.Effect))
	}
	wantTols := []string{
		"node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/unreachable:NoExecute",
		"node.kubernetes.io/disk-pressure:NoSchedule", "node.kubernetes.io/memory-pressure:NoSchedule",
		"node.kubernetes.io/pid-pressure:NoSchedule", "node.kubernetes.io/unschedulable:NoSchedule",
	}
	if diff := cmp.Diff(wantTols, tols); diff != "" {
		t.Errorf("tolerations (-want +got):\n%s", diff)
	}
	revs := values(c.revs)
	if len(revs) != 1 || revs[0].Name != "agent-"+hash || revs[0].Revision != 1 || revs[0].Labels[appsv1.DefaultDaemonSetUniqueLabelKey] != hash {
		t.Errorf("controller revisions %+v", revs)
	}

	c.readyAll()
	c.settle()
	want := appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1, UpdatedNumberScheduled: 1, ObservedGeneration: 1}
	if diff := cmp.Diff(want, c.dss[nsName{"default", "agent"}].Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}

	// A new eligible node gets a pod; a node whose label changes loses it;
	// a cordoned node keeps and gets daemon pods (they tolerate it).
	c.nodes = append(c.nodes, node("node-d", ssd))
	c.nodes[0].Labels = map[string]string{"disk": "hdd"}
	c.nodes = append(c.nodes, Node{Name: "node-e", Labels: ssd, Ready: true, Unschedulable: true})
	c.settle()
	if diff := cmp.Diff([]string{"node-d", "node-e"}, nodesOf(c.daemonNodes("agent"))); diff != "" {
		t.Errorf("after node changes (-want +got):\n%s", diff)
	}

	// A node that stops being ready keeps its pod but gets no new one.
	c.readyAll()
	c.settle()
	c.nodes[3].Ready = false // node-d
	c.nodes = append(c.nodes, Node{Name: "node-f", Labels: ssd, Ready: false})
	c.settle()
	if diff := cmp.Diff([]string{"node-d", "node-e"}, nodesOf(c.daemonNodes("agent"))); diff != "" {
		t.Errorf("with not-ready nodes (-want +got):\n%s", diff)
	}
	// As in Kubernetes, the pod kept on the not-ready node counts as
	// misscheduled: no new pod would be placed there.
	st := c.dss[nsName{"default", "agent"}].Status
	if st.DesiredNumberScheduled != 1 || st.NumberMisscheduled != 1 || st.CurrentNumberScheduled != 1 {
		t.Errorf("status with not-ready nodes %+v", st)
	}
	msg, done, err := DaemonSetRolloutStatus(c.dss[nsName{"default", "agent"}])
	if err != nil || !done || msg != "daemon set \"agent\" successfully rolled out\n" {
		t.Errorf("rollout status %q %v %v", msg, done, err)
	}
}

func TestDaemonSetTolerationsAndNoExecute(t *testing.T) {
	c := newCluster(t)
	c.nodes = []Node{node("node-a", nil), node("node-b", nil)}
	c.add(newDaemonSet("agent"))
	c.settle()
	c.readyAll()
	c.settle()
	// A NoExecute taint the pod does not tolerate evicts it; a NoSchedule
	// taint does not.
	c.nodes[0].Taints = []corev1.Taint{{Key: "maintenance", Effect: corev1.TaintEffectNoExecute}}
	c.nodes[1].Taints = []corev1.Taint{{Key: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	c.settle()
	if diff := cmp.Diff([]string{"node-b"}, nodesOf(c.daemonNodes("agent"))); diff != "" {
		t.Errorf("after taints (-want +got):\n%s", diff)
	}
	if st := c.dss[nsName{"default", "agent"}].Status; st.NumberMisscheduled != 1 || st.DesiredNumberScheduled != 0 {
		t.Errorf("status %+v: the pod on node-b is misscheduled", st)
	}
	// Tolerating both brings it back everywhere.
	ds := c.dss[nsName{"default", "agent"}].DeepCopy()
	ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	c.add(ds)
	c.settle()
	if diff := cmp.Diff([]string{"node-a", "node-b"}, nodesOf(c.daemonNodes("agent"))); diff != "" {
		t.Errorf("tolerating everything (-want +got):\n%s", diff)
	}
}

func TestDaemonSetRollingUpdate(t *testing.T) {
	c := newCluster(t)
	c.nodes = []Node{node("node-a", nil), node("node-b", nil), node("node-c", nil)}
	c.add(newDaemonSet("agent"))
	c.settle()
	c.readyAll()
	c.settle()

	ds := c.dss[nsName{"default", "agent"}].DeepCopy()
	ds.Spec.Template.Spec.Containers[0].Image = "agent:2.0"
	c.add(ds)
	newHash := ComputeHash(&ds.Spec.Template, nil)
	updated := func() int {
		n := 0
		for _, p := range c.pods {
			if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == newHash && p.DeletionTimestamp == nil {
				n++
			}
		}
		return n
	}
	for step := 1; step <= 3; step++ {
		c.settle()
		if got := updated(); got != step {
			t.Fatalf("step %d: %d updated pods", step, got)
		}
		if n := len(c.pods); n != 3 {
			t.Fatalf("step %d: %d pods, want one per node", step, n)
		}
		c.readyAll()
	}
	c.settle()
	st := c.dss[nsName{"default", "agent"}].Status
	if st.UpdatedNumberScheduled != 3 || st.NumberAvailable != 3 || st.ObservedGeneration != 2 {
		t.Errorf("status %+v", st)
	}
	if n := len(c.revs); n != 2 {
		t.Errorf("%d controller revisions, want 2", n)
	}
}

func TestDaemonSetSurge(t *testing.T) {
	c := newCluster(t)
	c.nodes = []Node{node("node-a", nil), node("node-b", nil)}
	c.add(newDaemonSet("agent", func(ds *appsv1.DaemonSet) {
		surge, unavailable := intstr.FromInt32(1), intstr.FromInt32(0)
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxSurge: &surge, MaxUnavailable: &unavailable}}
	}))
	c.settle()
	c.readyAll()
	c.settle()
	ds := c.dss[nsName{"default", "agent"}].DeepCopy()
	ds.Spec.Template.Spec.Containers[0].Image = "agent:2.0"
	c.add(ds)
	c.settle()
	placed := c.daemonNodes("agent")
	if len(placed["node-a"]) != 2 || len(placed["node-b"]) != 1 {
		t.Fatalf("surge: %v, want a second pod on node-a only", placed)
	}
	c.readyAll()
	c.settle()
	placed = c.daemonNodes("agent")
	if len(placed["node-a"]) != 1 || len(placed["node-b"]) != 2 {
		t.Fatalf("after the first new pod was ready: %v", placed)
	}
}

func TestDaemonSetOnDelete(t *testing.T) {
	c := newCluster(t)
	c.nodes = []Node{node("node-a", nil)}
	c.add(newDaemonSet("agent", func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
	}))
	c.settle()
	c.readyAll()
	ds := c.dss[nsName{"default", "agent"}].DeepCopy()
	ds.Spec.Template.Spec.Containers[0].Image = "agent:2.0"
	c.add(ds)
	c.settle()
	old := c.daemonNodes("agent")["node-a"]
	if st := c.dss[nsName{"default", "agent"}].Status; st.UpdatedNumberScheduled != 0 {
		t.Errorf("OnDelete replaced the pod: %+v", st)
	}
	delete(c.pods, nsName{"default", old[0]})
	c.settle()
	if st := c.dss[nsName{"default", "agent"}].Status; st.UpdatedNumberScheduled != 1 {
		t.Errorf("deleted pod not replaced by an updated one: %+v", st)
	}
}

func TestNodeAffinity(t *testing.T) {
	n := &Node{Name: "node-a", Labels: map[string]string{"zone": "a", "cpus": "8"}}
	req := func(key string, op corev1.NodeSelectorOperator, vals ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: vals}
	}
	affinity := func(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
	exprs := func(rs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: rs}
	}
	tests := []struct {
		name string
		spec corev1.PodSpec
		want bool
	}{
		{"nothing", corev1.PodSpec{}, true},
		{"nodeSelector", corev1.PodSpec{NodeSelector: map[string]string{"zone": "a"}}, true},
		{"nodeSelector mismatch", corev1.PodSpec{NodeSelector: map[string]string{"zone": "b"}}, false},
		{"In", corev1.PodSpec{Affinity: affinity(exprs(req("zone", corev1.NodeSelectorOpIn, "a", "b")))}, true},
		{"NotIn", corev1.PodSpec{Affinity: affinity(exprs(req("zone", corev1.NodeSelectorOpNotIn, "a")))}, false},
		{"NotIn absent key", corev1.PodSpec{Affinity: affinity(exprs(req("gpu", corev1.NodeSelectorOpNotIn, "yes")))}, true},
		{"Exists", corev1.PodSpec{Affinity: affinity(exprs(req("zone", corev1.NodeSelectorOpExists)))}, true},
		{"DoesNotExist", corev1.PodSpec{Affinity: affinity(exprs(req("zone", corev1.NodeSelectorOpDoesNotExist)))}, false},
		{"Gt", corev1.PodSpec{Affinity: affinity(exprs(req("cpus", corev1.NodeSelectorOpGt, "4")))}, true},
		{"Lt", corev1.PodSpec{Affinity: affinity(exprs(req("cpus", corev1.NodeSelectorOpLt, "4")))}, false},
		{"terms are ORed", corev1.PodSpec{Affinity: affinity(exprs(req("zone", corev1.NodeSelectorOpIn, "b")), exprs(req("cpus", corev1.NodeSelectorOpExists)))}, true},
		{"requirements are ANDed", corev1.PodSpec{Affinity: affinity(exprs(req("zone", corev1.NodeSelectorOpIn, "a"), req("cpus", corev1.NodeSelectorOpIn, "2")))}, false},
		{"empty term matches nothing", corev1.PodSpec{Affinity: affinity(corev1.NodeSelectorTerm{})}, false},
		{"no terms match nothing", corev1.PodSpec{Affinity: affinity()}, false},
		{"matchFields name", corev1.PodSpec{Affinity: affinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpIn, "node-a")}})}, true},
		{"matchFields other name", corev1.PodSpec{Affinity: affinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpIn, "node-b")}})}, false},
	}
	for _, tt := range tests {
		if got := matchesNodeSelectorAndAffinity(&tt.spec, n); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDaemonSetHistoryLimit(t *testing.T) {
	c := newCluster(t)
	c.nodes = []Node{node("node-a", nil)}
	c.add(newDaemonSet("agent", func(ds *appsv1.DaemonSet) { ds.Spec.RevisionHistoryLimit = int32Ptr(1) }))
	c.settle()
	for i := range 3 {
		c.readyAll()
		c.now = c.now.Add(time.Minute)
		c.add(RestartDaemonSet(c.dss[nsName{"default", "agent"}], c.now))
		for range 3 {
			c.settle()
			c.readyAll()
		}
		if st := c.dss[nsName{"default", "agent"}].Status; st.UpdatedNumberScheduled != 1 {
			t.Fatalf("restart %d: status %+v", i, st)
		}
	}
	var revs []int64
	for _, r := range values(c.revs) {
		revs = append(revs, r.Revision)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
	if diff := cmp.Diff([]int64{3, 4}, revs); diff != "" {
		t.Errorf("revisions kept (-want +got):\n%s", diff)
	}
}
