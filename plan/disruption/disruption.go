package disruption

import (
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Scale is the desired replica count of the controller that owns pods,
// and the UID of the object that count belongs to (for a ReplicaSet of a
// Deployment, the Deployment), so that pods of several ReplicaSets of one
// Deployment count its replicas once.
type Scale struct {
	UID      types.UID
	Replicas int32
}

// ScaleFunc finds the scale of a pod's controller, given the pod's
// namespace and controller reference, as the disruption controller's
// finders do: found is false when no such controller exists (the
// reference is stale), err is set when the controller has no scale (a
// DaemonSet, a Job).
type ScaleFunc func(namespace string, controller *metav1.OwnerReference) (s Scale, found bool, err error)

// Budget is one PodDisruptionBudget as the disruption controller sees it.
type Budget struct {
	PDB *policyv1.PodDisruptionBudget
	// Pods are the names of the pods its selector matches in its
	// namespace, in name order.
	Pods []string
	// ExpectedPods, DesiredHealthy, CurrentHealthy and DisruptionsAllowed
	// are the status fields of the same names.
	ExpectedPods       int32
	DesiredHealthy     int32
	CurrentHealthy     int32
	DisruptionsAllowed int32
	// UnmanagedPods are matching pods without a controller; with a
	// percentage or maxUnavailable they count toward nothing, as in
	// Kubernetes, which warns about them (event UnmanagedPods).
	UnmanagedPods []string
	// SyncError says why the expected pod count could not be computed
	// (Kubernetes' "Failed to calculate the number of expected pods"); the
	// budget then allows no disruption, as the controller's fail-safe.
	SyncError string

	selector labels.Selector // parsed once; nil when invalid (matches nothing)
}

// Evaluation is the state of every PodDisruptionBudget, and of the
// evictions planned against them so far.
type Evaluation struct {
	budgets []*Budget          // namespace/name order
	evicted map[types.UID]bool // and by namespace/name for pods without a UID
	byName  map[string]bool
}

// Evaluate computes every budget's status from the pods (of all
// namespaces, with their observed status: readiness is the Ready
// condition) as the disruption controller does:
//
//   - matching pods: the budget's namespace, its selector (an empty
//     selector matches every pod, a missing one none, as in policy/v1);
//   - minAvailable as an integer: expected = the number of matching pods,
//     desired healthy = minAvailable;
//   - minAvailable as a percentage, or maxUnavailable: expected = the sum of
//     the scales of the matching pods' controllers (each counted once; pods
//     without a controller add nothing), desired healthy = the percentage
//     of expected rounded up, or expected - maxUnavailable (a percentage
//     rounded up) and at least 0;
//   - current healthy: ready pods not being deleted;
//   - disruptions allowed: current - desired, 0 when negative or when
//     expected is 0.
//
// scale finds controllers' scales (see ScalesFrom); when nil, the expected
// count is the number of matching pods, as if every pod's controller
// wanted exactly the pods it has.
func Evaluate(pdbs []*policyv1.PodDisruptionBudget, pods []*corev1.Pod, scale ScaleFunc) *Evaluation {
	e := &Evaluation{evicted: map[types.UID]bool{}, byName: map[string]bool{}}
	podsByNS := map[string][]*corev1.Pod{}
	for _, p := range pods {
		podsByNS[p.Namespace] = append(podsByNS[p.Namespace], p)
	}
	for _, pdb := range pdbs {
		e.budgets = append(e.budgets, evaluate(pdb, podsByNS[pdb.Namespace], scale))
	}
	slices.SortFunc(e.budgets, func(a, b *Budget) int {
		return strings.Compare(a.PDB.Namespace+"/"+a.PDB.Name, b.PDB.Namespace+"/"+b.PDB.Name)
	})
	return e
}

// selects reports whether the budget's selector matches pod labels; an
// invalid selector matches nothing.
func (b *Budget) selects(podLabels map[string]string) bool {
	return b.selector != nil && b.selector.Matches(labels.Set(podLabels))
}

func evaluate(pdb *policyv1.PodDisruptionBudget, nsPods []*corev1.Pod, scale ScaleFunc) *Budget {
	b := &Budget{PDB: pdb}
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err == nil {
		b.selector = sel
	}
	var pods []*corev1.Pod
	for _, p := range nsPods {
		if b.selects(p.Labels) {
			pods = append(pods, p)
		}
	}
	slices.SortFunc(pods, func(x, y *corev1.Pod) int { return strings.Compare(x.Name, y.Name) })
	for _, p := range pods {
		b.Pods = append(b.Pods, p.Name)
		if p.DeletionTimestamp == nil && podReady(p) {
			b.CurrentHealthy++
		}
	}
	expectedScale := func() (int32, error) {
		if scale == nil {
			return int32(len(pods)), nil
		}
		return expectedFromControllers(pods, scale, &b.UnmanagedPods)
	}
	var err error
	switch spec := pdb.Spec; {
	case spec.MaxUnavailable != nil:
		if b.ExpectedPods, err = expectedScale(); err == nil {
			var maxUnavailable int
			if maxUnavailable, err = intstr.GetScaledValueFromIntOrPercent(spec.MaxUnavailable, int(b.ExpectedPods), true); err == nil {
				b.DesiredHealthy = max(b.ExpectedPods-int32(maxUnavailable), 0)
			}
		}
	case spec.MinAvailable != nil && spec.MinAvailable.Type == intstr.Int:
		b.DesiredHealthy = spec.MinAvailable.IntVal
		b.ExpectedPods = int32(len(pods))
	case spec.MinAvailable != nil:
		if b.ExpectedPods, err = expectedScale(); err == nil {
			var minAvailable int
			if minAvailable, err = intstr.GetScaledValueFromIntOrPercent(spec.MinAvailable, int(b.ExpectedPods), true); err == nil {
				b.DesiredHealthy = int32(minAvailable)
			}
		}
	}
	if err != nil {
		b.SyncError = err.Error()
		b.DisruptionsAllowed = 0
		return b
	}
	if allowed := b.CurrentHealthy - b.DesiredHealthy; b.ExpectedPods > 0 && allowed > 0 {
		b.DisruptionsAllowed = allowed
	}
	return b
}

// expectedFromControllers is getExpectedScale: the sum of the scales of
// the pods' controllers, each counted once.
func expectedFromControllers(pods []*corev1.Pod, scale ScaleFunc, unmanaged *[]string) (int32, error) {
	scales := map[types.UID]int32{}
	seen := map[types.UID]bool{}
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil {
			*unmanaged = append(*unmanaged, p.Name)
			continue
		}
		if seen[ref.UID] {
			continue
		}
		s, found, err := scale(p.Namespace, ref)
		if err != nil {
			return 0, err
		}
		if !found {
			return 0, fmt.Errorf("found no controllers for pod %q", p.Name)
		}
		seen[ref.UID] = true
		scales[s.UID] = s.Replicas
	}
	var sum int32
	for _, n := range scales {
		sum += n
	}
	return sum, nil
}

