package workloads

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterctl/clusterctl/plan/controller"
)

// Input is everything the workload controllers look at. Every slice holds
// all stored objects of its kind (a missing owner means a deleted owner:
// its dependents are garbage collected). Input is never modified.
type Input struct {
	// Now is the current time; it decides availability (minReadySeconds),
	// progress deadlines and is the timestamp of everything created.
	Now time.Time
	// Seed is caller-provided entropy. The names and UIDs of new objects are
	// derived from it and the object, so the same Input gives the same
	// output; callers should pass a fresh seed per invocation (a UID made
	// from the seed and a name is reused if that name is reused under the
	// same seed).
	Seed string

	Deployments            []*appsv1.Deployment
	ReplicaSets            []*appsv1.ReplicaSet
	ReplicationControllers []*corev1.ReplicationController
	DaemonSets             []*appsv1.DaemonSet
	StatefulSets           []*appsv1.StatefulSet
	// ControllerRevisions hold the template history of DaemonSets and
	// StatefulSets (they are created and pruned here, as in Kubernetes).
	ControllerRevisions []*appsv1.ControllerRevision
	PVCs                []*corev1.PersistentVolumeClaim
	// Pods are all stored pods with the status nodes report: Phase, PodIP,
	// Conditions (Ready with LastTransitionTime), ContainerStatuses. A pod
	// with DeletionTimestamp set is terminating.
	Pods []*corev1.Pod
	// Nodes are the cluster's nodes, for DaemonSets.
	Nodes []Node
}

// Node is a host as the DaemonSet controller sees it.
type Node struct {
	Name   string
	Labels map[string]string
	Taints []corev1.Taint
	// Unschedulable is a cordoned node: Kubernetes taints it
	// node.kubernetes.io/unschedulable:NoSchedule, which DaemonSet pods
	// tolerate.
	Unschedulable bool
	// Ready is false for a node that is not ready or unreachable: Kubernetes
	// taints it node.kubernetes.io/not-ready (NoSchedule and NoExecute), so
	// no new DaemonSet pod goes there but the running one stays.
	Ready bool
}

// Reconcile runs one pass of the Deployment, ReplicaSet,
// ReplicationController, DaemonSet and StatefulSet controllers and the
// garbage collector over in, and returns what to change. See the package
// documentation for the order of work and the differences from Kubernetes.
func Reconcile(in Input) controller.Changes {
	s := newState(in)
	s.collectGarbage()
	s.buildIndexes()
	for _, d := range s.deployments {
		s.syncDeployment(d)
	}
	for _, k := range sortedKeys(s.replicaSets) {
		if rs, ok := s.replicaSets[k]; ok {
			s.syncReplicaSet(rs)
		}
	}
	for _, rc := range s.rcs {
		s.syncReplicationController(rc)
	}
	for _, ds := range s.daemonSets {
		s.syncDaemonSet(ds)
	}
	for _, set := range s.statefulSets {
		s.syncStatefulSet(set)
	}
	return s.changes()
}

// nsName identifies a namespaced object of a known kind.
type nsName struct{ ns, name string }

func (k nsName) String() string { return k.ns + "/" + k.name }

func keyOf(o metav1.Object) nsName { return nsName{o.GetNamespace(), o.GetName()} }

// ownerKey identifies an owner as an ownerReference names it.
type ownerKey struct {
	kind, ns, name string
	uid            types.UID
}

func ownerKeyOf(kind string, o metav1.Object) ownerKey {
	return ownerKey{kind, o.GetNamespace(), o.GetName(), o.GetUID()}
}

// controllerOf returns the key of o's controller, if it has one.
func controllerOf(o metav1.Object) (ownerKey, bool) {
	ref := metav1.GetControllerOfNoCopy(o)
	if ref == nil {
		return ownerKey{}, false
	}
	return ownerKey{ref.Kind, o.GetNamespace(), ref.Name, ref.UID}, true
}

// state is one Reconcile pass: the working view of the store (input
// overlaid with this pass's changes), indexes, and the changes themselves.
type state struct {
	now   time.Time
	stamp metav1.Time // now at second precision, for timestamps written
	seed  string

	deployments  []*appsv1.Deployment
	replicaSets  map[nsName]*appsv1.ReplicaSet
	rcs          []*corev1.ReplicationController
	daemonSets   []*appsv1.DaemonSet
	statefulSets []*appsv1.StatefulSet
	revisions    map[nsName]*appsv1.ControllerRevision
	pvcs         map[nsName]*corev1.PersistentVolumeClaim
	pods         map[nsName]*corev1.Pod
	nodes        []Node

	// podNames holds every pod name in use per namespace, including pods
	// created in this pass, so generated names never collide.
	podNames map[string]map[string]bool

	// Built after garbage collection from the remaining input.
	podsByOwner map[ownerKey][]*corev1.Pod
	orphanPods  map[string][]*corev1.Pod // by namespace
	rsByOwner   map[ownerKey][]*appsv1.ReplicaSet
	orphanRSs   map[string][]*appsv1.ReplicaSet
	revsByOwner map[ownerKey][]*appsv1.ControllerRevision
	orphanRevs  map[string][]*appsv1.ControllerRevision
	// claimed records orphans adopted in this pass, so two controllers with
	// overlapping selectors do not both adopt one.
	claimed map[controller.Ref]bool

	puts    map[controller.Ref]controller.Object
	deletes map[controller.Ref]bool
	events  []controller.Event
}

