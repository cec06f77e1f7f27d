package workloads

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/clusterctl/clusterctl/plan/controller"
)

// deploymentSync is one Deployment's pass of Kubernetes'
// DeploymentController.syncDeployment. d is a working copy with the API
// server's defaults applied; its status and annotations are written back.
type deploymentSync struct {
	s      *state
	d      *appsv1.Deployment
	sel    labels.Selector
	rsKeys []nsName                 // the ReplicaSets it controls
	podMap map[nsName][]*corev1.Pod // their pods, by ReplicaSet
	failed bool                     // stop: creating the new ReplicaSet ran into a name collision
	// isNewCache remembers which ReplicaSets have the Deployment's
	// template: templates do not change during a sync and comparing them
	// is the most expensive step.
	isNewCache map[nsName]bool
}

// isNew reports whether rs has the Deployment's pod template.
func (x *deploymentSync) isNew(rs *appsv1.ReplicaSet) bool {
	k := keyOf(rs)
	v, ok := x.isNewCache[k]
	if !ok {
		v = equalIgnoreHash(&rs.Spec.Template, &x.d.Spec.Template)
		x.isNewCache[k] = v
	}
	return v
}

func (s *state) syncDeployment(in *appsv1.Deployment) {
	d := in.DeepCopy()
	setDeploymentDefaults(&d.Spec)
	x := &deploymentSync{s: s, d: d, isNewCache: map[nsName]bool{}}
	x.sync()
	if apiequality.Semantic.DeepEqual(in.Status, d.Status) && maps.Equal(in.Annotations, d.Annotations) {
		return
	}
	d.Spec = *in.Spec.DeepCopy() // defaults are never written back
	s.put(d)
}

func (x *deploymentSync) sync() {
	d := x.d
	if d.Spec.Selector != nil && len(d.Spec.Selector.MatchLabels) == 0 && len(d.Spec.Selector.MatchExpressions) == 0 {
		x.s.event("Deployment", d, controller.EventWarning, reasonSelectingAll, deploymentSelectingAllMsg)
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
		}
		return
	}
	sel, ok := x.s.workloadSelector("Deployment", d, d.Spec.Selector, d.Spec.Template.Labels)
	if !ok {
		return
	}
	x.sel = sel
	x.claimReplicaSets()

	if d.DeletionTimestamp != nil {
		newRS, oldRSs := x.allReplicaSets(false)
		x.syncDeploymentStatus(append(oldRSs, newRS), newRS)
		return
	}
	x.checkPausedConditions()
	if d.Spec.Paused {
		x.syncScale()
		return
	}
	if x.isScalingEvent() {
		x.syncScale()
		return
	}
	if x.failed {
		return
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		x.rolloutRecreate()
	case appsv1.RollingUpdateDeploymentStrategyType:
		x.rolloutRolling()
	default:
		x.s.event("Deployment", d, controller.EventWarning, "UnsupportedStrategy", "Unexpected deployment strategy type: %s", d.Spec.Strategy.Type)
	}
}

// claimReplicaSets adopts and releases ReplicaSets by the selector and
// records the pods of the ones it controls.
func (x *deploymentSync) claimReplicaSets() {
	s, d := x.s, x.d
	match := func(rs *appsv1.ReplicaSet) bool { return x.sel.Matches(labels.Set(rs.Labels)) }
	all := func(*appsv1.ReplicaSet) bool { return true }
	owned := claim(s, "ReplicaSet", typeDeployment, d, all, match,
		s.rsByOwner[ownerKeyOf("Deployment", d)], s.orphanRSs[d.Namespace], s.currentReplicaSet)
	x.podMap = map[nsName][]*corev1.Pod{}
	for _, rs := range owned {
		k := keyOf(rs)
		x.rsKeys = append(x.rsKeys, k)
		for _, p := range s.podsByOwner[ownerKeyOf("ReplicaSet", rs)] {
			if p, ok := s.pods[keyOf(p)]; ok && x.sel.Matches(labels.Set(p.Labels)) {
				x.podMap[k] = append(x.podMap[k], p)
			}
		}
	}
}

// rsList returns the working versions of the controlled ReplicaSets.
func (x *deploymentSync) rsList() []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, k := range x.rsKeys {
		if rs, ok := x.s.replicaSets[k]; ok {
			out = append(out, rs)
		}
	}
	return out
}

