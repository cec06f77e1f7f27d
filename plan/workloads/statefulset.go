package workloads

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/clusterctl/clusterctl/plan/controller"
)

// revisionHashLabel labels a StatefulSet's ControllerRevisions with their
// hash (history.ControllerRevisionHashLabel).
const revisionHashLabel = "controller.kubernetes.io/hash"

var statefulPodRegex = regexp.MustCompile("(.*)-([0-9]+)$")

func setStatefulSetDefaults(spec *appsv1.StatefulSetSpec) {
	if spec.Replicas == nil {
		spec.Replicas = int32Ptr(1)
	}
	if spec.PodManagementPolicy == "" {
		spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	if spec.UpdateStrategy.Type == "" {
		spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if spec.UpdateStrategy.RollingUpdate == nil {
			spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if r := spec.UpdateStrategy.RollingUpdate; spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && r != nil {
		if r.Partition == nil {
			r.Partition = int32Ptr(0)
		}
		if r.MaxUnavailable == nil {
			one := intstr.FromInt32(1)
			r.MaxUnavailable = &one
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = int32Ptr(defaultRevisionHistoryLimit)
	}
	if spec.PersistentVolumeClaimRetentionPolicy == nil {
		spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted == "" {
		spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if spec.PersistentVolumeClaimRetentionPolicy.WhenScaled == "" {
		spec.PersistentVolumeClaimRetentionPolicy.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
}

func parentNameAndOrdinal(name string) (string, int) {
	m := statefulPodRegex.FindStringSubmatch(name)
	if len(m) < 3 {
		return "", -1
	}
	i, err := strconv.ParseInt(m[2], 10, 32)
	if err != nil {
		return m[1], -1
	}
	return m[1], int(i)
}

func ordinalOf(p *corev1.Pod) int {
	_, o := parentNameAndOrdinal(p.Name)
	return o
}

func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

func endOrdinal(set *appsv1.StatefulSet) int {
	return startOrdinal(set) + int(*set.Spec.Replicas) - 1
}

func podInOrdinalRange(p *corev1.Pod, set *appsv1.StatefulSet) bool {
	o := ordinalOf(p)
	return o >= startOrdinal(set) && o <= endOrdinal(set)
}

// StatefulSetPodName is the name of a StatefulSet's pod with an ordinal.
func StatefulSetPodName(set string, ordinal int) string { return fmt.Sprintf("%s-%d", set, ordinal) }

// StatefulSetClaimName is the name of the PersistentVolumeClaim a volume
// claim template gives the pod with an ordinal: <template>-<set>-<ordinal>.
func StatefulSetClaimName(template, set string, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", template, set, ordinal)
}

func isRunningAndReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && isPodReady(p)
}

func isRunningAndAvailable(p *corev1.Pod, minReadySeconds int32, s *state) bool {
	return p.Status.Phase == corev1.PodRunning && isPodAvailable(p, minReadySeconds, s.now)
}

// statefulSetSync is one StatefulSet's pass of Kubernetes'
// StatefulSetController (defaultStatefulSetControl.UpdateStatefulSet).
type statefulSetSync struct {
	s         *state
	set       *appsv1.StatefulSet // working copy, defaulted
	updateSet *appsv1.StatefulSet // set with the update revision's template
	sel       labels.Selector
	// placeholder marks pods that do not exist yet (Kubernetes tells them
	// by an empty status.phase).
	placeholder map[*corev1.Pod]bool
	monotonic   bool
}

func (s *state) syncStatefulSet(in *appsv1.StatefulSet) {
	set := in.DeepCopy()
	setStatefulSetDefaults(&set.Spec)
	sel, ok := s.workloadSelector("StatefulSet", set, set.Spec.Selector, set.Spec.Template.Labels)
	if !ok {
		return
	}
	x := &statefulSetSync{s: s, set: set, sel: sel, placeholder: map[*corev1.Pod]bool{},
		monotonic: set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement}

	match := func(p *corev1.Pod) bool {
		parent, _ := parentNameAndOrdinal(p.Name)
		return sel.Matches(labels.Set(p.Labels)) && parent == set.Name
	}
	all := func(*corev1.Pod) bool { return true }
	pods := s.claimPods(typeStatefulSet, set, all, match)
	allRevs := func(*appsv1.ControllerRevision) bool { return true }
	revMatch := func(r *appsv1.ControllerRevision) bool { return sel.Matches(labels.Set(r.Labels)) }
	revisions := claim(s, "ControllerRevision", typeStatefulSet, set, allRevs, revMatch,
		s.revsByOwner[ownerKeyOf("StatefulSet", set)], s.orphanRevs[set.Namespace], s.currentRevision)
	sortRevisions(revisions)

	current, update, collisionCount, err := x.revisions(revisions)
	if err != nil {
		s.event("StatefulSet", set, controller.EventWarning, "FailedHistory", "%v", err)
		return
	}
	status := x.update(current, update, collisionCount, pods)
	x.truncateHistory(pods, revisions, current, update)

	completeRollingUpdate(set, &status)
	if !inconsistentStatus(set, &status) {
		return
	}
	out := in.DeepCopy()
	out.Status = status
	s.put(out)
}

func completeRollingUpdate(set *appsv1.StatefulSet, st *appsv1.StatefulSetStatus) {
	if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		st.UpdatedReplicas == st.Replicas && st.ReadyReplicas == st.Replicas {
		st.CurrentReplicas = st.UpdatedReplicas
		st.CurrentRevision = st.UpdateRevision
	}
}

func inconsistentStatus(set *appsv1.StatefulSet, st *appsv1.StatefulSetStatus) bool {
	old := &set.Status
	return st.ObservedGeneration > old.ObservedGeneration ||
		st.Replicas != old.Replicas ||
		st.CurrentReplicas != old.CurrentReplicas ||
		st.ReadyReplicas != old.ReadyReplicas ||
		st.UpdatedReplicas != old.UpdatedReplicas ||
		st.CurrentRevision != old.CurrentRevision ||
		st.AvailableReplicas != old.AvailableReplicas ||
		st.UpdateRevision != old.UpdateRevision
}

// revisions returns the current and update ControllerRevisions, creating
// the update revision or renumbering an equal older one (a rollback).
func (x *statefulSetSync) revisions(revisions []*appsv1.ControllerRevision) (current, update *appsv1.ControllerRevision, collisionCount int32, err error) {
	s, set := x.s, x.set
	if set.Status.CollisionCount != nil {
		collisionCount = *set.Status.CollisionCount
	}
	patch, err := templatePatch(&set.Spec.Template)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("snapshot stateful set %s: %w", set.Name, err)
	}
	next := int64(1)
	if n := len(revisions); n > 0 {
		next = revisions[n-1].Revision + 1
	}
	var equal []*appsv1.ControllerRevision
	for _, r := range revisions {
		if bytes.Equal(r.Data.Raw, patch) {
			equal = append(equal, r)
		}
	}
	switch {
	case len(equal) > 0 && equal[len(equal)-1] == revisions[len(revisions)-1]:
		update = revisions[len(revisions)-1]
	case len(equal) > 0:
		c := equal[len(equal)-1].DeepCopy()
		c.Revision = next
		s.put(c)
		update = c
	default:
		update = x.createRevision(patch, next, &collisionCount)
	}
	for _, r := range revisions {
		if r.Name == set.Status.CurrentRevision {
			current = r
			break
		}
	}
	if current == nil {
		current = update
	}
	// current may have been renumbered above: use the working version.
	if c, ok := s.revisions[keyOf(current)]; ok {
		current = c
	}
	return current, update, collisionCount, nil
}

// createRevision is history.CreateControllerRevision: on a name taken by
// other data, collisionCount goes up and the name changes.
func (x *statefulSetSync) createRevision(patch []byte, revision int64, collisionCount *int32) *appsv1.ControllerRevision {
	s, set := x.s, x.set
	labelHash := hashControllerRevision(patch, collisionCount)
	prefix := set.Name
	if len(prefix) > 223 {
		prefix = prefix[:223]
	}
	for {
		hash := hashControllerRevision(patch, collisionCount)
		name := prefix + "-" + hash
		if existing, ok := s.revisions[nsName{set.Namespace, name}]; ok || s.deleted("ControllerRevision", &metav1.ObjectMeta{Namespace: set.Namespace, Name: name}) {
			if ok && bytes.Equal(existing.Data.Raw, patch) {
				return existing
			}
			*collisionCount++
			continue
		}
		cr := &appsv1.ControllerRevision{ObjectMeta: s.newMeta("ControllerRevision", set.Namespace, name)}
		cr.Labels = withKey(set.Spec.Template.Labels, revisionHashLabel, labelHash)
		cr.Annotations = copyStringMap(set.Annotations)
		cr.OwnerReferences = []metav1.OwnerReference{newControllerRef(typeStatefulSet, set)}
		cr.Data.Raw = patch
		cr.Revision = revision
		s.put(cr)
		return cr
	}
}

// applyRevision returns the set with the template recorded in revision.
func applyRevision(set *appsv1.StatefulSet, revision *appsv1.ControllerRevision) (*appsv1.StatefulSet, error) {
	tpl, err := templateFromPatch(revision.Data.Raw)
	if err != nil {
		return nil, fmt.Errorf("apply revision %s: %w", revision.Name, err)
	}
	out := set.DeepCopy()
	out.Spec.Template = tpl
	return out, nil
}

// truncateHistory deletes the oldest revisions beyond revisionHistoryLimit
// that are neither current, nor the update revision, nor run by a pod.
func (x *statefulSetSync) truncateHistory(pods []*corev1.Pod, revisions []*appsv1.ControllerRevision, current, update *appsv1.ControllerRevision) {
	live := map[string]bool{current.Name: true, update.Name: true}
	for _, p := range pods {
		live[p.Labels[appsv1.StatefulSetRevisionLabel]] = true
	}
	var history []*appsv1.ControllerRevision
	for _, r := range revisions {
		if !live[r.Name] {
			history = append(history, r)
		}
	}
	limit := int(*x.set.Spec.RevisionHistoryLimit)
	if limit < 0 || len(history) <= limit {
		return
	}
	for _, r := range history[:len(history)-limit] {
		x.s.remove("ControllerRevision", r)
	}
}

func (x *statefulSetSync) isCreated(p *corev1.Pod) bool { return !x.placeholder[p] }

func (x *statefulSetSync) isUnavailable(p *corev1.Pod) bool {
	return !x.isCreated(p) || !isRunningAndAvailable(p, x.set.Spec.MinReadySeconds, x.s) || p.DeletionTimestamp != nil
}

func (x *statefulSetSync) countStatus(st *appsv1.StatefulSetStatus, current, update *appsv1.ControllerRevision, lists ...[]*corev1.Pod) {
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas, st.CurrentReplicas, st.UpdatedReplicas = 0, 0, 0, 0, 0
	for _, list := range lists {
		for _, p := range list {
			created := x.isCreated(p)
			if created {
				st.Replicas++
			}
			if created && isRunningAndReady(p) {
				st.ReadyReplicas++
				if isRunningAndAvailable(p, x.set.Spec.MinReadySeconds, x.s) {
					st.AvailableReplicas++
				}
			}
			if created && p.DeletionTimestamp == nil {
				rev := p.Labels[appsv1.StatefulSetRevisionLabel]
				if rev == current.Name {
					st.CurrentReplicas++
				}
				if rev == update.Name {
					st.UpdatedReplicas++
				}
			}
		}
	}
}

// update is updateStatefulSet: create missing pods (in order, one at a time
// unless Parallel), delete pods beyond the replicas (highest first), then
// replace pods of old revisions from the highest ordinal down to the
// partition, within maxUnavailable.
func (x *statefulSetSync) update(currentRev, updateRev *appsv1.ControllerRevision, collisionCount int32, pods []*corev1.Pod) appsv1.StatefulSetStatus {
	s, set := x.s, x.set
	currentSet, err := applyRevision(set, currentRev)
	if err != nil {
		s.event("StatefulSet", set, controller.EventWarning, "FailedHistory", "%v", err)
		currentSet = set
	}
	updateSet, err := applyRevision(set, updateRev)
	if err != nil {
		s.event("StatefulSet", set, controller.EventWarning, "FailedHistory", "%v", err)
		updateSet = set
	}
	x.updateSet = updateSet

	st := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    currentRev.Name,
		UpdateRevision:     updateRev.Name,
		CollisionCount:     int32Ptr(collisionCount),
	}
	x.countStatus(&st, currentRev, updateRev, pods)

	start, end := startOrdinal(set), endOrdinal(set)
	replicas := make([]*corev1.Pod, end-start+1)
	var condemned []*corev1.Pod
	for _, p := range pods {
		switch o := ordinalOf(p); {
		case o >= start && o <= end:
			replicas[o-start] = p
		case o >= 0:
			condemned = append(condemned, p)
		}
	}
	for ord := start; ord <= end; ord++ {
		if replicas[ord-start] == nil {
			p := x.newVersionedPod(currentSet, updateSet, currentRev.Name, updateRev.Name, ord)
			x.placeholder[p] = true
			replicas[ord-start] = p
		}
	}
	sort.SliceStable(condemned, func(i, j int) bool { return ordinalOf(condemned[i]) > ordinalOf(condemned[j]) })

	var firstUnavailable *corev1.Pod
	for _, p := range replicas {
		if x.isUnavailable(p) {
			firstUnavailable = p
			break
		}
	}
	if firstUnavailable == nil {
		for i := len(condemned) - 1; i >= 0; i-- {
			if x.isUnavailable(condemned[i]) {
				firstUnavailable = condemned[i]
				break
			}
		}
	}
	done := func() appsv1.StatefulSetStatus {
		x.countStatus(&st, currentRev, updateRev, replicas, condemned)
		return st
	}
	if set.DeletionTimestamp != nil {
		return st
	}
	if x.runForAll(len(replicas), func(i int) bool { return x.processReplica(replicas, i) }) {
		return done()
	}
	if x.runForAll(len(condemned), func(i int) bool { x.fixPodClaims(condemned[i]); return false }) {
		return done()
	}
	if x.runForAll(len(condemned), func(i int) bool { return x.processCondemned(condemned, i, firstUnavailable) }) {
		return done()
	}
	st = done()
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return st
	}

	updateMin, maxUnavailable := 0, 1
	if r := set.Spec.UpdateStrategy.RollingUpdate; r != nil {
		updateMin = int(*r.Partition)
		maxUnavailable = statefulSetMaxUnavailable(r.MaxUnavailable, len(replicas))
	}
	unavailable := 0
	for _, p := range replicas {
		if x.isUnavailable(p) {
			unavailable++
		}
	}
	if unavailable > maxUnavailable {
		return st
	}
	toDelete := maxUnavailable - unavailable
	deleted := 0
	for target := len(replicas) - 1; target >= updateMin && deleted < toDelete; target-- {
		p := replicas[target]
		if p.Labels[appsv1.StatefulSetRevisionLabel] != updateRev.Name && p.DeletionTimestamp == nil {
			x.deletePod(p)
			deleted++
			st.CurrentReplicas--
		}
	}
	return st
}

func statefulSetMaxUnavailable(v *intstr.IntOrString, replicas int) int {
	n, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(v, intstr.FromInt32(1)), replicas, false)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// runForAll runs fn over 0..n-1; in OrderedReady mode it stops at the first
// fn that says so and reports that it stopped. In Parallel mode it runs
// all.
func (x *statefulSetSync) runForAll(n int, fn func(int) bool) bool {
	for i := range n {
		if fn(i) && x.monotonic {
			return true
		}
	}
	return false
}

func (x *statefulSetSync) processReplica(replicas []*corev1.Pod, i int) bool {
	s, set := x.s, x.set
	p := replicas[i]
	if x.isCreated(p) && isPodTerminal(p) {
		if p.DeletionTimestamp == nil {
			x.deletePod(p)
		}
		return true
	}
	if !x.isCreated(p) {
		if x.podClaimIsStale(p) {
			return true
		}
		if !x.createPod(p) {
			return true
		}
		if x.monotonic {
			return true
		}
		p = s.pods[keyOf(p)]
	}
	if p.Status.Phase == corev1.PodPending {
		if err := x.createClaims(p); err != nil {
			return true
		}
		x.updateClaimsForRetention(p)
	}
	if p.DeletionTimestamp != nil && x.monotonic {
		return true
	}
	if !isRunningAndReady(p) && x.monotonic {
		return true
	}
	if !isRunningAndAvailable(p, set.Spec.MinReadySeconds, s) && x.monotonic {
		return true
	}
	retentionMatch := x.claimsMatchRetentionPolicy(p)
	if identityMatches(set, p) && storageMatches(set, p) && retentionMatch {
		return false
	}
	x.updatePod(p)
	return false
}

func (x *statefulSetSync) processCondemned(condemned []*corev1.Pod, i int, firstUnavailable *corev1.Pod) bool {
	p := condemned[i]
	if p.DeletionTimestamp != nil {
		return x.monotonic
	}
	if x.monotonic && p != firstUnavailable {
		if !isRunningAndReady(p) || !isRunningAndAvailable(p, x.set.Spec.MinReadySeconds, x.s) {
			return true
		}
	}
	x.deletePod(p)
	return true
}

func (x *statefulSetSync) deletePod(p *corev1.Pod) {
	x.s.remove("Pod", p)
	x.s.event("StatefulSet", x.set, controller.EventNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", p.Name, x.set.Name)
}

// newVersionedPod is newVersionedStatefulSetPod: the pod for an ordinal,
// at the current revision below the partition, else at the update
// revision. (The condition's grouping is Kubernetes'.)
func (x *statefulSetSync) newVersionedPod(currentSet, updateSet *appsv1.StatefulSet, currentRev, updateRev string, ord int) *corev1.Pod {
	u := currentSet.Spec.UpdateStrategy
	if u.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		(u.RollingUpdate == nil && ord < startOrdinal(currentSet)+int(currentSet.Status.CurrentReplicas)) ||
		(u.RollingUpdate != nil && ord < startOrdinal(currentSet)+int(*u.RollingUpdate.Partition)) {
		p := x.newStatefulPod(currentSet, ord)
		p.Labels = withKey(p.Labels, appsv1.StatefulSetRevisionLabel, currentRev)
		return p
	}
	p := x.newStatefulPod(updateSet, ord)
	p.Labels = withKey(p.Labels, appsv1.StatefulSetRevisionLabel, updateRev)
	return p
}

func (x *statefulSetSync) newStatefulPod(set *appsv1.StatefulSet, ord int) *corev1.Pod {
	name := StatefulSetPodName(set.Name, ord)
	p := x.s.newPod(&set.Spec.Template, typeStatefulSet, x.set, name, set.Name+"-")
	updateIdentity(set, p)
	p.Spec.Hostname = p.Name
	p.Spec.Subdomain = set.Spec.ServiceName
	updateStorage(set, p)
	return p
}

func updateIdentity(set *appsv1.StatefulSet, p *corev1.Pod) {
	ord := ordinalOf(p)
	p.Name = StatefulSetPodName(set.Name, ord)
	p.Namespace = set.Namespace
	p.Labels = withKey(p.Labels, appsv1.StatefulSetPodNameLabel, p.Name)
	p.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ord)
}

func identityMatches(set *appsv1.StatefulSet, p *corev1.Pod) bool {
	parent, ord := parentNameAndOrdinal(p.Name)
	return ord >= 0 && parent == set.Name && p.Name == StatefulSetPodName(set.Name, ord) &&
		p.Namespace == set.Namespace && p.Labels != nil &&
		p.Labels[appsv1.StatefulSetPodNameLabel] == p.Name &&
		p.Labels[appsv1.PodIndexLabel] == strconv.Itoa(ord)
}

func storageMatches(set *appsv1.StatefulSet, p *corev1.Pod) bool {
	ord := ordinalOf(p)
	if ord < 0 {
		return false
	}
	vols := map[string]corev1.Volume{}
	for _, v := range p.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, c := range set.Spec.VolumeClaimTemplates {
		v, ok := vols[c.Name]
		if !ok || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != StatefulSetClaimName(c.Name, set.Name, ord) {
			return false
		}
	}
	return true
}

// updateStorage points the pod's volumes named after the claim templates
// at the pod's claims (in template order), keeping its other volumes.
func updateStorage(set *appsv1.StatefulSet, p *corev1.Pod) {
	ord := ordinalOf(p)
	claims := map[string]bool{}
	var vols []corev1.Volume
	for _, c := range set.Spec.VolumeClaimTemplates {
		claims[c.Name] = true
		vols = append(vols, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: StatefulSetClaimName(c.Name, set.Name, ord)},
		}})
	}
	for _, v := range p.Spec.Volumes {
		if !claims[v.Name] {
			vols = append(vols, v)
		}
	}
	p.Spec.Volumes = vols
}

