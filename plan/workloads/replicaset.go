package workloads

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/clusterctl/clusterctl/plan/controller"
)

// replicaStatus is the status both ReplicaSets and ReplicationControllers
// report.
type replicaStatus struct {
	replicas, fullyLabeled, ready, available int32
	terminating                              *int32
}

// replicaOwner is what manageReplicas needs of a ReplicaSet or a
// ReplicationController.
type replicaOwner struct {
	typ             metav1.TypeMeta
	obj             metav1.Object
	replicas        int32
	minReadySeconds int32
	selector        labels.Selector
	template        *corev1.PodTemplateSpec // nil for a ReplicationController without one
	countTerminate  bool                    // report terminatingReplicas (ReplicaSet only)
}

func (s *state) syncReplicaSet(rs *appsv1.ReplicaSet) {
	sel, ok := s.workloadSelector("ReplicaSet", rs, rs.Spec.Selector, rs.Spec.Template.Labels)
	if !ok {
		return
	}
	o := replicaOwner{
		typ:             typeReplicaSet,
		obj:             rs,
		replicas:        replicasOrOne(rs.Spec.Replicas),
		minReadySeconds: rs.Spec.MinReadySeconds,
		selector:        sel,
		template:        &rs.Spec.Template,
		countTerminate:  true,
	}
	st := s.manageReplicas(o)
	newStatus := *rs.Status.DeepCopy()
	newStatus.Replicas = st.replicas
	newStatus.FullyLabeledReplicas = st.fullyLabeled
	newStatus.ReadyReplicas = st.ready
	newStatus.AvailableReplicas = st.available
	newStatus.TerminatingReplicas = st.terminating
	newStatus.ObservedGeneration = rs.Generation
	if apiequality.Semantic.DeepEqual(rs.Status, newStatus) {
		return
	}
	cur := s.replicaSets[keyOf(rs)].DeepCopy()
	cur.Status = newStatus
	s.put(cur)
}

func (s *state) syncReplicationController(rc *corev1.ReplicationController) {
	var templateLabels map[string]string
	if rc.Spec.Template != nil {
		templateLabels = rc.Spec.Template.Labels
	}
	selector := rc.Spec.Selector
	if len(selector) == 0 {
		selector = templateLabels // the API server's default
	}
	sel, ok := s.workloadSelector("ReplicationController", rc, &metav1.LabelSelector{MatchLabels: selector}, templateLabels)
	if !ok {
		return
	}
	o := replicaOwner{
		typ:             typeRC,
		obj:             rc,
		replicas:        replicasOrOne(rc.Spec.Replicas),
		minReadySeconds: rc.Spec.MinReadySeconds,
		selector:        sel,
		template:        rc.Spec.Template,
	}
	st := s.manageReplicas(o)
	newStatus := *rc.Status.DeepCopy()
	newStatus.Replicas = st.replicas
	newStatus.FullyLabeledReplicas = st.fullyLabeled
	newStatus.ReadyReplicas = st.ready
	newStatus.AvailableReplicas = st.available
	newStatus.ObservedGeneration = rc.Generation
	if apiequality.Semantic.DeepEqual(rc.Status, newStatus) {
		return
	}
	cur := rc.DeepCopy()
	cur.Status = newStatus
	s.put(cur)
}

func replicasOrOne(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// manageReplicas is the core of Kubernetes' ReplicaSetController, shared by
// ReplicaSets and ReplicationControllers: claim the pods, delete finished
// ones, create or delete pods to match replicas, and count.
func (s *state) manageReplicas(o replicaOwner) replicaStatus {
	kind := o.typ.Kind
	match := func(p *corev1.Pod) bool { return o.selector.Matches(labels.Set(p.Labels)) }
	var active, terminating []*corev1.Pod
	for _, p := range s.podsByOwner[ownerKeyOf(kind, o.obj)] {
		p, ok := s.pods[keyOf(p)]
		if !ok || !match(p) {
			continue
		}
		if isPodTerminating(p) {
			terminating = append(terminating, p)
		}
		// Finished pods are not replicas. Kubernetes leaves them to the pod
		// garbage collector (which keeps up to 12500); here they are deleted
		// at once so that they do not pile up in the inventory.
		if isPodTerminal(p) && p.DeletionTimestamp == nil && o.obj.GetDeletionTimestamp() == nil {
			s.remove("Pod", p)
			s.event(kind, o.obj, controller.EventNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		}
	}
	active = s.claimPods(o.typ, o.obj, isPodActive, match)

	if o.obj.GetDeletionTimestamp() == nil {
		diff := len(active) - int(o.replicas)
		switch {
		case diff < 0 && o.template != nil:
			prefix := o.obj.GetName() + "-"
			for range -diff {
				name := s.generatePodName(o.obj.GetNamespace(), prefix)
				s.put(s.newPod(o.template, o.typ, o.obj, name, prefix))
				s.event(kind, o.obj, controller.EventNormal, "SuccessfulCreate", "Created pod: %s", name)
			}
		case diff > 0:
			victims := append([]*corev1.Pod(nil), active...)
			if diff < len(victims) {
				sortPodsForDeletion(victims, s.relatedPodRanks(o, victims), s.now)
			}
			for _, p := range victims[:diff] {
				s.remove("Pod", p)
				s.event(kind, o.obj, controller.EventNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
			}
		}
	}

	var st replicaStatus
	templateLabels := labels.Set(nil)
	if o.template != nil {
		templateLabels = labels.Set(o.template.Labels)
	}
	templateSel := labels.SelectorFromSet(templateLabels)
	for _, p := range active {
		st.replicas++
		if templateSel.Matches(labels.Set(p.Labels)) {
			st.fullyLabeled++
		}
		if isPodReady(p) {
			st.ready++
			if isPodAvailable(p, o.minReadySeconds, s.now) {
				st.available++
			}
		}
	}
	if o.countTerminate {
		st.terminating = int32Ptr(int32(len(terminating)))
	}
	return st
}

// relatedPodRanks counts, for each pod, the active pods on its node that
// belong to o or to another ReplicaSet with the same controller (the
// Deployment's other revisions): pods on crowded nodes go first.
func (s *state) relatedPodRanks(o replicaOwner, pods []*corev1.Pod) map[*corev1.Pod]int {
	related := s.podsByOwner[ownerKeyOf(o.typ.Kind, o.obj)]
	if o.typ.Kind == "ReplicaSet" {
		if owner, ok := controllerOf(o.obj); ok {
			related = nil
			for _, rs := range s.rsByOwner[owner] {
				related = append(related, s.podsByOwner[ownerKeyOf("ReplicaSet", rs)]...)
			}
		}
	}
	onNode := map[string]int{}
	for _, p := range related {
		if cur, ok := s.pods[keyOf(p)]; ok && isPodActive(cur) {
			onNode[cur.Spec.NodeName]++
		}
	}
	ranks := make(map[*corev1.Pod]int, len(pods))
	for _, p := range pods {
		ranks[p] = onNode[p.Spec.NodeName]
	}
	return ranks
}