// allReplicaSets is getAllReplicaSetsAndSyncRevision: the new ReplicaSet
// (created if asked and missing) and the old ones. newRS is nil when there
// is none or when creating it ran into a name collision (x.failed).
func (x *deploymentSync) allReplicaSets(create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet) {
	rss := x.rsList()
	_, oldRSs := findOldReplicaSets(rss, x.isNew)
	return x.newReplicaSet(rss, oldRSs, create), oldRSs
}

func (x *deploymentSync) newReplicaSet(rss, oldRSs []*appsv1.ReplicaSet, create bool) *appsv1.ReplicaSet {
	s, d := x.s, x.d
	existing := findNewReplicaSet(rss, x.isNew)
	newRevision := strconv.FormatInt(maxRevision(oldRSs)+1, 10)
	if existing != nil {
		// Work on a shallow copy with its own annotations; deep-copy only
		// if something changes.
		probe := *existing
		probe.Annotations = copyStringMap(existing.Annotations)
		annotationsUpdated := setNewReplicaSetAnnotations(d, &probe, newRevision, true)
		if annotationsUpdated || existing.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			rsCopy := existing.DeepCopy()
			rsCopy.Annotations = probe.Annotations
			rsCopy.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			s.put(rsCopy)
			existing = rsCopy
		}
		// Kubernetes records the revision in the Deployment on its next sync
		// after updating the ReplicaSet; here it is done right away.
		setDeploymentRevision(d, existing.Annotations[RevisionAnnotation])
		if hasProgressDeadline(d) && getDeploymentCondition(d.Status, appsv1.DeploymentProgressing) == nil {
			msg := fmt.Sprintf("Found new replica set %q", existing.Name)
			setDeploymentCondition(&d.Status, s.newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonFoundNewRS, msg))
		}
		return existing
	}
	if !create {
		return nil
	}

	template := *d.Spec.Template.DeepCopy()
	hash := ComputeHash(&template, d.Status.CollisionCount)
	template.Labels = withKey(d.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	selector := d.Spec.Selector.DeepCopy()
	selector.MatchLabels = withKey(selector.MatchLabels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	name := d.Name + "-" + hash

	newRS := &appsv1.ReplicaSet{ObjectMeta: s.newMeta("ReplicaSet", d.Namespace, name)}
	newRS.Generation = 1
	newRS.OwnerReferences = []metav1.OwnerReference{newControllerRef(typeDeployment, d)}
	newRS.Labels = copyStringMap(template.Labels)
	newRS.Spec = appsv1.ReplicaSetSpec{
		Replicas:        int32Ptr(0),
		MinReadySeconds: d.Spec.MinReadySeconds,
		Selector:        selector,
		Template:        template,
	}
	count := newRSNewReplicas(d, append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS), newRS)
	newRS.Spec.Replicas = int32Ptr(count)
	setNewReplicaSetAnnotations(d, newRS, newRevision, false)

	created, alreadyExists := newRS, false
	if other, ok := s.replicaSets[keyOf(newRS)]; ok || s.deleted("ReplicaSet", newRS) {
		owner, owned := controllerOf(other)
		if ok && owned && owner == ownerKeyOf("Deployment", d) && equalIgnoreHash(&d.Spec.Template, &other.Spec.Template) {
			created, alreadyExists = other, true
		} else {
			// A hash collision: bump collisionCount so that the next pass
			// computes another name.
			if d.Status.CollisionCount == nil {
				d.Status.CollisionCount = int32Ptr(0)
			}
			*d.Status.CollisionCount++
			x.failed = true
			return nil
		}
	} else {
		s.put(newRS)
		x.rsKeys = append(x.rsKeys, keyOf(newRS))
	}
	if !alreadyExists && count > 0 {
		s.event("Deployment", d, controller.EventNormal, reasonScalingReplicaSet, "Scaled up replica set %s from 0 to %d", created.Name, count)
	}
	setDeploymentRevision(d, newRevision)
	if !alreadyExists && hasProgressDeadline(d) {
		msg := fmt.Sprintf("Created new replica set %q", created.Name)
		setDeploymentCondition(&d.Status, s.newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewRSCreated, msg))
	}
	return created
}

// checkPausedConditions records pausing and resuming in the Progressing
// condition, so that a resumed Deployment does not time out at once.
func (x *deploymentSync) checkPausedConditions() {
	d := x.d
	if !hasProgressDeadline(d) {
		return
	}
	cond := getDeploymentCondition(d.Status, appsv1.DeploymentProgressing)
	if cond != nil && cond.Reason == ReasonProgressDeadline {
		return
	}
	pausedCondExists := cond != nil && cond.Reason == ReasonDeploymentPaused
	switch {
	case d.Spec.Paused && !pausedCondExists:
		setDeploymentCondition(&d.Status, x.s.newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonDeploymentPaused, "Deployment is paused"))
	case !d.Spec.Paused && pausedCondExists:
		setDeploymentCondition(&d.Status, x.s.newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonDeploymentResumed, "Deployment is resumed"))
	}
}

