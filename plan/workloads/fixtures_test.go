package workloads

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/clusterctl/clusterctl/plan/controller"
)

// t0 is the start of every test's clock.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// cluster is a fake store that applies Changes the way the CLI does:
// Put replaces whole objects (bumping metadata.generation when the spec
// changes), Delete removes them, or, with graceful set, marks pods
// terminating until finishTermination.
type cluster struct {
	t           *testing.T
	now         time.Time
	invocations int
	graceful    bool

	deployments map[nsName]*appsv1.Deployment
	rss         map[nsName]*appsv1.ReplicaSet
	rcs         map[nsName]*corev1.ReplicationController
	dss         map[nsName]*appsv1.DaemonSet
	sets        map[nsName]*appsv1.StatefulSet
	revs        map[nsName]*appsv1.ControllerRevision
	pvcs        map[nsName]*corev1.PersistentVolumeClaim
	pods        map[nsName]*corev1.Pod
	nodes       []Node
	events      []controller.Event
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return &cluster{
		t: t, now: t0,
		deployments: map[nsName]*appsv1.Deployment{},
		rss:         map[nsName]*appsv1.ReplicaSet{},
		rcs:         map[nsName]*corev1.ReplicationController{},
		dss:         map[nsName]*appsv1.DaemonSet{},
		sets:        map[nsName]*appsv1.StatefulSet{},
		revs:        map[nsName]*appsv1.ControllerRevision{},
		pvcs:        map[nsName]*corev1.PersistentVolumeClaim{},
		pods:        map[nsName]*corev1.Pod{},
	}
}

func values[V any](m map[nsName]V) []V {
	out := make([]V, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

func (c *cluster) input() Input {
	return Input{
		Now:                    c.now,
		Seed:                   fmt.Sprintf("invocation-%d", c.invocations),
		Deployments:            values(c.deployments),
		ReplicaSets:            values(c.rss),
		ReplicationControllers: values(c.rcs),
		DaemonSets:             values(c.dss),
		StatefulSets:           values(c.sets),
		ControllerRevisions:    values(c.revs),
		PVCs:                   values(c.pvcs),
		Pods:                   values(c.pods),
		Nodes:                  c.nodes,
	}
}

// put stores a user-supplied object (create or edit), bumping generation
// on a spec change as the API server does.
func (c *cluster) add(objs ...controller.Object) {
	for _, o := range objs {
		c.store(o.DeepCopyObject().(controller.Object))
	}
}

func bump[T metav1.Object](old T, exists bool, o T, specEqual bool) {
	switch {
	case !exists:
		if o.GetGeneration() == 0 {
			o.SetGeneration(1)
		}
	case !specEqual:
		o.SetGeneration(old.GetGeneration() + 1)
	default:
		o.SetGeneration(old.GetGeneration())
	}
}

func (c *cluster) store(o controller.Object) {
	if o.GetUID() == "" {
		o.SetUID(types.UID("uid-" + o.GetName()))
	}
	k := keyOf(o)
	switch v := o.(type) {
	case *appsv1.Deployment:
		old, ok := c.deployments[k]
		bump(old, ok, v, ok && apiequality.Semantic.DeepEqual(old.Spec, v.Spec))
		c.deployments[k] = v
	case *appsv1.ReplicaSet:
		old, ok := c.rss[k]
		bump(old, ok, v, ok && apiequality.Semantic.DeepEqual(old.Spec, v.Spec))
		c.rss[k] = v
	case *corev1.ReplicationController:
		old, ok := c.rcs[k]
		bump(old, ok, v, ok && apiequality.Semantic.DeepEqual(old.Spec, v.Spec))
		c.rcs[k] = v
	case *appsv1.DaemonSet:
		old, ok := c.dss[k]
		bump(old, ok, v, ok && apiequality.Semantic.DeepEqual(old.Spec, v.Spec))
		c.dss[k] = v
	case *appsv1.StatefulSet:
		old, ok := c.sets[k]
		bump(old, ok, v, ok && apiequality.Semantic.DeepEqual(old.Spec, v.Spec))
		c.sets[k] = v
	case *appsv1.ControllerRevision:
		c.revs[k] = v
	case *corev1.PersistentVolumeClaim:
		c.pvcs[k] = v
	case *corev1.Pod:
		c.pods[k] = v
	default:
		c.t.Fatalf("store: unexpected %T", o)
	}
}

func (c *cluster) apply(ch controller.Changes) {
	for _, o := range ch.Put {
		c.store(o.DeepCopyObject().(controller.Object))
	}
	for _, r := range ch.Delete {
		k := nsName{r.Namespace, r.Name}
		switch r.Kind {
		case "Deployment":
			delete(c.deployments, k)
		case "ReplicaSet":
			delete(c.rss, k)
		case "ReplicationController":
			delete(c.rcs, k)
		case "DaemonSet":
			delete(c.dss, k)
		case "StatefulSet":
			delete(c.sets, k)
		case "ControllerRevision":
			delete(c.revs, k)
		case "PersistentVolumeClaim":
			delete(c.pvcs, k)
		case "Pod":
			if p, ok := c.pods[k]; ok && c.graceful {
				p = p.DeepCopy()
				ts := metav1.NewTime(c.now)
				p.DeletionTimestamp = &ts
				c.pods[k] = p
			} else {
				delete(c.pods, k)
			}
		default:
			c.t.Fatalf("apply: delete of unexpected kind %s", r.Kind)
		}
	}
	c.events = append(c.events, ch.Events...)
}

// pass runs one Reconcile in the current invocation and applies it.
func (c *cluster) pass() controller.Changes {
	c.t.Helper()
	ch := Reconcile(c.input())
	c.apply(ch)
	return ch
}

// settle is one invocation of the CLI: Reconcile and apply until nothing
// changes, then check that one more pass changes nothing. It returns the
// number of passes that changed something.
func (c *cluster) settle() int {
	c.t.Helper()
	c.invocations++
	for n := 0; n < 20; n++ {
		ch := c.pass()
		if ch.Empty() {
			if again := Reconcile(c.input()); !again.Empty() {
				c.t.Fatalf("not idempotent: a pass after an empty one changed %s", describe(again))
			}
			return n
		}
	}
	c.t.Fatalf("did not settle in 20 passes")
	return 0
}

func describe(ch controller.Changes) string {
	var parts []string
	for _, o := range ch.Put {
		r := controller.RefOf(o)
		parts = append(parts, "put "+r.Kind+" "+r.Name)
	}
	for _, r := range ch.Delete {
		parts = append(parts, "delete "+r.Kind+" "+r.Name)
	}
	return strings.Join(parts, ", ")
}

// finishTermination removes pods that are terminating.
func (c *cluster) finishTermination() {
	for k, p := range c.pods {
		if p.DeletionTimestamp != nil {
			delete(c.pods, k)
		}
	}
}

// setPods changes the observed status of pods, as nodes report it.
func (c *cluster) setPods(match func(*corev1.Pod) bool, phase corev1.PodPhase, ready bool) {
	for k, p := range c.pods {
		if !match(p) || p.DeletionTimestamp != nil {
			continue
		}
		p = p.DeepCopy()
		p.Status.Phase = phase
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		if cur := podReadyCondition(p); cur == nil || cur.Status != status {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(c.now)}}
		}
		if p.Spec.NodeName == "" {
			p.Spec.NodeName = "node-1"
		}
		c.pods[k] = p
	}
}

