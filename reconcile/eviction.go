package reconcile

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan/controller"
	"github.com/clusterctl/clusterctl/plan/sched"
)

// Node failure, as Kubernetes' node lifecycle and taint eviction
// controllers handle it, with the CLI's loop in their place:
//
//   - trackNotReady records, per host, since when it has been unreachable or
//     not Ready (state.hosts.H.notReadySince), cleared once it is Ready again;
//   - evictLostPods marks the pods of such a host for deletion once the
//     cluster's podEvictionTimeout (or the pod's own toleration of the
//     node.kubernetes.io/unreachable or not-ready NoExecute taint) has run
//     out. A pod being deleted keeps its object, with a deletionTimestamp,
//     so the controllers see it as Kubernetes' do: ReplicaSets and Jobs
//     replace it at once, a StatefulSet waits until it is gone (at most one
//     pod per ordinal), DaemonSet pods tolerate the taints and stay;
//   - pods being deleted are left out of their node's spec, so the node
//     stops them as soon as it hears from the CLI again, and
//     finalizeDeleted removes their objects once their node is reachable
//     and no longer runs them, or is no longer in the inventory.
//
// `clusterctl delete pod --force` removes a pod being deleted at once, for
// a host that will not come back.

// trackNotReady updates each host's notReadySince from this loop's view of
// the nodes and returns the hosts that changed. Unless dry, the inventory
// is updated.
func trackNotReady(inv *inventory.Inventory, nodes []sched.Node, now time.Time, dry bool) []string {
	var changed []string
	for _, n := range nodes {
		hs := inv.HostState(n.Name)
		switch {
		case n.Ready && !hs.NotReadySince.IsZero():
			hs.NotReadySince = time.Time{}
		case !n.Ready && hs.NotReadySince.IsZero():
			hs.NotReadySince = now
		default:
			continue
		}
		changed = append(changed, n.Name)
		if !dry {
			inv.SetHostState(n.Name, hs)
		}
	}
	return changed
}

// lifecycleTaints returns nodes with the NoExecute node lifecycle taint of
// every host that is not Ready, added at notReadySince (now when unknown).
func lifecycleTaints(inv *inventory.Inventory, nodes []sched.Node, now time.Time) []sched.Node {
	out := make([]sched.Node, len(nodes))
	for i, n := range nodes {
		out[i] = n
		if n.Ready {
			continue
		}
		since := inv.HostState(n.Name).NotReadySince
		if since.IsZero() {
			since = now
		}
		key := sched.TaintNodeNotReady
		if n.Unreachable {
			key = sched.TaintNodeUnreachable
		}
		added := metav1.NewTime(since)
		out[i].Taints = append(append([]corev1.Taint(nil), n.Taints...),
			corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added})
	}
	return out
}

// evictLostPods marks for deletion the pods that the node lifecycle
// taints of lost hosts drive off, and returns what it changed.
func evictLostPods(inv *inventory.Inventory, cl *Cluster, nodes []sched.Node, now time.Time, dry bool) (controller.Changes, error) {
	var ch controller.Changes
	for _, e := range sched.EvictionsAfter(cl.Pods, lifecycleTaints(inv, nodes, now), now, evictionTimeout(inv)) {
		var p *corev1.Pod
		for _, q := range cl.Pods {
			if Key(q.Namespace, q.Name) == e.Pod {
				p = q
				break
			}
		}
		if p == nil {
			continue
		}
		p = p.DeepCopy()
		p.APIVersion, p.Kind = "v1", "Pod"
		ts := metav1.NewTime(now)
		zero := int64(0)
		p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &zero
		step := controller.Changes{Put: []controller.Object{p}, Events: []controller.Event{{
			Object: controller.RefOf(p), Type: controller.EventWarning, Reason: "NodeLost",
			Message: fmt.Sprintf("Marking for deletion: node %s: %s", e.Node, e.Reason),
		}}}
		if err := cl.apply(inv, step, dry); err != nil {
			return ch, err
		}
		ch.Merge(step)
	}
	return ch, nil
}

// finalizeDeleted removes the objects of pods being deleted whose node is
// gone from the inventory, or reports its pods and runs them no more.
func finalizeDeleted(inv *inventory.Inventory, cl *Cluster, reporting map[string]bool, observed map[string]ObservedPod, dry bool) (controller.Changes, error) {
	var ch controller.Changes
	for _, p := range cl.Pods {
		if p.DeletionTimestamp == nil {
			continue
		}
		node := p.Spec.NodeName
		_, inInventory := inv.Host(node)
		_, running := observed[ObservedKey(node, string(p.UID))]
		if node != "" && inInventory && (!reporting[node] || running) {
			continue
		}
		ch.Delete = append(ch.Delete, controller.Ref{Kind: "Pod", Namespace: p.Namespace, Name: p.Name})
	}
	if len(ch.Delete) == 0 {
		return ch, nil
	}
	return ch, cl.apply(inv, ch, dry)
}

// nodeLifecycle is the node failure step of a loop: it tracks which hosts
// are lost, removes the pods being deleted that their nodes have let go,
// and marks for deletion the pods of hosts lost for too long.
func nodeLifecycle(inv *inventory.Inventory, cl *Cluster, nodes []sched.Node, statuses map[string]*nodeapi.NodeStatus,
	observed map[string]ObservedPod, opts Options) (controller.Changes, error) {
	trackNotReady(inv, nodes, opts.Now, opts.DryRun)
	reporting := map[string]bool{}
	for h, st := range statuses {
		reporting[h] = st != nil
	}
	ch, err := finalizeDeleted(inv, cl, reporting, observed, opts.DryRun)
	if err != nil {
		return ch, err
	}
	ev, err := evictLostPods(inv, cl, nodes, opts.Now, opts.DryRun)
	ch.Merge(ev)
	return ch, err
}

// withinGrace lists the hosts that are not Ready but have not been for
// longer than the pod eviction timeout.
func withinGrace(inv *inventory.Inventory, nodes []sched.Node, now time.Time) map[string]bool {
	out := map[string]bool{}
	for _, n := range nodes {
		if since := inv.HostState(n.Name).NotReadySince; !n.Ready && (since.IsZero() || now.Sub(since) < evictionTimeout(inv)) {
			out[n.Name] = true
		}
	}
	return out
}

// evictionTimeout is the cluster's pod eviction timeout.
func evictionTimeout(inv *inventory.Inventory) time.Duration {
	if t := inv.Cluster.PodEvictionTimeout; t > 0 {
		return t
	}
	return inventory.DefaultPodEvictionTimeout
}