// isScalingEvent reports whether spec.replicas changed since the active
// ReplicaSets were last scaled.
func (x *deploymentSync) isScalingEvent() bool {
	newRS, oldRSs := x.allReplicaSets(false)
	if x.failed {
		return false
	}
	all := oldRSs
	if newRS != nil {
		all = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	}
	for _, rs := range activeReplicaSets(all) {
		desired, ok := intAnnotation(rs, DesiredReplicasAnnotation)
		if ok && desired != *x.d.Spec.Replicas {
			return true
		}
	}
	return false
}

// syncScale is the controller's sync: scale for a paused Deployment or a
// scaling event, without rolling out.
func (x *deploymentSync) syncScale() {
	newRS, oldRSs := x.allReplicaSets(false)
	if x.failed {
		return
	}
	x.scale(newRS, oldRSs)
	if x.d.Spec.Paused {
		x.cleanupDeployment(oldRSs)
	}
	newRS, oldRSs = x.refresh(newRS, oldRSs)
	x.syncDeploymentStatus(append(oldRSs, newRS), newRS)
}

// refresh returns the working versions of newRS and oldRSs.
func (x *deploymentSync) refresh(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet) {
	cur := func(rs *appsv1.ReplicaSet) *appsv1.ReplicaSet {
		if rs == nil {
			return nil
		}
		return x.s.replicaSets[keyOf(rs)]
	}
	var olds []*appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if c := cur(rs); c != nil {
			olds = append(olds, c)
		}
	}
	return cur(newRS), olds
}

func (x *deploymentSync) scale(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) {
	d := x.d
	if rs := findActiveOrLatest(newRS, oldRSs); rs != nil {
		if rsReplicas(rs) != *d.Spec.Replicas {
			x.scaleAndRecord(rs, *d.Spec.Replicas)
		}
		return
	}
	if isSaturated(d, newRS) {
		for _, old := range activeReplicaSets(oldRSs) {
			x.scaleAndRecord(old, 0)
		}
		return
	}
	if !isRollingUpdate(d) {
		return
	}
	all := oldRSs
	if newRS != nil {
		all = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	}
	all = activeReplicaSets(all)
	allowed := int32(0)
	if *d.Spec.Replicas > 0 {
		allowed = *d.Spec.Replicas + maxSurge(d)
	}
	toAdd := allowed - replicaCount(all)
	op := ""
	switch {
	case toAdd > 0:
		sort.SliceStable(all, func(i, j int) bool {
			if rsReplicas(all[i]) == rsReplicas(all[j]) {
				return rsOlder(all[j], all[i])
			}
			return rsReplicas(all[i]) > rsReplicas(all[j])
		})
		op = "up"
	case toAdd < 0:
		sort.SliceStable(all, func(i, j int) bool {
			if rsReplicas(all[i]) == rsReplicas(all[j]) {
				return rsOlder(all[i], all[j])
			}
			return rsReplicas(all[i]) > rsReplicas(all[j])
		})
		op = "down"
	}
	added := int32(0)
	sizes := make([]int32, len(all))
	for i, rs := range all {
		if toAdd != 0 {
			p := replicaSetProportion(rs, d, toAdd, added)
			sizes[i] = rsReplicas(rs) + p
			added += p
		} else {
			sizes[i] = rsReplicas(rs)
		}
	}
	for i, rs := range all {
		if i == 0 && toAdd != 0 {
			sizes[i] += toAdd - added
			if sizes[i] < 0 {
				sizes[i] = 0
			}
		}
		x.scaleReplicaSet(rs, sizes[i], op)
	}
}

// scaleAndRecord scales rs to newScale if it is not there yet.
func (x *deploymentSync) scaleAndRecord(rs *appsv1.ReplicaSet, newScale int32) (bool, *appsv1.ReplicaSet) {
	cur := x.s.replicaSets[keyOf(rs)]
	if rsReplicas(cur) == newScale {
		return false, cur
	}
	op := "down"
	if rsReplicas(cur) < newScale {
		op = "up"
	}
	return x.scaleReplicaSet(cur, newScale, op)
}