func newState(in Input) *state {
	s := &state{
		now:          in.Now,
		stamp:        metav1.NewTime(in.Now.Truncate(time.Second)),
		seed:         in.Seed,
		deployments:  sortedObjects(in.Deployments),
		replicaSets:  make(map[nsName]*appsv1.ReplicaSet, len(in.ReplicaSets)),
		rcs:          sortedObjects(in.ReplicationControllers),
		daemonSets:   sortedObjects(in.DaemonSets),
		statefulSets: sortedObjects(in.StatefulSets),
		revisions:    make(map[nsName]*appsv1.ControllerRevision, len(in.ControllerRevisions)),
		pvcs:         make(map[nsName]*corev1.PersistentVolumeClaim, len(in.PVCs)),
		pods:         make(map[nsName]*corev1.Pod, len(in.Pods)),
		nodes:        append([]Node(nil), in.Nodes...),
		podNames:     map[string]map[string]bool{},
		claimed:      map[controller.Ref]bool{},
		puts:         map[controller.Ref]controller.Object{},
		deletes:      map[controller.Ref]bool{},
	}
	sort.Slice(s.nodes, func(i, j int) bool { return s.nodes[i].Name < s.nodes[j].Name })
	for _, rs := range in.ReplicaSets {
		s.replicaSets[keyOf(rs)] = rs
	}
	for _, r := range in.ControllerRevisions {
		s.revisions[keyOf(r)] = r
	}
	for _, p := range in.PVCs {
		s.pvcs[keyOf(p)] = p
	}
	for _, p := range in.Pods {
		s.pods[keyOf(p)] = p
		s.takePodName(p.Namespace, p.Name)
	}
	return s
}

func (s *state) takePodName(ns, name string) {
	m := s.podNames[ns]
	if m == nil {
		m = map[string]bool{}
		s.podNames[ns] = m
	}
	m[name] = true
}

// buildIndexes indexes the pods, ReplicaSets and ControllerRevisions that
// survived garbage collection by controller.
func (s *state) buildIndexes() {
	s.podsByOwner = map[ownerKey][]*corev1.Pod{}
	s.orphanPods = map[string][]*corev1.Pod{}
	for _, k := range sortedKeys(s.pods) {
		p := s.pods[k]
		if o, ok := controllerOf(p); ok {
			s.podsByOwner[o] = append(s.podsByOwner[o], p)
		} else {
			s.orphanPods[p.Namespace] = append(s.orphanPods[p.Namespace], p)
		}
	}
	s.rsByOwner = map[ownerKey][]*appsv1.ReplicaSet{}
	s.orphanRSs = map[string][]*appsv1.ReplicaSet{}
	for _, k := range sortedKeys(s.replicaSets) {
		rs := s.replicaSets[k]
		if o, ok := controllerOf(rs); ok {
			s.rsByOwner[o] = append(s.rsByOwner[o], rs)
		} else {
			s.orphanRSs[rs.Namespace] = append(s.orphanRSs[rs.Namespace], rs)
		}
	}
	s.revsByOwner = map[ownerKey][]*appsv1.ControllerRevision{}
	s.orphanRevs = map[string][]*appsv1.ControllerRevision{}
	for _, k := range sortedKeys(s.revisions) {
		r := s.revisions[k]
		if o, ok := controllerOf(r); ok {
			s.revsByOwner[o] = append(s.revsByOwner[o], r)
		} else {
			s.orphanRevs[r.Namespace] = append(s.orphanRevs[r.Namespace], r)
		}
	}
}

// Type metadata of the kinds this package writes.
var (
	typeDeployment         = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	typeReplicaSet         = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}
	typeDaemonSet          = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}
	typeStatefulSet        = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}
	typeControllerRevision = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ControllerRevision"}
	typeRC                 = metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"}
	typePod                = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	typePVC                = metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"}
)

