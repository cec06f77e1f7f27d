package workloads

import (
	"math"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podDeletionCostAnnotation ranks pods for deletion on scale-down (lower
// cost goes first), as in Kubernetes.
const podDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

func podReadyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// isPodReady reports whether the pod's Ready condition is True.
func isPodReady(p *corev1.Pod) bool {
	c := podReadyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// isPodAvailable is podutil.IsPodAvailable: ready, and ready for longer
// than minReadySeconds by the Ready condition's lastTransitionTime.
func isPodAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if !isPodReady(p) {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	c := podReadyCondition(p)
	d := time.Duration(minReadySeconds) * time.Second
	return !c.LastTransitionTime.IsZero() && c.LastTransitionTime.Add(d).Before(now)
}

// isPodActive is controller.IsPodActive: not finished and not terminating.
func isPodActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

func isPodTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// isPodTerminating is a pod being deleted that has not finished.
func isPodTerminating(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil && !isPodTerminal(p)
}

// newPod builds a pod from a template as controller.GetPodFromTemplate
// does (labels, annotations and finalizers of the template, its spec, a
// controller reference), with the identity the API server would give it.
func (s *state) newPod(tpl *corev1.PodTemplateSpec, ownerType metav1.TypeMeta, owner metav1.Object, name, generateName string) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: s.newMeta("Pod", owner.GetNamespace(), name)}
	pod.GenerateName = generateName
	pod.Generation = 1
	pod.Labels = copyStringMap(tpl.Labels)
	pod.Annotations = copyStringMap(tpl.Annotations)
	if len(tpl.Finalizers) > 0 {
		pod.Finalizers = append([]string(nil), tpl.Finalizers...)
	}
	pod.OwnerReferences = []metav1.OwnerReference{newControllerRef(ownerType, owner)}
	pod.Spec = *tpl.Spec.DeepCopy()
	pod.Status.Phase = corev1.PodPending
	return pod
}

func copyStringMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

var podPhaseToOrdinal = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// sortPodsForDeletion orders pods so that the ones to delete first come
// first, as Kubernetes' ActivePodsWithRanks (with PodDeletionCost and
// LogarithmicScaleDown, both on by default):
//
//  1. unassigned < assigned
//  2. Pending < Unknown < Running
//  3. not ready < ready
//  4. lower pod-deletion-cost < higher
//  5. more pods of the same owner on the node (rank) < fewer
//  6. ready for less time < longer (by log2 buckets of the age)
//  7. more container restarts < fewer (regular containers, then sidecars)
//  8. newer < older (by log2 buckets of the age)
//
// Ties are broken by UID then name, so the order is deterministic.
func sortPodsForDeletion(pods []*corev1.Pod, ranks map[*corev1.Pod]int, now time.Time) {
	sort.SliceStable(pods, func(i, j int) bool {
		if c := comparePodsForDeletion(pods[i], pods[j], ranks[pods[i]], ranks[pods[j]], now); c != 0 {
			return c < 0
		}
		if pods[i].UID != pods[j].UID {
			return pods[i].UID < pods[j].UID
		}
		return pods[i].Name < pods[j].Name
	})
}

func comparePodsForDeletion(a, b *corev1.Pod, rankA, rankB int, now time.Time) int {
	less := func(v bool) int {
		if v {
			return -1
		}
		return 1
	}
	if a.Spec.NodeName != b.Spec.NodeName && (a.Spec.NodeName == "" || b.Spec.NodeName == "") {
		return less(a.Spec.NodeName == "")
	}
	if pa, pb := podPhaseToOrdinal[a.Status.Phase], podPhaseToOrdinal[b.Status.Phase]; pa != pb {
		return less(pa < pb)
	}
	if ra, rb := isPodReady(a), isPodReady(b); ra != rb {
		return less(!ra)
	}
	if ca, cb := deletionCost(a), deletionCost(b); ca != cb {
		return less(ca < cb)
	}
	if rankA != rankB {
		return less(rankA > rankB)
	}
	if isPodReady(a) && isPodReady(b) {
		ta, tb := podReadyTime(a), podReadyTime(b)
		if !ta.Equal(tb) {
			if ta.IsZero() || tb.IsZero() {
				return less(afterOrZero(ta, tb))
			}
			if d := logarithmicRankDiff(ta, tb, now); d != 0 {
				return less(d < 0)
			}
			return 0
		}
	}
	if ra, rb := maxContainerRestarts(a), maxContainerRestarts(b); ra != rb {
		if ra[0] != rb[0] {
			return less(ra[0] > rb[0])
		}
		return less(ra[1] > rb[1])
	}
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		if ta.IsZero() || tb.IsZero() {
			return less(afterOrZero(ta, tb))
		}
		if d := logarithmicRankDiff(ta, tb, now); d != 0 {
			return less(d < 0)
		}
	}
	return 0
}

func deletionCost(p *corev1.Pod) int32 {
	v, ok := p.Annotations[podDeletionCostAnnotation]
	if !ok {
		return 0
	}
	c, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return int32(c)
}

func podReadyTime(p *corev1.Pod) time.Time {
	if c := podReadyCondition(p); c != nil && c.Status == corev1.ConditionTrue {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

// afterOrZero reports whether t1 sorts first: zero times first, then the
// later time.
func afterOrZero(t1, t2 time.Time) bool {
	if t1.IsZero() || t2.IsZero() {
		return t1.IsZero()
	}
	return t1.After(t2)
}

// logarithmicRankDiff compares the ages of t1 and t2 at now in powers of
// two (of nanoseconds): negative when t1 is in a younger bucket.
func logarithmicRankDiff(t1, t2, now time.Time) int64 {
	d1, d2 := now.Sub(t1), now.Sub(t2)
	r1, r2 := int64(-1), int64(-1)
	if d1 > 0 {
		r1 = int64(math.Log2(float64(d1)))
	}
	if d2 > 0 {
		r2 = int64(math.Log2(float64(d2)))
	}
	return r1 - r2
}

// maxContainerRestarts returns the highest restart count of the regular
// containers and of the sidecar (restartable init) containers.
func maxContainerRestarts(p *corev1.Pod) [2]int32 {
	var out [2]int32
	for _, c := range p.Status.ContainerStatuses {
		out[0] = max(out[0], c.RestartCount)
	}
	sidecars := map[string]bool{}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
		}
	}
	for _, c := range p.Status.InitContainerStatuses {
		if sidecars[c.Name] {
			out[1] = max(out[1], c.RestartCount)
		}
	}
	return out
}

// podsByCreation orders pods as the DaemonSet controller does: scheduled
// first, then by creation time, then by name.
func podsByCreation(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName != "") != (b.Spec.NodeName != "") {
			return a.Spec.NodeName != ""
		}
		if a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.Name < b.Name
		}
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	})
}
