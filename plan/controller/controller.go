// Package controller holds what every workload controller of the cluster
// loop returns: the object changes to make in the inventory and the events to
// show in describe. Controllers are pure functions of (desired objects,
// observed pods, now); they live in their own packages (plan/workloads,
// plan/jobs, plan/autoscale) and share only these types.
package controller

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Object is a typed Kubernetes object with metadata (*corev1.Pod,
// *appsv1.ReplicaSet, ...), with apiVersion and kind set.
type Object interface {
	runtime.Object
	metav1.Object
}

// Ref names one object.
type Ref struct {
	Kind      string
	Namespace string // "" for cluster-scoped kinds
	Name      string
}

// RefOf returns the Ref of o.
func RefOf(o Object) Ref {
	return Ref{Kind: o.GetObjectKind().GroupVersionKind().Kind, Namespace: o.GetNamespace(), Name: o.GetName()}
}

// Event types, as Kubernetes' corev1.EventTypeNormal/Warning.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

// Event is something a controller did or could not do, for describe.
type Event struct {
	Object  Ref
	Type    string // EventNormal or EventWarning
	Reason  string // CamelCase, as Kubernetes: SuccessfulCreate, ScalingReplicaSet, ...
	Message string
}

// Changes is what one controller pass decided. Put objects are created or
// replaced whole (spec and status); Delete objects are removed (a deleted
// pod is stopped gracefully by its node). Applying Changes twice is the same
// as applying them once.
type Changes struct {
	Put    []Object
	Delete []Ref
	Events []Event
}

// Merge appends other's changes to c.
func (c *Changes) Merge(other Changes) {
	c.Put = append(c.Put, other.Put...)
	c.Delete = append(c.Delete, other.Delete...)
	c.Events = append(c.Events, other.Events...)
}

// Empty reports whether nothing changes.
func (c *Changes) Empty() bool { return len(c.Put) == 0 && len(c.Delete) == 0 }

// Sort orders Put and Delete by kind, namespace and name, so that output
// is deterministic whatever order controllers ran in.
func (c *Changes) Sort() {
	less := func(a, b Ref) bool {
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	}
	sort.SliceStable(c.Put, func(i, j int) bool { return less(RefOf(c.Put[i]), RefOf(c.Put[j])) })
	sort.SliceStable(c.Delete, func(i, j int) bool { return less(c.Delete[i], c.Delete[j]) })
}