// podReady reports whether the pod's Ready condition is True.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Budgets returns every budget, in namespace/name order, with the
// evictions allowed so far subtracted.
func (e *Evaluation) Budgets() []*Budget { return e.budgets }

// CanEvict reports whether pod may be evicted now, as the eviction API
// decides, and records the eviction when it may (the budget's
// DisruptionsAllowed goes down by one, and CurrentHealthy too for a ready
// pod), so that a drain that plans several evictions in one pass never
// exceeds a budget. Asking again for a pod already allowed is allowed
// without counting it twice. The rules:
//
//   - a pod that is Pending, Succeeded or Failed, or being deleted, may
//     always be evicted;
//   - a pod no budget selects may be evicted;
//   - a pod two budgets select may not ("This pod has more than one
//     PodDisruptionBudget, which the eviction subresource does not
//     support.");
//   - a pod that is not ready may be evicted without using the budget when
//     its unhealthyPodEvictionPolicy is AlwaysAllow, or (IfHealthyBudget,
//     the default) when the budget is healthy: current healthy >= desired
//     healthy > 0;
//   - otherwise the budget must allow a disruption. If not, the reason is
//     Kubernetes': "Cannot evict pod as it would violate the pod's
//     disruption budget. The disruption budget web needs 2 healthy pods and
//     has 2 currently".
func (e *Evaluation) CanEvict(pod *corev1.Pod) (ok bool, reason string) {
	key := pod.Namespace + "/" + pod.Name
	if pod.UID != "" && e.evicted[pod.UID] || pod.UID == "" && e.byName[key] {
		return true, ""
	}
	ok, reason = e.canEvict(pod)
	if ok {
		if pod.UID != "" {
			e.evicted[pod.UID] = true
		} else {
			e.byName[key] = true
		}
	}
	return ok, reason
}