// readyAll marks every pod Running and Ready now.
func (c *cluster) readyAll() {
	c.setPods(func(*corev1.Pod) bool { return true }, corev1.PodRunning, true)
}

func (c *cluster) readyWhere(match func(*corev1.Pod) bool) {
	c.setPods(match, corev1.PodRunning, true)
}

// podsOf returns the names of the live (not terminating) pods controlled by
// kind/name, sorted.
func (c *cluster) podsOf(kind, name string) []string {
	var out []string
	for _, p := range c.pods {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == kind && ref.Name == name && p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

// replicaSetsOf returns the ReplicaSets a Deployment controls, oldest first.
func (c *cluster) replicaSetsOf(name string) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range values(c.rss) {
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" && ref.Name == name {
			out = append(out, rs)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, _ := Revision(out[i])
		rj, _ := Revision(out[j])
		return ri < rj
	})
	return out
}

func (c *cluster) deployment(name string) *appsv1.Deployment {
	c.t.Helper()
	d, ok := c.deployments[nsName{"default", name}]
	if !ok {
		c.t.Fatalf("deployment %s not found", name)
	}
	return d
}

// editDeployment changes a stored Deployment as kubectl edit would.
func (c *cluster) editDeployment(name string, edit func(*appsv1.Deployment)) {
	d := c.deployment(name).DeepCopy()
	edit(d)
	c.store(d)
}

func (c *cluster) eventsFor(kind, name string) []string {
	var out []string
	for _, e := range c.events {
		if e.Object.Kind == kind && e.Object.Name == name {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

func (c *cluster) clearEvents() { c.events = nil }

// Fixture builders.

func podTemplate(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image}}},
	}
}

func newDeployment(name string, replicas int32, opts ...func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{
		TypeMeta:   typeDeployment,
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.NewTime(t0)},
		Spec: appsv1.DeploymentSpec{
			Replicas: int32Ptr(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, "nginx:1.0"),
		},
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

func rolling(surge, unavailable intstr.IntOrString) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		d.Spec.Strategy = appsv1.DeploymentStrategy{
			Type:          appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
		}
	}
}

func recreate(d *appsv1.Deployment) {
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
}

func historyLimit(n int32) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = int32Ptr(n) }
}

func image(img string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = img }
}

func newReplicaSet(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		TypeMeta:   typeReplicaSet,
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.NewTime(t0)},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: int32Ptr(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, "nginx:1.0"),
		},
	}
}

func newDaemonSet(name string, opts ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		TypeMeta:   typeDaemonSet,
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.NewTime(t0)},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, "agent:1.0"),
		},
	}
	for _, o := range opts {
		o(ds)
	}
	return ds
}

func newStatefulSet(name string, replicas int32, opts ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	set := &appsv1.StatefulSet{
		TypeMeta:   typeStatefulSet,
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.NewTime(t0)},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    int32Ptr(replicas),
			ServiceName: name + "-headless",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template:    podTemplate(name, "db:1.0"),
		},
	}
	for _, o := range opts {
		o(set)
	}
	return set
}

func withClaim(name string) func(*appsv1.StatefulSet) {
	return func(set *appsv1.StatefulSet) {
		set.Spec.VolumeClaimTemplates = append(set.Spec.VolumeClaimTemplates, corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			},
		})
	}
}

func node(name string, labels map[string]string, taints ...corev1.Taint) Node {
	return Node{Name: name, Labels: labels, Taints: taints, Ready: true}
}

func namePrefix(prefix string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return strings.HasPrefix(p.Name, prefix) }
}