// claimsFor returns the claims the pod should have, from the templates.
func (x *statefulSetSync) claimsFor(set *appsv1.StatefulSet, p *corev1.Pod) []*corev1.PersistentVolumeClaim {
	ord := ordinalOf(p)
	var out []*corev1.PersistentVolumeClaim
	for i := range set.Spec.VolumeClaimTemplates {
		c := set.Spec.VolumeClaimTemplates[i].DeepCopy()
		c.Name = StatefulSetClaimName(set.Spec.VolumeClaimTemplates[i].Name, set.Name, ord)
		c.Namespace = set.Namespace
		lbls := map[string]string{}
		for k, v := range c.Labels {
			lbls[k] = v
		}
		if set.Spec.Selector != nil {
			for k, v := range set.Spec.Selector.MatchLabels {
				lbls[k] = v
			}
		}
		c.Labels = copyStringMap(lbls)
		out = append(out, c)
	}
	return out
}

// createClaims creates the pod's missing claims; a claim that is being
// deleted is an error (the pod waits for it to go).
func (x *statefulSetSync) createClaims(p *corev1.Pod) error {
	s, set := x.s, x.set
	for _, want := range x.claimsFor(set, p) {
		if have, ok := s.pvcs[keyOf(want)]; ok {
			if have.DeletionTimestamp != nil {
				return fmt.Errorf("pvc %s is being deleted", want.Name)
			}
			continue
		}
		c := &corev1.PersistentVolumeClaim{ObjectMeta: s.newMeta("PersistentVolumeClaim", want.Namespace, want.Name)}
		c.Labels = want.Labels
		c.Annotations = copyStringMap(want.Annotations)
		c.Finalizers = want.Finalizers
		c.Spec = want.Spec
		c.Status.Phase = corev1.ClaimPending
		s.put(c)
		s.event("StatefulSet", set, controller.EventNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", c.Name, p.Name, set.Name)
	}
	return nil
}

// createPod creates the pod's claims, then the pod, then sets the claims'
// owner references for the retention policy.
func (x *statefulSetSync) createPod(p *corev1.Pod) bool {
	s, set := x.s, x.set
	if err := x.createClaims(p); err != nil {
		s.event("StatefulSet", set, controller.EventWarning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", p.Name, set.Name, err)
		return false
	}
	pod := p.DeepCopy()
	s.put(pod)
	x.updateClaimsForRetention(pod)
	s.event("StatefulSet", set, controller.EventNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", pod.Name, set.Name)
	return true
}

// updatePod restores the pod's identity and storage.
func (x *statefulSetSync) updatePod(p *corev1.Pod) {
	s, set := x.s, x.updateSet
	c := p.DeepCopy()
	changed := false
	if !identityMatches(set, c) {
		updateIdentity(set, c)
		changed = true
	}
	if !storageMatches(set, c) {
		updateStorage(set, c)
		changed = true
		if err := x.createClaims(c); err != nil {
			s.event("StatefulSet", x.set, controller.EventWarning, "FailedUpdate", "update Pod %s in StatefulSet %s failed error: %v", c.Name, x.set.Name, err)
			return
		}
	}
	if !x.claimsMatchRetentionPolicy(c) {
		x.updateClaimsForRetention(c)
	}
	if changed {
		s.put(c)
	}
	s.event("StatefulSet", x.set, controller.EventNormal, "SuccessfulUpdate", "update Pod %s in StatefulSet %s successful", c.Name, x.set.Name)
}

func (x *statefulSetSync) fixPodClaims(p *corev1.Pod) {
	if !x.claimsMatchRetentionPolicy(p) {
		x.updateClaimsForRetention(p)
	}
}

// podClaimIsStale reports whether a claim of a pod about to be created is
// still owned by an earlier pod of the same name (when scale-down deletes
// claims): the garbage collector must delete it first.
func (x *statefulSetSync) podClaimIsStale(p *corev1.Pod) bool {
	policy := x.set.Spec.PersistentVolumeClaimRetentionPolicy
	if policy.WhenScaled == appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		return false
	}
	for _, want := range x.claimsFor(x.set, p) {
		if have, ok := x.s.pvcs[keyOf(want)]; ok && hasStaleOwnerRef(have, "Pod", p.Name, p.UID) {
			return true
		}
	}
	return false
}

// hasStaleOwnerRef reports whether o has an owner reference to kind/name
// with another UID than uid: an earlier object of the same name.
func hasStaleOwnerRef(o metav1.Object, kind, name string, uid types.UID) bool {
	for _, r := range o.GetOwnerReferences() {
		if r.Kind == kind && r.Name == name && r.UID != uid {
			return true
		}
	}
	return false
}

func hasOwnerRefTo(o metav1.Object, kind string, owner metav1.Object) bool {
	for _, r := range o.GetOwnerReferences() {
		if r.Kind == kind && r.Name == owner.GetName() && r.UID == owner.GetUID() {
			return true
		}
	}
	return false
}

// hasUnexpectedController reports a claim controlled by something other
// than the set or the pod: its retention policy is then left alone.
func hasUnexpectedController(c *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, p *corev1.Pod) bool {
	for _, r := range c.OwnerReferences {
		if r.Controller == nil || !*r.Controller {
			continue
		}
		if (r.Kind == "StatefulSet" && r.Name == set.Name && r.UID == set.UID) || (r.Kind == "Pod" && r.Name == p.Name && r.UID == p.UID) {
			continue
		}
		return true
	}
	return false
}

// wantClaimRefs returns whether the claim of pod p should be owned by the
// set and by the pod under the retention policy; ok is false when the
// claim is someone else's.
func (x *statefulSetSync) wantClaimRefs(c *corev1.PersistentVolumeClaim, p *corev1.Pod) (bySet, byPod, ok bool) {
	set := x.set
	if hasUnexpectedController(c, set, p) {
		return false, false, false
	}
	policy := set.Spec.PersistentVolumeClaimRetentionPolicy
	del := appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	scaledDown := !podInOrdinalRange(p, set)
	switch {
	case policy.WhenScaled != del && policy.WhenDeleted != del:
		return false, false, true
	case policy.WhenScaled != del && policy.WhenDeleted == del:
		return true, false, true
	case policy.WhenScaled == del && policy.WhenDeleted != del:
		return false, scaledDown, true
	default:
		return !scaledDown, scaledDown, true
	}
}

func (x *statefulSetSync) claimUpToDate(c *corev1.PersistentVolumeClaim, p *corev1.Pod) bool {
	if hasStaleOwnerRef(c, "StatefulSet", x.set.Name, x.set.UID) || hasStaleOwnerRef(c, "Pod", p.Name, p.UID) {
		return false
	}
	bySet, byPod, ok := x.wantClaimRefs(c, p)
	if !ok {
		return true
	}
	return hasOwnerRefTo(c, "StatefulSet", x.set) == bySet && hasOwnerRefTo(c, "Pod", p) == byPod
}

func (x *statefulSetSync) claimsMatchRetentionPolicy(p *corev1.Pod) bool {
	for _, want := range x.claimsFor(x.set, p) {
		if have, ok := x.s.pvcs[keyOf(want)]; ok && !x.claimUpToDate(have, p) {
			return false
		}
	}
	return true
}

// updateClaimsForRetention sets the owner references of the pod's claims
// for the retention policy: the StatefulSet owns them when they go with
// it, the pod owns them when they go with a scaled-down pod, and the
// garbage collector does the rest.
func (x *statefulSetSync) updateClaimsForRetention(p *corev1.Pod) {
	s, set := x.s, x.set
	for _, want := range x.claimsFor(set, p) {
		have, ok := s.pvcs[keyOf(want)]
		if !ok {
			continue
		}
		if hasUnexpectedController(have, set, p) {
			s.event("StatefulSet", set, controller.EventWarning, "ConflictingController",
				"PersistentVolumeClaim %s has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim", have.Name)
			continue
		}
		if x.claimUpToDate(have, p) {
			continue
		}
		bySet, byPod, _ := x.wantClaimRefs(have, p)
		c := have.DeepCopy()
		var refs []metav1.OwnerReference
		for _, r := range c.OwnerReferences {
			isSet := r.Kind == "StatefulSet" && r.Name == set.Name
			isPod := r.Kind == "Pod" && r.Name == p.Name
			if isSet || isPod {
				continue // stale or re-added below
			}
			refs = append(refs, r)
		}
		if bySet {
			refs = append(refs, metav1.OwnerReference{APIVersion: typeStatefulSet.APIVersion, Kind: "StatefulSet", Name: set.Name, UID: set.UID})
		}
		if byPod {
			refs = append(refs, metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: p.Name, UID: p.UID})
		}
		c.OwnerReferences = refs
		s.put(c)
	}
}