// scaleReplicaSet sets the size of rs and its desired- and max-replicas
// annotations; it reports whether the size changed.
func (x *deploymentSync) scaleReplicaSet(rs *appsv1.ReplicaSet, newScale int32, op string) (bool, *appsv1.ReplicaSet) {
	s, d := x.s, x.d
	cur := s.replicaSets[keyOf(rs)]
	sizeNeedsUpdate := rsReplicas(cur) != newScale
	maxReplicas := *d.Spec.Replicas + maxSurge(d)
	if !sizeNeedsUpdate && !replicasAnnotationsNeedUpdate(cur, *d.Spec.Replicas, maxReplicas) {
		return false, cur
	}
	oldScale := rsReplicas(cur)
	c := cur.DeepCopy()
	c.Spec.Replicas = int32Ptr(newScale)
	setReplicasAnnotations(c, *d.Spec.Replicas, maxReplicas)
	s.put(c)
	if sizeNeedsUpdate {
		msg := ""
		switch op {
		case "up":
			msg = fmt.Sprintf("Scaled up replica set %s from %d to %d", c.Name, oldScale, newScale)
		case "down":
			msg = fmt.Sprintf("Scaled down replica set %s from %d to %d", c.Name, oldScale, newScale)
		}
		s.event("Deployment", d, controller.EventNormal, reasonScalingReplicaSet, "%s", msg)
	}
	return sizeNeedsUpdate, c
}

// cleanupDeployment deletes the oldest old ReplicaSets beyond
// revisionHistoryLimit that have no replicas left.
func (x *deploymentSync) cleanupDeployment(oldRSs []*appsv1.ReplicaSet) {
	d := x.d
	if d.Spec.RevisionHistoryLimit == nil {
		return
	}
	var cleanable []*appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if cur, ok := x.s.replicaSets[keyOf(rs)]; ok && cur.DeletionTimestamp == nil {
			cleanable = append(cleanable, cur)
		}
	}
	diff := int32(len(cleanable)) - *d.Spec.RevisionHistoryLimit
	if diff <= 0 {
		return
	}
	sort.SliceStable(cleanable, func(i, j int) bool {
		ri, erri := Revision(cleanable[i])
		rj, errj := Revision(cleanable[j])
		if erri != nil || errj != nil || ri == rj {
			return rsOlder(cleanable[i], cleanable[j])
		}
		return ri < rj
	})
	for _, rs := range cleanable[:diff] {
		if rs.Status.Replicas != 0 || rsReplicas(rs) != 0 || rs.Generation > rs.Status.ObservedGeneration || rs.DeletionTimestamp != nil {
			continue
		}
		x.s.remove("ReplicaSet", rs)
	}
}

func (x *deploymentSync) rolloutRolling() {
	newRS, oldRSs := x.allReplicaSets(true)
	if x.failed || newRS == nil {
		return
	}
	all := append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	if x.reconcileNewReplicaSet(all, newRS) {
		x.syncRolloutStatus(all, newRS)
		return
	}
	if x.reconcileOldReplicaSets(all, activeReplicaSets(oldRSs), newRS) {
		x.syncRolloutStatus(all, newRS)
		return
	}
	if deploymentComplete(x.d, &x.d.Status) {
		x.cleanupDeployment(oldRSs)
	}
	x.syncRolloutStatus(all, newRS)
}

func (x *deploymentSync) reconcileNewReplicaSet(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) bool {
	d := x.d
	switch {
	case rsReplicas(newRS) == *d.Spec.Replicas:
		return false
	case rsReplicas(newRS) > *d.Spec.Replicas:
		scaled, _ := x.scaleAndRecord(newRS, *d.Spec.Replicas)
		return scaled
	}
	scaled, _ := x.scaleAndRecord(newRS, newRSNewReplicas(d, all, newRS))
	return scaled
}

func (x *deploymentSync) reconcileOldReplicaSets(all, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) bool {
	d := x.d
	oldPods := replicaCount(oldRSs)
	if oldPods == 0 {
		return false
	}
	allPods := replicaCount(all)
	minAvailable := *d.Spec.Replicas - maxUnavailable(d)
	newRSUnavailable := rsReplicas(newRS) - newRS.Status.AvailableReplicas
	maxScaledDown := allPods - minAvailable - newRSUnavailable
	if maxScaledDown <= 0 {
		return false
	}
	oldRSs, cleaned := x.cleanupUnhealthyReplicas(oldRSs, maxScaledDown)
	all = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	scaledDown := x.scaleDownOldReplicaSetsForRollingUpdate(all, oldRSs)
	return cleaned+scaledDown > 0
}

