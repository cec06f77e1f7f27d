package workloads

import (
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterctl/clusterctl/plan/controller"
)

// claim is Kubernetes' ControllerRefManager.ClaimObject over a list: it
// returns the dependents owner should control. Those it owns and that still
// match stay; those it owns that no longer match are released (their
// controller reference removed) unless owner is being deleted; orphans that
// match, are not being deleted and were not adopted by someone else in this
// pass are adopted. Objects for which consider is false are skipped
// altogether (Kubernetes filters them out before claiming). Lists hold
// start-of-pass objects; current returns the working version (false once
// deleted).
func claim[T controller.Object](s *state, kind string, ownerType metav1.TypeMeta, owner metav1.Object,
	consider, match func(T) bool, owned, orphans []T, current func(nsName) (T, bool)) []T {
	var out []T
	for _, o := range owned {
		o, ok := current(keyOf(o))
		if !ok || !consider(o) {
			continue
		}
		if ref := metav1.GetControllerOfNoCopy(o); ref == nil || ref.Kind != ownerType.Kind || ref.Name != owner.GetName() || ref.UID != owner.GetUID() {
			continue // released or re-owned earlier in this pass
		}
		if match(o) {
			out = append(out, o)
			continue
		}
		if owner.GetDeletionTimestamp() != nil {
			continue
		}
		c := o.DeepCopyObject().(T)
		var refs []metav1.OwnerReference
		for _, r := range c.GetOwnerReferences() {
			if r.Kind == ownerType.Kind && r.Name == owner.GetName() && r.UID == owner.GetUID() {
				continue
			}
			refs = append(refs, r)
		}
		c.SetOwnerReferences(refs)
		s.put(c)
	}
	if owner.GetDeletionTimestamp() != nil {
		return out
	}
	for _, o := range orphans {
		o, ok := current(keyOf(o))
		if !ok || !consider(o) || o.GetDeletionTimestamp() != nil || metav1.GetControllerOfNoCopy(o) != nil {
			continue
		}
		ref := controller.Ref{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()}
		if s.claimed[ref] || !match(o) {
			continue
		}
		s.claimed[ref] = true
		c := o.DeepCopyObject().(T)
		c.SetOwnerReferences(append(c.GetOwnerReferences(), newControllerRef(ownerType, owner)))
		s.put(c)
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

func (s *state) currentPod(k nsName) (*corev1.Pod, bool) {
	p, ok := s.pods[k]
	return p, ok
}

func (s *state) currentReplicaSet(k nsName) (*appsv1.ReplicaSet, bool) {
	rs, ok := s.replicaSets[k]
	return rs, ok
}

func (s *state) currentRevision(k nsName) (*appsv1.ControllerRevision, bool) {
	r, ok := s.revisions[k]
	return r, ok
}

// claimPods returns the pods owner controls: see claim.
func (s *state) claimPods(ownerType metav1.TypeMeta, owner metav1.Object, consider, match func(*corev1.Pod) bool) []*corev1.Pod {
	return claim(s, "Pod", ownerType, owner, consider, match,
		s.podsByOwner[ownerKeyOf(ownerType.Kind, owner)], s.orphanPods[owner.GetNamespace()], s.currentPod)
}

// collectGarbage deletes what Kubernetes' garbage collector would: objects
// whose owner references all name objects that no longer exist. Only
// owners of the kinds this package sees are judged (Deployment, ReplicaSet,
// ReplicationController, DaemonSet, StatefulSet, Pod); an object with any
// other owner is left alone. Dependents are deleted in the same pass as
// their owners (ReplicaSets, then pods, then claims), as background
// cascading deletion would do over a few seconds.
func (s *state) collectGarbage() {
	exists := map[ownerKey]bool{}
	for _, d := range s.deployments {
		exists[ownerKeyOf("Deployment", d)] = true
	}
	for _, rs := range s.replicaSets {
		exists[ownerKeyOf("ReplicaSet", rs)] = true
	}
	for _, rc := range s.rcs {
		exists[ownerKeyOf("ReplicationController", rc)] = true
	}
	for _, ds := range s.daemonSets {
		exists[ownerKeyOf("DaemonSet", ds)] = true
	}
	for _, set := range s.statefulSets {
		exists[ownerKeyOf("StatefulSet", set)] = true
	}
	for _, p := range s.pods {
		exists[ownerKeyOf("Pod", p)] = true
	}
	orphaned := func(o metav1.Object) bool {
		refs := o.GetOwnerReferences()
		if len(refs) == 0 || o.GetDeletionTimestamp() != nil {
			return false
		}
		for _, r := range refs {
			switch r.Kind {
			case "Deployment", "ReplicaSet", "ReplicationController", "DaemonSet", "StatefulSet", "Pod":
			default:
				return false
			}
			if exists[ownerKey{r.Kind, o.GetNamespace(), r.Name, r.UID}] {
				return false
			}
		}
		return true
	}
	for _, k := range sortedKeys(s.replicaSets) {
		if rs := s.replicaSets[k]; orphaned(rs) {
			delete(exists, ownerKeyOf("ReplicaSet", rs))
			s.remove("ReplicaSet", rs)
		}
	}
	for _, k := range sortedKeys(s.revisions) {
		if r := s.revisions[k]; orphaned(r) {
			s.remove("ControllerRevision", r)
		}
	}
	for _, k := range sortedKeys(s.pods) {
		if p := s.pods[k]; orphaned(p) {
			delete(exists, ownerKeyOf("Pod", p))
			s.remove("Pod", p)
		}
	}
	for _, k := range sortedKeys(s.pvcs) {
		if c := s.pvcs[k]; orphaned(c) {
			s.remove("PersistentVolumeClaim", c)
		}
	}
}
