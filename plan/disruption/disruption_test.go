package disruption

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// --- fixtures ---

type podOpt func(*corev1.Pod)

func notReady(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }

func inPhase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }

func deleting(p *corev1.Pod) {
	t := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	p.DeletionTimestamp = &t
}

func ownedBy(kind, name string) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID(kind + "-" + name), Controller: ptr(true)}}
	}
}

func labelled(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		p.Labels = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

// mkPod is a running, ready pod labelled app=web.
func mkPod(ns, name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name), Labels: map[string]string{"app": "web"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// pods makes n ready pods name-0 .. name-(n-1) with the options.
func pods(ns, name string, n int, opts ...podOpt) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range n {
		out = append(out, mkPod(ns, name+"-"+string(rune('a'+i)), opts...))
	}
	return out
}

func concat(lists ...[]*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

type pdbOpt func(*policyv1.PodDisruptionBudget)

func minAvailable(v intstr.IntOrString) pdbOpt {
	return func(p *policyv1.PodDisruptionBudget) { p.Spec.MinAvailable = &v }
}

func maxUnavailable(v intstr.IntOrString) pdbOpt {
	return func(p *policyv1.PodDisruptionBudget) { p.Spec.MaxUnavailable = &v }
}

func selector(sel *metav1.LabelSelector) pdbOpt {
	return func(p *policyv1.PodDisruptionBudget) { p.Spec.Selector = sel }
}

func alwaysAllow(p *policyv1.PodDisruptionBudget) {
	p.Spec.UnhealthyPodEvictionPolicy = ptr(policyv1.AlwaysAllow)
}

// mkPDB is a budget in namespace ns selecting app=web.
func mkPDB(ns, name string, opts ...pdbOpt) *policyv1.PodDisruptionBudget {
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 3},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("Deployment-" + name)},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas}}
}

func replicaSet(ns, name string, replicas int32, deploymentName string) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("ReplicaSet-" + name)},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas}}
	if deploymentName != "" {
		rs.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: deploymentName,
			UID: types.UID("Deployment-" + deploymentName), Controller: ptr(true)}}
	}
	return rs
}

func statefulSet(ns, name string, replicas int32) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("StatefulSet-" + name)},
		Spec: appsv1.StatefulSetSpec{Replicas: &replicas}}
}

func ptr[T any](v T) *T { return &v }

// --- tests ---

// counts is what a test checks of a Budget.
type counts struct {
	Expected, Desired, Current, Allowed int32
	Unmanaged                           []string
	SyncError                           string
}

func countsOf(b *Budget) counts {
	return counts{b.ExpectedPods, b.DesiredHealthy, b.CurrentHealthy, b.DisruptionsAllowed, b.UnmanagedPods, b.SyncError}
}

