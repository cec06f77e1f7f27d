package reconcile

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clusterctl/clusterctl/plan/admission"
	"github.com/clusterctl/clusterctl/plan/controller"
)

// All returns every stored object, pods first (as given: with or without
// observed status), then the other kinds in key order.
func (c *Cluster) All(pods []*corev1.Pod) []runtime.Object {
	out := make([]runtime.Object, 0, len(pods)+len(c.ConfigMaps)+len(c.Secrets)+len(c.Services))
	for _, p := range pods {
		out = append(out, p)
	}
	for _, k := range SortedKeys(c.Namespaces) {
		out = append(out, c.Namespaces[k])
	}
	for _, k := range SortedKeys(c.ConfigMaps) {
		out = append(out, c.ConfigMaps[k])
	}
	for _, k := range SortedKeys(c.Secrets) {
		out = append(out, c.Secrets[k])
	}
	for _, k := range SortedKeys(c.Services) {
		out = append(out, c.Services[k])
	}
	for _, k := range SortedKeys(c.Endpoints) {
		out = append(out, c.Endpoints[k])
	}
	for _, es := range c.EndpointSlices {
		out = append(out, es)
	}
	for _, kind := range SortedKeys(c.Workloads) {
		for _, k := range SortedKeys(c.Workloads[kind]) {
			out = append(out, c.Workloads[kind][k])
		}
	}
	return out
}

// LimitRanges returns the stored LimitRanges by namespace.
func (c *Cluster) LimitRanges() map[string][]*corev1.LimitRange {
	out := map[string][]*corev1.LimitRange{}
	for _, lr := range Typed[*corev1.LimitRange](c, "LimitRange") {
		out[lr.Namespace] = append(out[lr.Namespace], lr)
	}
	return out
}

// admitNewPods passes the pods a controller pass creates through the
// namespaces' LimitRanges (defaults set in place) and ResourceQuotas, as
// the API server's admission does for a controller's create: a refused pod
// is dropped from the pass with a FailedCreate event on its owner, and its
// controller tries again at the next pass or loop. Namespaces without
// either are not looked at.
func admitNewPods(cl *Cluster, pods []*corev1.Pod, ch *controller.Changes) {
	var fresh []*corev1.Pod
	for _, o := range ch.Put {
		if p, ok := o.(*corev1.Pod); ok {
			if _, stored := cl.Pod(p.Namespace, p.Name); !stored {
				fresh = append(fresh, p)
			}
		}
	}
	if len(fresh) == 0 {
		return
	}
	policed := map[string]bool{}
	for _, kind := range []string{"LimitRange", "ResourceQuota"} {
		for _, o := range cl.Workloads[kind] {
			if m, ok := o.(interface{ GetNamespace() string }); ok {
				policed[m.GetNamespace()] = true
			}
		}
	}
	var a *admission.Admission
	refused := map[*corev1.Pod]bool{}
	for _, p := range fresh {
		if !policed[p.Namespace] {
			continue
		}
		if a == nil {
			a = admission.New(cl.All(pods))
		}
		vs := a.Admit(p)
		if len(vs) == 0 {
			continue
		}
		refused[p] = true
		owner := controller.Ref{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}
		for _, r := range p.OwnerReferences {
			if r.Controller != nil && *r.Controller {
				owner = controller.Ref{Kind: r.Kind, Namespace: p.Namespace, Name: r.Name}
			}
		}
		ch.Events = append(ch.Events, controller.Event{Object: owner, Type: controller.EventWarning, Reason: "FailedCreate",
			Message: fmt.Sprintf("Error creating: %s", vs.Forbidden())})
	}
	if len(refused) == 0 {
		return
	}
	kept := ch.Put[:0]
	for _, o := range ch.Put {
		if p, ok := o.(*corev1.Pod); ok && refused[p] {
			continue
		}
		kept = append(kept, o)
	}
	ch.Put = kept
}