// cleanupUnhealthyReplicas scales old ReplicaSets down by their
// unavailable replicas first: removing those costs no availability.
func (x *deploymentSync) cleanupUnhealthyReplicas(oldRSs []*appsv1.ReplicaSet, maxCleanup int32) ([]*appsv1.ReplicaSet, int32) {
	oldRSs = append([]*appsv1.ReplicaSet(nil), oldRSs...)
	byCreation(oldRSs)
	total := int32(0)
	for i, rs := range oldRSs {
		if total >= maxCleanup {
			break
		}
		if rsReplicas(rs) == 0 || rsReplicas(rs) == rs.Status.AvailableReplicas {
			continue
		}
		n := min(maxCleanup-total, rsReplicas(rs)-rs.Status.AvailableReplicas)
		newCount := rsReplicas(rs) - n
		if newCount > rsReplicas(rs) {
			break
		}
		_, updated := x.scaleAndRecord(rs, newCount)
		total += n
		oldRSs[i] = updated
	}
	return oldRSs, total
}

func (x *deploymentSync) scaleDownOldReplicaSetsForRollingUpdate(all, oldRSs []*appsv1.ReplicaSet) int32 {
	d := x.d
	minAvailable := *d.Spec.Replicas - maxUnavailable(d)
	available := availableReplicaCount(all)
	if available <= minAvailable {
		return 0
	}
	oldRSs = append([]*appsv1.ReplicaSet(nil), oldRSs...)
	byCreation(oldRSs)
	total := int32(0)
	toScaleDown := available - minAvailable
	for _, rs := range oldRSs {
		if total >= toScaleDown {
			break
		}
		if rsReplicas(rs) == 0 {
			continue
		}
		n := min(rsReplicas(rs), toScaleDown-total)
		x.scaleAndRecord(rs, rsReplicas(rs)-n)
		total += n
	}
	return total
}

func (x *deploymentSync) rolloutRecreate() {
	newRS, oldRSs := x.allReplicaSets(false)
	if x.failed {
		return
	}
	all := append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	scaledDown := false
	for _, rs := range activeReplicaSets(oldRSs) {
		if scaled, _ := x.scaleAndRecord(rs, 0); scaled {
			scaledDown = true
		}
	}
	if scaledDown {
		x.syncRolloutStatus(all, newRS)
		return
	}
	if x.oldPodsRunning(newRS, oldRSs) {
		x.syncRolloutStatus(all, newRS)
		return
	}
	if newRS == nil {
		newRS, oldRSs = x.allReplicaSets(true)
		if x.failed || newRS == nil {
			return
		}
		all = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	}
	x.scaleAndRecord(newRS, *x.d.Spec.Replicas)
	if deploymentComplete(x.d, &x.d.Status) {
		x.cleanupDeployment(oldRSs)
	}
	x.syncRolloutStatus(all, newRS)
}

// oldPodsRunning reports whether old ReplicaSets still have pods that have
// not finished (terminating ones included).
func (x *deploymentSync) oldPodsRunning(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) bool {
	if actualReplicaCount(oldRSs) > 0 {
		return true
	}
	for _, k := range x.rsKeys {
		if newRS != nil && k == keyOf(newRS) {
			continue
		}
		for _, p := range x.podMap[k] {
			if p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
				return true
			}
		}
	}
	return false
}

func deploymentComplete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	return st.UpdatedReplicas == *d.Spec.Replicas &&
		st.Replicas == *d.Spec.Replicas &&
		st.AvailableReplicas == *d.Spec.Replicas &&
		st.ObservedGeneration >= d.Generation
}

func deploymentProgressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	oldStatusOldReplicas := old.Replicas - old.UpdatedReplicas
	newStatusOldReplicas := st.Replicas - st.UpdatedReplicas
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		newStatusOldReplicas < oldStatusOldReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

func deploymentTimedOut(d *appsv1.Deployment, st *appsv1.DeploymentStatus, now time.Time) bool {
	if !hasProgressDeadline(d) {
		return false
	}
	c := getDeploymentCondition(*st, appsv1.DeploymentProgressing)
	if c == nil {
		return false
	}
	if c.Reason == ReasonNewRSAvailable {
		return false
	}
	if c.Reason == ReasonProgressDeadline {
		return true
	}
	deadline := time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second
	return c.LastUpdateTime.Add(deadline).Before(now)
}