func (e *Evaluation) canEvict(pod *corev1.Pod) (bool, string) {
	switch pod.Status.Phase {
	case corev1.PodPending, corev1.PodSucceeded, corev1.PodFailed:
		return true, ""
	}
	if pod.DeletionTimestamp != nil {
		return true, ""
	}
	var matching []*Budget
	for _, b := range e.budgets {
		if b.PDB.Namespace == pod.Namespace && b.selects(pod.Labels) {
			matching = append(matching, b)
		}
	}
	switch len(matching) {
	case 0:
		return true, ""
	case 1:
	default:
		names := make([]string, len(matching))
		for i, b := range matching {
			names[i] = b.PDB.Name
		}
		return false, fmt.Sprintf("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support. (%s)",
			strings.Join(names, ", "))
	}
	b := matching[0]
	ready := podReady(pod)
	if !ready {
		if p := b.PDB.Spec.UnhealthyPodEvictionPolicy; p != nil && *p == policyv1.AlwaysAllow {
			return true, ""
		}
		if b.CurrentHealthy >= b.DesiredHealthy && b.DesiredHealthy > 0 {
			return true, ""
		}
	}
	const refused = "Cannot evict pod as it would violate the pod's disruption budget."
	if b.SyncError != "" {
		return false, fmt.Sprintf("%s The disruption budget %s allows no disruption: %s", refused, b.PDB.Name, b.SyncError)
	}
	if b.ExpectedPods == 0 && len(b.UnmanagedPods) > 0 {
		return false, fmt.Sprintf("%s The disruption budget %s expects 0 pods: the pods it selects have no controller, "+
			"which count for nothing with a percentage or maxUnavailable (use an integer minAvailable)", refused, b.PDB.Name)
	}
	if b.DisruptionsAllowed <= 0 {
		return false, fmt.Sprintf("%s The disruption budget %s needs %d healthy pods and has %d currently",
			refused, b.PDB.Name, b.DesiredHealthy, b.CurrentHealthy)
	}
	b.DisruptionsAllowed--
	if ready && pod.DeletionTimestamp == nil {
		b.CurrentHealthy--
	}
	return true, ""
}