// put records obj (already a copy owned by this pass) as created or
// replaced, and makes it the working version.
func (s *state) put(obj controller.Object) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.TypeMeta = typeDeployment
	case *appsv1.ReplicaSet:
		o.TypeMeta = typeReplicaSet
		s.replicaSets[keyOf(o)] = o
	case *appsv1.DaemonSet:
		o.TypeMeta = typeDaemonSet
	case *appsv1.StatefulSet:
		o.TypeMeta = typeStatefulSet
	case *appsv1.ControllerRevision:
		o.TypeMeta = typeControllerRevision
		s.revisions[keyOf(o)] = o
	case *corev1.ReplicationController:
		o.TypeMeta = typeRC
	case *corev1.Pod:
		o.TypeMeta = typePod
		s.pods[keyOf(o)] = o
		s.takePodName(o.Namespace, o.Name)
	case *corev1.PersistentVolumeClaim:
		o.TypeMeta = typePVC
		s.pvcs[keyOf(o)] = o
	default:
		panic(fmt.Sprintf("workloads: put of unexpected type %T", obj))
	}
	ref := controller.RefOf(obj)
	delete(s.deletes, ref)
	s.puts[ref] = obj
}

// remove records the deletion of the object kind/namespace/name.
func (s *state) remove(kind string, o metav1.Object) {
	k := keyOf(o)
	switch kind {
	case "ReplicaSet":
		delete(s.replicaSets, k)
	case "ControllerRevision":
		delete(s.revisions, k)
	case "Pod":
		delete(s.pods, k)
	case "PersistentVolumeClaim":
		delete(s.pvcs, k)
	}
	ref := controller.Ref{Kind: kind, Namespace: k.ns, Name: k.name}
	delete(s.puts, ref)
	s.deletes[ref] = true
}

func (s *state) deleted(kind string, o metav1.Object) bool {
	return s.deletes[controller.Ref{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()}]
}

func (s *state) event(kind string, o metav1.Object, typ, reason, format string, args ...any) {
	s.events = append(s.events, controller.Event{
		Object:  controller.Ref{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()},
		Type:    typ,
		Reason:  reason,
		Message: fmt.Sprintf(format, args...),
	})
}

func (s *state) changes() controller.Changes {
	var c controller.Changes
	for _, obj := range s.puts {
		c.Put = append(c.Put, obj)
	}
	for ref := range s.deletes {
		c.Delete = append(c.Delete, ref)
	}
	c.Events = s.events
	c.Sort()
	return c
}

// newMeta is the metadata of an object created in this pass.
func (s *state) newMeta(kind, namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              name,
		Namespace:         namespace,
		UID:               deriveUID(s.seed, kind, namespace, name),
		CreationTimestamp: s.stamp,
	}
}

// generatePodName returns prefix plus five characters from the safe
// alphabet that no pod in namespace uses, derived from the seed. Like the
// API server's generateName, the prefix is cut to 58 characters.
func (s *state) generatePodName(namespace, prefix string) string {
	if len(prefix) > 58 {
		prefix = prefix[:58]
	}
	for attempt := 0; ; attempt++ {
		name := prefix + deriveSuffix(s.seed, namespace, prefix, attempt, 5)
		if !s.podNames[namespace][name] {
			return name
		}
	}
}

func newControllerRef(tm metav1.TypeMeta, owner metav1.Object) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion:         tm.APIVersion,
		Kind:               tm.Kind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         &t,
		BlockOwnerDeletion: &t,
	}
}

func sortedKeys[V any](m map[nsName]V) []nsName {
	keys := make([]nsName, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].ns != keys[j].ns {
			return keys[i].ns < keys[j].ns
		}
		return keys[i].name < keys[j].name
	})
	return keys
}

func sortedObjects[T metav1.Object](in []T) []T {
	out := append([]T(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].GetNamespace() != out[j].GetNamespace() {
			return out[i].GetNamespace() < out[j].GetNamespace()
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out
}

func int32Ptr(v int32) *int32 { return &v }

// workloadSelector checks a workload's selector as the API server's
// validation would (present, not empty, matching the template's labels)
// and converts it. On a problem it records a warning event and returns
// false: running a controller whose pods its selector does not match
// would create pods without end.
func (s *state) workloadSelector(kind string, o metav1.Object, sel *metav1.LabelSelector, templateLabels map[string]string) (labels.Selector, bool) {
	if sel == nil || len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		s.event(kind, o, controller.EventWarning, reasonInvalidSelector, "Invalid selector: empty selector is invalid for %s", strings.ToLower(kind))
		return nil, false
	}
	out, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		s.event(kind, o, controller.EventWarning, reasonInvalidSelector, "Invalid selector: %v", err)
		return nil, false
	}
	if !out.Matches(labels.Set(templateLabels)) {
		s.event(kind, o, controller.EventWarning, reasonInvalidSelector, "Invalid selector: `selector` does not match template `labels`")
		return nil, false
	}
	return out, true
}