// calculateStatus is the Deployment's status from its ReplicaSets'.
func (x *deploymentSync) calculateStatus(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) appsv1.DeploymentStatus {
	d := x.d
	available := availableReplicaCount(all)
	unavailable := max(replicaCount(all)-available, 0)
	st := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            actualReplicaCount(all),
		UpdatedReplicas:     actualReplicaCount([]*appsv1.ReplicaSet{newRS}),
		ReadyReplicas:       readyReplicaCount(all),
		AvailableReplicas:   available,
		UnavailableReplicas: unavailable,
		TerminatingReplicas: terminatingReplicaCount(all),
		CollisionCount:      d.Status.CollisionCount,
	}
	st.Conditions = append(st.Conditions, d.Status.Conditions...)
	if available >= *d.Spec.Replicas-maxUnavailable(d) {
		setDeploymentCondition(&st, x.s.newDeploymentCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumAvailable, "Deployment has minimum availability."))
	} else {
		setDeploymentCondition(&st, x.s.newDeploymentCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonMinimumUnavailable, "Deployment does not have minimum availability."))
	}
	return st
}

func (x *deploymentSync) syncDeploymentStatus(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) {
	all, newRS = x.current(all, newRS)
	x.d.Status = x.calculateStatus(all, newRS)
}

// current returns the working versions of all and newRS (nil entries
// dropped).
func (x *deploymentSync) current(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) ([]*appsv1.ReplicaSet, *appsv1.ReplicaSet) {
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		if rs == nil {
			continue
		}
		if cur, ok := x.s.replicaSets[keyOf(rs)]; ok {
			out = append(out, cur)
		}
	}
	if newRS != nil {
		newRS = x.s.replicaSets[keyOf(newRS)]
	}
	return out, newRS
}

// syncRolloutStatus computes the status with the Progressing condition:
// complete, progressing, or timed out.
func (x *deploymentSync) syncRolloutStatus(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) {
	all, newRS = x.current(all, newRS)
	d := x.d
	st := x.calculateStatus(all, newRS)
	if !hasProgressDeadline(d) {
		removeDeploymentCondition(&st, appsv1.DeploymentProgressing)
	}
	currentCond := getDeploymentCondition(d.Status, appsv1.DeploymentProgressing)
	isComplete := st.Replicas == st.UpdatedReplicas && currentCond != nil && currentCond.Reason == ReasonNewRSAvailable
	if hasProgressDeadline(d) && !isComplete {
		switch {
		case deploymentComplete(d, &st):
			msg := fmt.Sprintf("Deployment %q has successfully progressed.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name)
			}
			setDeploymentCondition(&st, x.s.newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewRSAvailable, msg))
		case deploymentProgressing(d, &st):
			msg := fmt.Sprintf("Deployment %q is progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name)
			}
			c := x.s.newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonReplicaSetUpdated, msg)
			if currentCond != nil {
				if currentCond.Status == corev1.ConditionTrue {
					c.LastTransitionTime = currentCond.LastTransitionTime
				}
				removeDeploymentCondition(&st, appsv1.DeploymentProgressing)
			}
			setDeploymentCondition(&st, c)
		case deploymentTimedOut(d, &st, x.s.now):
			msg := fmt.Sprintf("Deployment %q has timed out progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name)
			}
			setDeploymentCondition(&st, x.s.newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonProgressDeadline, msg))
		}
	}
	if failures := replicaFailures(all, newRS); len(failures) > 0 {
		setDeploymentCondition(&st, failures[0])
	} else {
		removeDeploymentCondition(&st, appsv1.DeploymentReplicaFailure)
	}
	d.Status = st
}

// replicaFailures lifts the ReplicaFailure conditions of the new (or else
// the old) ReplicaSets to the Deployment.
func replicaFailures(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []appsv1.DeploymentCondition {
	lift := func(rs *appsv1.ReplicaSet) []appsv1.DeploymentCondition {
		var out []appsv1.DeploymentCondition
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure {
				out = append(out, appsv1.DeploymentCondition{
					Type: appsv1.DeploymentConditionType(c.Type), Status: c.Status,
					LastUpdateTime: c.LastTransitionTime, LastTransitionTime: c.LastTransitionTime,
					Reason: c.Reason, Message: c.Message,
				})
			}
		}
		return out
	}
	if newRS != nil {
		if out := lift(newRS); len(out) > 0 {
			return out
		}
	}
	var out []appsv1.DeploymentCondition
	for _, rs := range all {
		out = append(out, lift(rs)...)
	}
	return out
}
