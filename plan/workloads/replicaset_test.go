package workloads

import (
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podSpec describes a pod of the ReplicaSet "rs" for the scale-down tests.
type podSpec struct {
	name      string
	node      string
	phase     corev1.PodPhase
	readyAgo  time.Duration // 0: not ready
	restarts  int32
	createdAt time.Duration // before t0
	cost      string        // pod-deletion-cost annotation
}

func (ps podSpec) pod(rs *appsv1.ReplicaSet) *corev1.Pod {
	t := true
	p := &corev1.Pod{
		TypeMeta: typePod,
		ObjectMeta: metav1.ObjectMeta{
			Name: ps.name, Namespace: "default", UID: types.UID("uid-" + ps.name),
			Labels:            map[string]string{"app": rs.Name},
			CreationTimestamp: metav1.NewTime(t0.Add(-ps.createdAt)),
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &t}},
		},
		Spec:   corev1.PodSpec{NodeName: ps.node, Containers: []corev1.Container{{Name: "main", Image: "nginx:1.0"}}},
		Status: corev1.PodStatus{Phase: ps.phase, ContainerStatuses: []corev1.ContainerStatus{{Name: "main", RestartCount: ps.restarts}}},
	}
	if ps.cost != "" {
		p.Annotations = map[string]string{podDeletionCostAnnotation: ps.cost}
	}
	if ps.readyAgo > 0 {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(-ps.readyAgo))}}
	}
	return p
}

func TestReplicaSetScaleDownOrder(t *testing.T) {
	ladder := []podSpec{
		{name: "a-old", node: "n1", phase: corev1.PodRunning, readyAgo: time.Hour, createdAt: 2 * time.Hour},
		{name: "b-restarts", node: "n2", phase: corev1.PodRunning, readyAgo: time.Hour, restarts: 5, createdAt: 2 * time.Hour},
		{name: "c-young", node: "n3", phase: corev1.PodRunning, readyAgo: time.Minute, createdAt: 2 * time.Hour},
		{name: "d-notready", node: "n4", phase: corev1.PodRunning, createdAt: 2 * time.Hour},
		{name: "e-unknown", node: "n5", phase: corev1.PodUnknown, createdAt: 2 * time.Hour},
		{name: "f-pending", node: "n6", phase: corev1.PodPending, createdAt: 2 * time.Hour},
		{name: "g-unassigned", phase: corev1.PodPending, createdAt: 2 * time.Hour},
	}
	tests := []struct {
		name     string
		pods     []podSpec
		replicas int32
		deleted  []string
	}{
		{"unassigned first", ladder, 6, []string{"g-unassigned"}},
		{"then pending", ladder, 5, []string{"f-pending", "g-unassigned"}},
		{"then unknown", ladder, 4, []string{"e-unknown", "f-pending", "g-unassigned"}},
		{"then not ready", ladder, 3, []string{"d-notready", "e-unknown", "f-pending", "g-unassigned"}},
		{"then ready for less time", ladder, 2, []string{"c-young", "d-notready", "e-unknown", "f-pending", "g-unassigned"}},
		{"then more restarts", ladder, 1, []string{"b-restarts", "c-young", "d-notready", "e-unknown", "f-pending", "g-unassigned"}},
		{"newer before older", []podSpec{
			{name: "old", node: "n1", phase: corev1.PodPending, createdAt: time.Hour},
			{name: "new", node: "n2", phase: corev1.PodPending, createdAt: time.Minute},
		}, 1, []string{"new"}},
		{"lower deletion cost first", []podSpec{
			{name: "cheap", node: "n1", phase: corev1.PodRunning, readyAgo: time.Hour, cost: "-5"},
			{name: "dear", node: "n2", phase: corev1.PodRunning, readyAgo: time.Minute, cost: "10"},
		}, 1, []string{"cheap"}},
		{"doubled up first", []podSpec{
			{name: "alone", node: "n1", phase: corev1.PodRunning, readyAgo: time.Minute},
			{name: "crowded-1", node: "n2", phase: corev1.PodRunning, readyAgo: time.Hour},
			{name: "crowded-2", node: "n2", phase: corev1.PodRunning, readyAgo: time.Hour},
		}, 2, []string{"crowded-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t)
			rs := newReplicaSet("rs", tt.replicas)
			c.add(rs)
			rs = c.rss[nsName{"default", "rs"}]
			for _, ps := range tt.pods {
				c.add(ps.pod(rs))
			}
			ch := c.pass()
			var deleted []string
			for _, r := range ch.Delete {
				deleted = append(deleted, r.Name)
			}
			sort.Strings(deleted)
			if diff := cmp.Diff(tt.deleted, deleted); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
			if len(ch.Put) != 1 {
				t.Errorf("puts: %s", describe(ch))
			}
		})
	}
}