func TestEvaluate(t *testing.T) {
	objects := []runtime.Object{
		deployment("ns", "web", 3),
		replicaSet("ns", "web-old", 1, "web"),
		replicaSet("ns", "web-new", 3, "web"),
		replicaSet("ns", "five", 5, ""),
		statefulSet("ns", "db", 4),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ignored"}},
	}
	scales := ScalesFrom(objects)
	webPods := pods("ns", "web-new", 3, ownedBy("ReplicaSet", "web-new"))
	fivePods := pods("ns", "five", 5, ownedBy("ReplicaSet", "five"))
	tests := []struct {
		name  string
		pdb   *policyv1.PodDisruptionBudget
		pods  []*corev1.Pod
		scale ScaleFunc
		want  counts
		names []string // Budget.Pods, when checked
	}{
		{"minAvailable integer", mkPDB("ns", "b", minAvailable(intstr.FromInt32(2))), webPods, scales,
			counts{Expected: 3, Desired: 2, Current: 3, Allowed: 1}, nil},
		{"minAvailable integer counts pods, not replicas", mkPDB("ns", "b", minAvailable(intstr.FromInt32(2))), webPods[:2], scales,
			counts{Expected: 2, Desired: 2, Current: 2, Allowed: 0}, nil},
		{"minAvailable 50% of 3 rounds up to 2", mkPDB("ns", "b", minAvailable(intstr.FromString("50%"))), webPods, scales,
			counts{Expected: 3, Desired: 2, Current: 3, Allowed: 1}, nil},
		{"minAvailable 50% of 5 rounds up to 3", mkPDB("ns", "b", minAvailable(intstr.FromString("50%"))), fivePods, scales,
			counts{Expected: 5, Desired: 3, Current: 5, Allowed: 2}, nil},
		{"minAvailable 100% allows nothing", mkPDB("ns", "b", minAvailable(intstr.FromString("100%"))), webPods, scales,
			counts{Expected: 3, Desired: 3, Current: 3, Allowed: 0}, nil},
		{"maxUnavailable 50% of 3 rounds up to 2", mkPDB("ns", "b", maxUnavailable(intstr.FromString("50%"))), webPods, scales,
			counts{Expected: 3, Desired: 1, Current: 3, Allowed: 2}, nil},
		{"maxUnavailable 25% of 5 rounds up to 2", mkPDB("ns", "b", maxUnavailable(intstr.FromString("25%"))), fivePods, scales,
			counts{Expected: 5, Desired: 3, Current: 5, Allowed: 2}, nil},
		{"maxUnavailable 1 with one pod not ready", mkPDB("ns", "b", maxUnavailable(intstr.FromInt32(1))),
			concat(webPods[:2], pods("ns", "late", 1, ownedBy("ReplicaSet", "web-new"), notReady)), scales,
			counts{Expected: 3, Desired: 2, Current: 2, Allowed: 0}, nil},
		{"maxUnavailable above the scale: desired healthy is 0", mkPDB("ns", "b", maxUnavailable(intstr.FromInt32(10))), webPods, scales,
			counts{Expected: 3, Desired: 0, Current: 3, Allowed: 3}, nil},
		{"a Deployment's ReplicaSets count its replicas once, mid-rollout",
			mkPDB("ns", "b", maxUnavailable(intstr.FromInt32(1))),
			concat(webPods, pods("ns", "web-old", 1, ownedBy("ReplicaSet", "web-old"))), scales,
			counts{Expected: 3, Desired: 2, Current: 4, Allowed: 2}, nil},
		{"StatefulSet scale", mkPDB("ns", "b", minAvailable(intstr.FromString("75%"))), pods("ns", "db", 4, ownedBy("StatefulSet", "db")), scales,
			counts{Expected: 4, Desired: 3, Current: 4, Allowed: 1}, nil},
		{"pods without a controller add nothing to the expected count",
			mkPDB("ns", "b", maxUnavailable(intstr.FromInt32(1))), concat(webPods, pods("ns", "bare", 2)), scales,
			counts{Expected: 3, Desired: 2, Current: 5, Allowed: 3, Unmanaged: []string{"bare-a", "bare-b"}}, nil},
		{"only pods without a controller: expected 0 allows nothing",
			mkPDB("ns", "b", minAvailable(intstr.FromString("10%"))), pods("ns", "bare", 2), scales,
			counts{Expected: 0, Desired: 0, Current: 2, Allowed: 0, Unmanaged: []string{"bare-a", "bare-b"}}, nil},
		{"DaemonSet pods have no scale", mkPDB("ns", "b", maxUnavailable(intstr.FromInt32(1))), pods("ns", "agent", 3, ownedBy("DaemonSet", "agent")), scales,
			counts{Current: 3, SyncError: "daemonsets.apps does not implement the scale subresource"}, nil},
		{"DaemonSet pods with an integer minAvailable are fine", mkPDB("ns", "b", minAvailable(intstr.FromInt32(2))), pods("ns", "agent", 3, ownedBy("DaemonSet", "agent")), scales,
			counts{Expected: 3, Desired: 2, Current: 3, Allowed: 1}, nil},
		{"a stale controller reference", mkPDB("ns", "b", maxUnavailable(intstr.FromInt32(1))), pods("ns", "gone", 1, ownedBy("ReplicaSet", "gone")), scales,
			counts{Current: 1, SyncError: `found no controllers for pod "gone-a"`}, nil},
		{"no scale function: the matching pods are the expected count", mkPDB("ns", "b", maxUnavailable(intstr.FromString("50%"))), fivePods, nil,
			counts{Expected: 5, Desired: 2, Current: 5, Allowed: 3}, nil},
		{"pods not ready or being deleted are not healthy", mkPDB("ns", "b", minAvailable(intstr.FromInt32(1))),
			concat(pods("ns", "x", 1), pods("ns", "y", 1, notReady), pods("ns", "z", 1, deleting), pods("ns", "w", 1, inPhase(corev1.PodSucceeded), notReady)), scales,
			counts{Expected: 4, Desired: 1, Current: 1, Allowed: 0}, nil},
		{"empty selector: every pod of the namespace", mkPDB("ns", "b", minAvailable(intstr.FromInt32(1)), selector(&metav1.LabelSelector{})),
			concat(pods("ns", "a", 1, labelled("app", "a")), pods("ns", "b", 1, labelled()), pods("other", "c", 1)), scales,
			counts{Expected: 2, Desired: 1, Current: 2, Allowed: 1}, []string{"a-a", "b-a"}},
		{"missing selector: no pod", mkPDB("ns", "b", minAvailable(intstr.FromInt32(0)), selector(nil)), webPods, scales,
			counts{}, nil},
		{"expression selector", mkPDB("ns", "b", minAvailable(intstr.FromInt32(0)), selector(&metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"db", "cache"}}}})),
			concat(pods("ns", "a", 1, labelled("tier", "db")), pods("ns", "b", 1, labelled("tier", "web")), pods("ns", "c", 1, labelled("tier", "cache"))), scales,
			counts{Expected: 2, Desired: 0, Current: 2, Allowed: 2}, []string{"a-a", "c-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Evaluate([]*policyv1.PodDisruptionBudget{tt.pdb}, tt.pods, tt.scale)
			bs := e.Budgets()
			if len(bs) != 1 {
				t.Fatalf("Budgets = %d, want 1", len(bs))
			}
			if diff := cmp.Diff(tt.want, countsOf(bs[0])); diff != "" {
				t.Errorf("budget (-want +got):\n%s", diff)
			}
			if tt.names != nil {
				if diff := cmp.Diff(tt.names, bs[0].Pods); diff != "" {
					t.Errorf("pods (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestCanEvict(t *testing.T) {
	type step struct {
		pod    *corev1.Pod
		ok     bool
		reason string // substring
	}
	web := pods("ns", "web", 3)
	tests := []struct {
		name  string
		pdbs  []*policyv1.PodDisruptionBudget
		pods  []*corev1.Pod
		scale ScaleFunc // nil: the matching pods are the expected count
		steps []step
	}{
		{
			name: "a drain takes what the budget allows and no more",
			pdbs: []*policyv1.PodDisruptionBudget{mkPDB("ns", "web", minAvailable(intstr.FromInt32(2)))},
			pods: web,
			steps: []step{
				{web[0], true, ""},
				{web[1], false, "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget web needs 2 healthy pods and has 2 currently"},
				{web[2], false, "needs 2 healthy pods and has 2 currently"},
				{web[0], true, ""}, // asked again: not counted twice
			},
		},
		{
			name: "pods no budget selects, or of other namespaces, can go",
			pdbs: []*policyv1.PodDisruptionBudget{mkPDB("ns", "web", minAvailable(intstr.FromString("100%")))},
			pods: concat(web, pods("ns", "db", 1, labelled("app", "db")), pods("other", "web", 1)),
			steps: []step{
				{mkPod("ns", "db-a", labelled("app", "db")), true, ""},
				{mkPod("other", "web-a"), true, ""},
				{web[0], false, "needs 3 healthy pods and has 3 currently"},
			},
		},
		{
			name: "pending, finished and terminating pods go without using the budget",
			pdbs: []*policyv1.PodDisruptionBudget{mkPDB("ns", "web", maxUnavailable(intstr.FromInt32(0)))},
			pods: web,
			steps: []step{
				{mkPod("ns", "p", inPhase(corev1.PodPending), notReady), true, ""},
				{mkPod("ns", "s", inPhase(corev1.PodSucceeded), notReady), true, ""},
				{mkPod("ns", "f", inPhase(corev1.PodFailed), notReady), true, ""},
				{mkPod("ns", "d", deleting), true, ""},
				{web[0], false, "needs 3 healthy pods"},
			},
		},
		{
			name: "an unready pod goes for free while the budget is healthy",
			pdbs: []*policyv1.PodDisruptionBudget{mkPDB("ns", "web", minAvailable(intstr.FromInt32(2)))},
			pods: concat(web[:2], pods("ns", "sick", 1, notReady)),
			steps: []step{
				{mkPod("ns", "sick-a", notReady), true, ""},
				{web[0], false, "needs 2 healthy pods and has 2 currently"},
			},
		},
		{
			name: "an unready pod of an unhealthy budget needs an allowed disruption",
			pdbs: []*policyv1.PodDisruptionBudget{mkPDB("ns", "web", minAvailable(intstr.FromInt32(3)))},
			pods: concat(web[:2], pods("ns", "sick", 1, notReady)),
			steps: []step{
				{mkPod("ns", "sick-a", notReady), false, "needs 3 healthy pods and has 2 currently"},
			},
		},
		{
			name: "AlwaysAllow lets unready pods go",
			pdbs: []*policyv1.PodDisruptionBudget{mkPDB("ns", "web", minAvailable(intstr.FromInt32(3)), alwaysAllow)},
			pods: concat(web[:2], pods("ns", "sick", 1, notReady)),
			steps: []step{
				{mkPod("ns", "sick-a", notReady), true, ""},
				{web[0], false, "needs 3 healthy pods and has 2 currently"},
			},
		},
		{
			name: "two budgets for one pod",
			pdbs: []*policyv1.PodDisruptionBudget{
				mkPDB("ns", "b", maxUnavailable(intstr.FromInt32(5))),
				mkPDB("ns", "a", maxUnavailable(intstr.FromInt32(5)), selector(&metav1.LabelSelector{})),
			},
			pods:  web,
			steps: []step{{web[0], false, "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support. (a, b)"}},
		},
		{
			name:  "a budget that could not be evaluated allows nothing",
			pdbs:  []*policyv1.PodDisruptionBudget{mkPDB("ns", "agent", maxUnavailable(intstr.FromInt32(1)))},
			pods:  pods("ns", "agent", 2, ownedBy("DaemonSet", "agent")),
			scale: ScalesFrom(nil),
			steps: []step{{mkPod("ns", "agent-a", ownedBy("DaemonSet", "agent")), false,
				"The disruption budget agent allows no disruption: daemonsets.apps does not implement the scale subresource"}},
		},
		{
			name:  "pods without a controller and a percentage",
			pdbs:  []*policyv1.PodDisruptionBudget{mkPDB("ns", "web", maxUnavailable(intstr.FromString("50%")))},
			pods:  web,
			scale: ScalesFrom(nil),
			steps: []step{{web[0], false, "The disruption budget web expects 0 pods: the pods it selects have no controller"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Evaluate(tt.pdbs, tt.pods, tt.scale)
			for i, s := range tt.steps {
				ok, reason := e.CanEvict(s.pod)
				if ok != s.ok || !strings.Contains(reason, s.reason) || s.ok && reason != "" {
					t.Errorf("step %d: CanEvict(%s) = %v, %q; want %v, %q", i, s.pod.Name, ok, reason, s.ok, s.reason)
				}
			}
		})
	}
}

func TestCanEvictUpdatesBudgets(t *testing.T) {
	web := pods("ns", "web", 4)
	e := Evaluate([]*policyv1.PodDisruptionBudget{mkPDB("ns", "web", maxUnavailable(intstr.FromInt32(2)))}, web, nil)
	for _, p := range web[:2] {
		if ok, reason := e.CanEvict(p); !ok {
			t.Fatalf("CanEvict(%s) refused: %s", p.Name, reason)
		}
	}
	if diff := cmp.Diff(counts{Expected: 4, Desired: 2, Current: 2, Allowed: 0}, countsOf(e.Budgets()[0])); diff != "" {
		t.Errorf("budget after two evictions (-want +got):\n%s", diff)
	}
}

func TestStatus(t *testing.T) {
	then := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	now := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	pdb := mkPDB("ns", "web", minAvailable(intstr.FromInt32(2)))
	pdb.Status.Conditions = []metav1.Condition{{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionTrue, LastTransitionTime: then}}
	tests := []struct {
		name  string
		pods  []*corev1.Pod
		scale ScaleFunc
		want  policyv1.PodDisruptionBudgetStatus
	}{
		{"still allowed: the transition time is kept", pods("ns", "web", 3), nil, policyv1.PodDisruptionBudgetStatus{
			ObservedGeneration: 3, ExpectedPods: 3, DesiredHealthy: 2, CurrentHealthy: 3, DisruptionsAllowed: 1,
			Conditions: []metav1.Condition{{Type: "DisruptionAllowed", Status: metav1.ConditionTrue, Reason: "SufficientPods",
				ObservedGeneration: 3, LastTransitionTime: then}},
		}},
		{"no longer allowed: a new transition", pods("ns", "web", 2), nil, policyv1.PodDisruptionBudgetStatus{
			ObservedGeneration: 3, ExpectedPods: 2, DesiredHealthy: 2, CurrentHealthy: 2,
			Conditions: []metav1.Condition{{Type: "DisruptionAllowed", Status: metav1.ConditionFalse, Reason: "InsufficientPods",
				ObservedGeneration: 3, LastTransitionTime: metav1.NewTime(now)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate([]*policyv1.PodDisruptionBudget{pdb}, tt.pods, tt.scale).Budgets()[0].Status(now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Status (-want +got):\n%s", diff)
			}
		})
	}
	failed := mkPDB("ns", "agent", maxUnavailable(intstr.FromString("10%")))
	got := Evaluate([]*policyv1.PodDisruptionBudget{failed}, pods("ns", "agent", 1, ownedBy("DaemonSet", "agent")), ScalesFrom(nil)).Budgets()[0].Status(now)
	if c := got.Conditions[0]; c.Reason != "SyncFailed" || c.Status != metav1.ConditionFalse || c.Message != "daemonsets.apps does not implement the scale subresource" {
		t.Errorf("fail-safe condition = %+v", c)
	}
}

func TestScalesFrom(t *testing.T) {
	objs := []runtime.Object{
		deployment("ns", "web", 4),
		replicaSet("ns", "web-1", 2, "web"),
		replicaSet("ns", "orphan", 0, ""),
		replicaSet("ns", "lost", 2, "deleted"),
		&corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rc", UID: "ReplicationController-rc"}},
	}
	f := ScalesFrom(objs)
	ref := func(kind, name string, uid types.UID) *metav1.OwnerReference {
		return &metav1.OwnerReference{Kind: kind, Name: name, UID: uid}
	}
	tests := []struct {
		name  string
		ns    string
		ref   *metav1.OwnerReference
		want  Scale
		found bool
		err   string
	}{
		{"ReplicaSet of a Deployment", "ns", ref("ReplicaSet", "web-1", "ReplicaSet-web-1"), Scale{"Deployment-web", 4}, true, ""},
		{"lone ReplicaSet", "ns", ref("ReplicaSet", "orphan", "ReplicaSet-orphan"), Scale{"ReplicaSet-orphan", 0}, true, ""},
		{"ReplicaSet of a missing Deployment", "ns", ref("ReplicaSet", "lost", "ReplicaSet-lost"), Scale{}, false, ""},
		{"UID mismatch", "ns", ref("ReplicaSet", "web-1", "other"), Scale{}, false, ""},
		{"other namespace", "elsewhere", ref("ReplicaSet", "web-1", "ReplicaSet-web-1"), Scale{}, false, ""},
		{"ReplicationController without replicas", "ns", ref("ReplicationController", "rc", "ReplicationController-rc"), Scale{"ReplicationController-rc", 1}, true, ""},
		{"Job", "ns", ref("Job", "j", "x"), Scale{}, false, "jobs.batch does not implement the scale subresource"},
		{"unknown kind", "ns", ref("Widget", "w", "x"), Scale{}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, found, err := f(tt.ns, tt.ref)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if s != tt.want || found != tt.found || gotErr != tt.err {
				t.Errorf("scale = %+v, %v, %q; want %+v, %v, %q", s, found, gotErr, tt.want, tt.found, tt.err)
			}
		})
	}
}