// Status returns the budget's status as the disruption controller writes
// it: the counts, observedGeneration, and the DisruptionAllowed condition
// (True/SufficientPods when a disruption is allowed, False/InsufficientPods
// when not, False/SyncFailed with the error when the expected count could
// not be computed). The condition keeps its lastTransitionTime from the
// budget's stored status when its status is unchanged, else it is now.
func (b *Budget) Status(now time.Time) policyv1.PodDisruptionBudgetStatus {
	st := policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: b.PDB.Generation,
		ExpectedPods:       b.ExpectedPods,
		DesiredHealthy:     b.DesiredHealthy,
		CurrentHealthy:     b.CurrentHealthy,
		DisruptionsAllowed: b.DisruptionsAllowed,
	}
	cond := metav1.Condition{
		Type:               policyv1.DisruptionAllowedCondition,
		Status:             metav1.ConditionFalse,
		Reason:             policyv1.InsufficientPodsReason,
		ObservedGeneration: b.PDB.Generation,
		LastTransitionTime: metav1.NewTime(now),
	}
	switch {
	case b.SyncError != "":
		cond.Reason, cond.Message = policyv1.SyncFailedReason, b.SyncError
	case b.DisruptionsAllowed > 0:
		cond.Status, cond.Reason = metav1.ConditionTrue, policyv1.SufficientPodsReason
	}
	for _, old := range b.PDB.Status.Conditions {
		if old.Type == cond.Type && old.Status == cond.Status && !old.LastTransitionTime.IsZero() {
			cond.LastTransitionTime = old.LastTransitionTime
		}
	}
	st.Conditions = []metav1.Condition{cond}
	return st
}

// ScalesFrom returns a ScaleFunc over the stored objects (other kinds
// than the workloads below are ignored), following the disruption
// controller's finders: a pod of a ReplicaSet that a Deployment controls
// has the Deployment's replicas; of any other ReplicaSet, of a StatefulSet
// or of a ReplicationController, that object's replicas (unset means 1).
// The controller must match the reference's name and UID. DaemonSets and
// Jobs have no scale: budgets over their pods need an integer minAvailable,
// as in Kubernetes ("daemonsets.apps does not implement the scale
// subresource").
func ScalesFrom(objects []runtime.Object) ScaleFunc {
	type key struct{ namespace, name string }
	deps := map[key]*appsv1.Deployment{}
	rss := map[key]*appsv1.ReplicaSet{}
	sss := map[key]*appsv1.StatefulSet{}
	rcs := map[key]*corev1.ReplicationController{}
	for _, obj := range objects {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			deps[key{o.Namespace, o.Name}] = o
		case *appsv1.ReplicaSet:
			rss[key{o.Namespace, o.Name}] = o
		case *appsv1.StatefulSet:
			sss[key{o.Namespace, o.Name}] = o
		case *corev1.ReplicationController:
			rcs[key{o.Namespace, o.Name}] = o
		}
	}
	replicas := func(r *int32) int32 {
		if r == nil {
			return 1
		}
		return *r
	}
	return func(ns string, ref *metav1.OwnerReference) (Scale, bool, error) {
		k := key{ns, ref.Name}
		switch ref.Kind {
		case "ReplicaSet":
			rs, ok := rss[k]
			if !ok || rs.UID != ref.UID {
				return Scale{}, false, nil
			}
			if owner := metav1.GetControllerOf(rs); owner != nil && owner.Kind == "Deployment" {
				d, ok := deps[key{ns, owner.Name}]
				if !ok || d.UID != owner.UID {
					return Scale{}, false, nil
				}
				return Scale{UID: d.UID, Replicas: replicas(d.Spec.Replicas)}, true, nil
			}
			return Scale{UID: rs.UID, Replicas: replicas(rs.Spec.Replicas)}, true, nil
		case "StatefulSet":
			if ss, ok := sss[k]; ok && ss.UID == ref.UID {
				return Scale{UID: ss.UID, Replicas: replicas(ss.Spec.Replicas)}, true, nil
			}
		case "ReplicationController":
			if rc, ok := rcs[k]; ok && rc.UID == ref.UID {
				return Scale{UID: rc.UID, Replicas: replicas(rc.Spec.Replicas)}, true, nil
			}
		case "DaemonSet":
			return Scale{}, false, fmt.Errorf("daemonsets.apps does not implement the scale subresource")
		case "Job":
			return Scale{}, false, fmt.Errorf("jobs.batch does not implement the scale subresource")
		}
		return Scale{}, false, nil
	}
}