func TestReplicaSetStatusAndFailedPods(t *testing.T) {
	c := newCluster(t)
	rs := newReplicaSet("rs", 3)
	rs.Spec.MinReadySeconds = 10
	c.add(rs)
	c.settle()
	pods := c.podsOf("ReplicaSet", "rs")
	if len(pods) != 3 {
		t.Fatalf("pods %v", pods)
	}
	c.readyAll()
	c.settle()
	got := c.rss[nsName{"default", "rs"}].Status
	want := appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 0, ObservedGeneration: 1, TerminatingReplicas: int32Ptr(0)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status before minReadySeconds (-want +got):\n%s", diff)
	}
	c.now = c.now.Add(11 * time.Second)
	c.settle()
	if got := c.rss[nsName{"default", "rs"}].Status.AvailableReplicas; got != 3 {
		t.Errorf("availableReplicas after minReadySeconds = %d, want 3", got)
	}

	failed := pods[0]
	c.setPods(func(p *corev1.Pod) bool { return p.Name == failed }, corev1.PodFailed, false)
	c.clearEvents()
	c.settle()
	if now := c.podsOf("ReplicaSet", "rs"); len(now) != 3 {
		t.Errorf("pods after failure %v (was %v)", now, pods)
	}
	if _, ok := c.pods[nsName{"default", failed}]; ok {
		t.Errorf("failed pod %s was not deleted", failed)
	}
	events := c.eventsFor("ReplicaSet", "rs")
	if len(events) != 2 || events[0] != "SuccessfulDelete: Deleted pod: "+failed {
		t.Errorf("events %v", events)
	}
}

func TestReplicaSetAdoptsAndReleases(t *testing.T) {
	c := newCluster(t)
	orphan := &corev1.Pod{
		TypeMeta:   typePod,
		ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: "default", Labels: map[string]string{"app": "rs"}},
	}
	c.add(newReplicaSet("rs", 1), orphan)
	c.settle()
	if diff := cmp.Diff([]string{"stray"}, c.podsOf("ReplicaSet", "rs")); diff != "" {
		t.Fatalf("adoption (-want +got):\n%s", diff)
	}
	// Relabelled out of the selector, it is released and replaced.
	p := c.pods[nsName{"default", "stray"}].DeepCopy()
	p.Labels = map[string]string{"app": "debug"}
	c.add(p)
	c.settle()
	if ref := metav1.GetControllerOf(c.pods[nsName{"default", "stray"}]); ref != nil {
		t.Errorf("released pod still controlled by %v", ref)
	}
	if n := len(c.podsOf("ReplicaSet", "rs")); n != 1 {
		t.Errorf("%d pods, want a replacement", n)
	}
}

func TestPodNamesNeverCollide(t *testing.T) {
	in := Input{Now: t0, Seed: "s", ReplicaSets: []*appsv1.ReplicaSet{newReplicaSet("rs", 1)}}
	in.ReplicaSets[0].UID = "uid-rs"
	first := Reconcile(in)
	var name string
	for _, o := range first.Put {
		if p, ok := o.(*corev1.Pod); ok {
			name = p.Name
		}
	}
	// A pod that already has the name the seed gives first.
	in.Pods = []*corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}}
	for _, o := range Reconcile(in).Put {
		if p, ok := o.(*corev1.Pod); ok && p.Name == name {
			t.Errorf("generated %s again", name)
		}
	}
}

func TestReplicationController(t *testing.T) {
	c := newCluster(t)
	tpl := podTemplate("legacy", "nginx:1.0")
	c.add(&corev1.ReplicationController{
		TypeMeta:   typeRC,
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "default"},
		Spec:       corev1.ReplicationControllerSpec{Replicas: int32Ptr(2), Template: &tpl},
	})
	c.settle()
	pods := c.podsOf("ReplicationController", "legacy")
	if len(pods) != 2 {
		t.Fatalf("pods %v", pods)
	}
	p := c.pods[nsName{"default", pods[0]}]
	if ref := p.OwnerReferences[0]; ref.APIVersion != "v1" || ref.Kind != "ReplicationController" {
		t.Errorf("owner %+v", ref)
	}
	c.readyAll()
	c.settle()
	want := corev1.ReplicationControllerStatus{Replicas: 2, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, ObservedGeneration: 1}
	if diff := cmp.Diff(want, c.rcs[nsName{"default", "legacy"}].Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	rc := c.rcs[nsName{"default", "legacy"}].DeepCopy()
	rc.Spec.Replicas = int32Ptr(1)
	c.add(rc)
	c.settle()
	if n := len(c.podsOf("ReplicationController", "legacy")); n != 1 {
		t.Errorf("%d pods after scaling to 1", n)
	}
	if got := c.rcs[nsName{"default", "legacy"}].Status; got.Replicas != 1 || got.ObservedGeneration != 2 {
		t.Errorf("status %+v", got)
	}
}
