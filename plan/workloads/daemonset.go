package workloads

import (
	"bytes"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/clusterctl/clusterctl/plan/controller"
)

// templateGenerationLabel is the DaemonSet pod label carrying the
// template generation that apps/v1 keeps in the
// deprecated.daemonset.template.generation annotation.
const templateGenerationLabel = "pod-template-generation"

func setDaemonSetDefaults(spec *appsv1.DaemonSetSpec) {
	if spec.UpdateStrategy.Type == "" {
		spec.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if spec.UpdateStrategy.RollingUpdate == nil {
			spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if spec.UpdateStrategy.RollingUpdate.MaxUnavailable == nil {
			one := intstr.FromInt32(1)
			spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &one
		}
		if spec.UpdateStrategy.RollingUpdate.MaxSurge == nil {
			zero := intstr.FromInt32(0)
			spec.UpdateStrategy.RollingUpdate.MaxSurge = &zero
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = int32Ptr(defaultRevisionHistoryLimit)
	}
}

// daemonSetSync is one DaemonSet's pass of Kubernetes' DaemonSetsController.
type daemonSetSync struct {
	s    *state
	ds   *appsv1.DaemonSet // working copy, defaulted
	spec corev1.PodSpec    // the pod spec with default tolerations, for predicates
	sel  labels.Selector
	hash string
	// pods are the claimed daemon pods by target node, terminal pods that
	// are being deleted left out, at the start of the pass.
	pods    map[string][]*corev1.Pod
	allPods []*corev1.Pod
}

func (s *state) syncDaemonSet(in *appsv1.DaemonSet) {
	ds := in.DeepCopy()
	setDaemonSetDefaults(&ds.Spec)
	if sel := ds.Spec.Selector; sel != nil && len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		s.event("DaemonSet", ds, controller.EventWarning, reasonSelectingAll, daemonSetSelectingAllMsg)
		return
	}
	sel, ok := s.workloadSelector("DaemonSet", ds, ds.Spec.Selector, ds.Spec.Template.Labels)
	if !ok {
		return
	}
	if ds.DeletionTimestamp != nil {
		return
	}
	x := &daemonSetSync{s: s, ds: ds, spec: daemonPodSpec(ds), sel: sel}
	x.claimPods()

	cur, old, err := x.constructHistory()
	if err != nil {
		s.event("DaemonSet", ds, controller.EventWarning, "FailedHistory", "%v", err)
	}
	if cur != nil {
		x.hash = cur.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
		if !x.manage() && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
			x.rollingUpdate()
		}
		x.cleanupHistory(old)
	}
	x.updateStatus(cur != nil)
	ds.Spec = *in.Spec.DeepCopy()
	if !apiequality.Semantic.DeepEqual(in.Status, ds.Status) {
		s.put(ds)
	}
}

func (x *daemonSetSync) claimPods() {
	s := x.s
	match := func(p *corev1.Pod) bool { return x.sel.Matches(labels.Set(p.Labels)) }
	all := func(*corev1.Pod) bool { return true }
	x.pods = map[string][]*corev1.Pod{}
	for _, p := range s.claimPods(typeDaemonSet, x.ds, all, match) {
		x.allPods = append(x.allPods, p)
		if isPodTerminal(p) && p.DeletionTimestamp != nil {
			continue
		}
		if node, ok := targetNodeName(p); ok {
			x.pods[node] = append(x.pods[node], p)
		}
	}
}

func (x *daemonSetSync) node(name string) *Node {
	i := sort.Search(len(x.s.nodes), func(i int) bool { return x.s.nodes[i].Name >= name })
	if i < len(x.s.nodes) && x.s.nodes[i].Name == name {
		return &x.s.nodes[i]
	}
	return nil
}

func (x *daemonSetSync) shouldRun(n *Node) (bool, bool) {
	return nodeShouldRunDaemonPod(n, x.ds, &x.spec)
}

func allowsSurge(ds *appsv1.DaemonSet) bool {
	return surgeCount(ds, 1) != 0
}

func surgeCount(ds *appsv1.DaemonSet, n int) int {
	r := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || r == nil || r.MaxSurge == nil {
		return 0
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(r.MaxSurge, n, true)
	if err != nil {
		return 0
	}
	return v
}

func unavailableCount(ds *appsv1.DaemonSet, n int) int {
	r := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || r == nil {
		return 0
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(r.MaxUnavailable, n, true)
	if err != nil {
		return 0
	}
	return v
}

// isUpdated reports whether a daemon pod runs the current template: its
// controller-revision-hash, or its template generation label.
func (x *daemonSetSync) isUpdated(p *corev1.Pod) bool {
	if x.hash != "" && p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == x.hash {
		return true
	}
	gen, ok := x.ds.Annotations[appsv1.DeprecatedTemplateGeneration]
	return ok && p.Labels[templateGenerationLabel] == gen
}

// manage creates daemon pods on nodes that should run one and deletes them
// from nodes that should not, and failed, finished and excess ones; it
// reports whether it changed anything (the rolling update then waits for
// the next pass, as Kubernetes waits for its expectations).
func (x *daemonSetSync) manage() bool {
	s, ds := x.s, x.ds
	var nodesNeeding []string
	var toDelete []*corev1.Pod
	for i := range s.nodes {
		n := &s.nodes[i]
		shouldRun, shouldContinue := x.shouldRun(n)
		daemonPods, exists := x.pods[n.Name]
		switch {
		case shouldRun && !exists:
			nodesNeeding = append(nodesNeeding, n.Name)
		case shouldContinue:
			var running []*corev1.Pod
			for _, p := range daemonPods {
				switch {
				case p.DeletionTimestamp != nil:
				case p.Status.Phase == corev1.PodFailed:
					s.event("DaemonSet", ds, controller.EventWarning, "FailedDaemonPod",
						"Found failed daemon pod %s/%s on node %s, will try to kill it", p.Namespace, p.Name, n.Name)
					toDelete = append(toDelete, p)
				case p.Status.Phase == corev1.PodSucceeded:
					s.event("DaemonSet", ds, controller.EventNormal, "SucceededDaemonPod",
						"Found succeeded daemon pod %s/%s on node %s, will try to delete it", p.Namespace, p.Name, n.Name)
					toDelete = append(toDelete, p)
				default:
					running = append(running, p)
				}
			}
			if !allowsSurge(ds) {
				if len(running) > 1 {
					podsByCreation(running)
					toDelete = append(toDelete, running[1:]...)
				}
				break
			}
			if len(running) <= 1 {
				if len(running) == 0 && shouldRun {
					nodesNeeding = append(nodesNeeding, n.Name)
				}
				break
			}
			var oldestNew, oldestOld *corev1.Pod
			podsByCreation(running)
			for _, p := range running {
				if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == x.hash {
					if oldestNew == nil {
						oldestNew = p
						continue
					}
				} else if oldestOld == nil {
					oldestOld = p
					continue
				}
				toDelete = append(toDelete, p)
			}
			if oldestNew != nil && oldestOld != nil {
				if !isPodReady(oldestOld) || isPodAvailable(oldestNew, ds.Spec.MinReadySeconds, s.now) {
					toDelete = append(toDelete, oldestOld)
				}
			}
		case !shouldContinue && exists:
			for _, p := range daemonPods {
				if p.DeletionTimestamp == nil {
					toDelete = append(toDelete, p)
				}
			}
		}
	}
	// Pods for nodes that no longer exist: Kubernetes' pod garbage
	// collector deletes them (and the controller the unscheduled ones).
	for _, name := range sortedStringKeysOf(x.pods) {
		if x.node(name) != nil {
			continue
		}
		for _, p := range x.pods[name] {
			if p.DeletionTimestamp == nil {
				toDelete = append(toDelete, p)
			}
		}
	}
	return x.syncNodes(toDelete, nodesNeeding)
}

// syncNodes creates a daemon pod on each node and deletes pods.
func (x *daemonSetSync) syncNodes(toDelete []*corev1.Pod, nodes []string) bool {
	s, ds := x.s, x.ds
	template := *ds.Spec.Template.DeepCopy()
	addDaemonPodTolerations(&template.Spec)
	template.Labels = withKey(template.Labels, appsv1.DefaultDaemonSetUniqueLabelKey, x.hash)
	if gen, ok := ds.Annotations[appsv1.DeprecatedTemplateGeneration]; ok {
		template.Labels[templateGenerationLabel] = gen
	}
	prefix := ds.Name + "-"
	for _, node := range nodes {
		t := *template.DeepCopy()
		t.Spec.Affinity = replaceNodeNameAffinity(t.Spec.Affinity, node)
		// Kubernetes leaves binding to the scheduler, which the affinity
		// above pins to the node; clusterctl binds directly.
		t.Spec.NodeName = node
		name := s.generatePodName(ds.Namespace, prefix)
		s.put(s.newPod(&t, typeDaemonSet, ds, name, prefix))
		s.event("DaemonSet", ds, controller.EventNormal, "SuccessfulCreate", "Created pod: %s", name)
	}
	deleted := 0
	for _, p := range toDelete {
		if s.deleted("Pod", p) {
			continue
		}
		s.remove("Pod", p)
		s.event("DaemonSet", ds, controller.EventNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		deleted++
	}
	return len(nodes) > 0 || deleted > 0
}

// findUpdatedPodsOnNode returns the node's new and old pod; ok is false
// if there are several of either.
func (x *daemonSetSync) findUpdatedPodsOnNode(pods []*corev1.Pod) (newPod, oldPod *corev1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if x.isUpdated(p) {
			if newPod != nil {
				return nil, nil, false
			}
			newPod = p
		} else {
			if oldPod != nil {
				return nil, nil, false
			}
			oldPod = p
		}
	}
	return newPod, oldPod, true
}

// rollingUpdate replaces old daemon pods within maxUnavailable, or with
// maxSurge by starting the new pod first.
func (x *daemonSetSync) rollingUpdate() {
	s, ds := x.s, x.ds
	nodeToPods := map[string][]*corev1.Pod{}
	for k, v := range x.pods {
		nodeToPods[k] = v
	}
	desired := 0
	for i := range s.nodes {
		if run, _ := x.shouldRun(&s.nodes[i]); run {
			desired++
			if _, ok := nodeToPods[s.nodes[i].Name]; !ok {
				nodeToPods[s.nodes[i].Name] = nil
			}
		}
	}
	maxUnavailable := unavailableCount(ds, desired)
	maxSurge := surgeCount(ds, desired)
	if desired > 0 && maxUnavailable == 0 && maxSurge == 0 {
		maxUnavailable = 1
	}
	minReady := ds.Spec.MinReadySeconds
	nodeNames := sortedStringKeysOf(nodeToPods)

	if maxSurge == 0 {
		numUnavailable := 0
		var allowedReplacement, candidates []*corev1.Pod
		for _, name := range nodeNames {
			newPod, oldPod, ok := x.findUpdatedPodsOnNode(nodeToPods[name])
			if !ok {
				numUnavailable++
				continue
			}
			switch {
			case oldPod == nil && newPod == nil, oldPod != nil && newPod != nil:
				numUnavailable++
			case newPod != nil:
				if !isPodAvailable(newPod, minReady, s.now) {
					numUnavailable++
				}
			default:
				switch {
				case !isPodAvailable(oldPod, minReady, s.now):
					allowedReplacement = append(allowedReplacement, oldPod)
				case numUnavailable >= maxUnavailable:
				default:
					candidates = append(candidates, oldPod)
				}
			}
		}
		remaining := max(maxUnavailable-numUnavailable, 0)
		remaining = min(remaining, len(candidates))
		x.syncNodes(append(allowedReplacement, candidates[:remaining]...), nil)
		return
	}

	var oldPodsToDelete, shouldNotRunPodsToDelete []*corev1.Pod
	var candidateNewNodes, allowedNewNodes []string
	numSurge, numAvailable := 0, 0
	for _, name := range nodeNames {
		newPod, oldPod, ok := x.findUpdatedPodsOnNode(nodeToPods[name])
		if !ok {
			numSurge++
			continue
		}
		if oldPod != nil {
			if isPodAvailable(oldPod, minReady, s.now) {
				numAvailable++
			}
		} else if newPod != nil && isPodAvailable(newPod, minReady, s.now) {
			numAvailable++
		}
		switch {
		case oldPod == nil:
		case newPod == nil:
			n := x.node(name)
			shouldRun := false
			if n != nil {
				shouldRun, _ = x.shouldRun(n)
			}
			switch {
			case !isPodAvailable(oldPod, minReady, s.now):
				if !shouldRun {
					oldPodsToDelete = append(oldPodsToDelete, oldPod)
					continue
				}
				allowedNewNodes = append(allowedNewNodes, name)
			default:
				if !shouldRun {
					shouldNotRunPodsToDelete = append(shouldNotRunPodsToDelete, oldPod)
					continue
				}
				if numSurge >= maxSurge {
					continue
				}
				candidateNewNodes = append(candidateNewNodes, name)
			}
		default:
			if !isPodAvailable(newPod, minReady, s.now) {
				numSurge++
				continue
			}
			oldPodsToDelete = append(oldPodsToDelete, oldPod)
		}
	}
	remaining := max(maxSurge-numSurge, 0)
	if deletable := numAvailable - desired; deletable > 0 {
		deletable = min(deletable, len(shouldNotRunPodsToDelete))
		oldPodsToDelete = append(oldPodsToDelete, shouldNotRunPodsToDelete[:deletable]...)
	}
	remaining = min(remaining, len(candidateNewNodes))
	x.syncNodes(oldPodsToDelete, append(allowedNewNodes, candidateNewNodes[:remaining]...))
}

// updateStatus counts, per node that should run a daemon pod, whether it
// has one, ready, available and updated; and the pods on nodes that should
// not run one.
func (x *daemonSetSync) updateStatus(observed bool) {
	s, ds := x.s, x.ds
	var desired, current, misscheduled, ready, updated, available int32
	for i := range s.nodes {
		n := &s.nodes[i]
		shouldRun, _ := x.shouldRun(n)
		pods := x.pods[n.Name]
		scheduled := len(pods) > 0
		if !shouldRun {
			if scheduled {
				misscheduled++
			}
			continue
		}
		desired++
		if !scheduled {
			continue
		}
		current++
		pods = append([]*corev1.Pod(nil), pods...)
		podsByCreation(pods)
		p := pods[0]
		if isPodReady(p) {
			ready++
			if isPodAvailable(p, ds.Spec.MinReadySeconds, s.now) {
				available++
			}
		}
		if x.isUpdated(p) {
			updated++
		}
	}
	st := &ds.Status
	if observed {
		st.ObservedGeneration = ds.Generation
	}
	st.DesiredNumberScheduled = desired
	st.CurrentNumberScheduled = current
	st.NumberMisscheduled = misscheduled
	st.NumberReady = ready
	st.UpdatedNumberScheduled = updated
	st.NumberAvailable = available
	st.NumberUnavailable = desired - available
}

// constructHistory finds the ControllerRevision of the current template
// (creating it, or renumbering it after a rollback) and the old ones.
func (x *daemonSetSync) constructHistory() (cur *appsv1.ControllerRevision, old []*appsv1.ControllerRevision, err error) {
	s, ds := x.s, x.ds
	patch, err := templatePatch(&ds.Spec.Template)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot daemon set %s: %w", ds.Name, err)
	}
	all := func(*appsv1.ControllerRevision) bool { return true }
	match := func(r *appsv1.ControllerRevision) bool { return x.sel.Matches(labels.Set(r.Labels)) }
	histories := claim(s, "ControllerRevision", typeDaemonSet, ds, all, match,
		s.revsByOwner[ownerKeyOf("DaemonSet", ds)], s.orphanRevs[ds.Namespace], s.currentRevision)
	var current []*appsv1.ControllerRevision
	for _, h := range histories {
		if _, ok := h.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]; !ok {
			c := h.DeepCopy()
			c.Labels = withKey(c.Labels, appsv1.DefaultDaemonSetUniqueLabelKey, c.Name)
			s.put(c)
			h = c
		}
		if bytes.Equal(h.Data.Raw, patch) {
			current = append(current, h)
		} else {
			old = append(old, h)
		}
	}
	next := maxControllerRevision(old) + 1
	switch len(current) {
	case 0:
		cur = x.snapshot(patch, next)
		if cur == nil {
			return nil, old, nil
		}
	default:
		cur = x.dedupCurHistories(current)
		if cur.Revision < next {
			c := cur.DeepCopy()
			c.Revision = next
			s.put(c)
			cur = c
		}
	}
	return cur, old, nil
}

func (x *daemonSetSync) snapshot(patch []byte, revision int64) *appsv1.ControllerRevision {
	s, ds := x.s, x.ds
	hash := ComputeHash(&ds.Spec.Template, ds.Status.CollisionCount)
	name := ds.Name + "-" + hash
	if existing, ok := s.revisions[nsName{ds.Namespace, name}]; ok {
		if bytes.Equal(existing.Data.Raw, patch) {
			return existing
		}
		// A name collision with another revision: bump collisionCount and
		// try again on the next pass.
		if ds.Status.CollisionCount == nil {
			ds.Status.CollisionCount = int32Ptr(0)
		}
		*ds.Status.CollisionCount++
		return nil
	}
	cr := &appsv1.ControllerRevision{ObjectMeta: s.newMeta("ControllerRevision", ds.Namespace, name)}
	cr.Labels = withKey(ds.Spec.Template.Labels, appsv1.DefaultDaemonSetUniqueLabelKey, hash)
	cr.Annotations = copyStringMap(ds.Annotations)
	cr.OwnerReferences = []metav1.OwnerReference{newControllerRef(typeDaemonSet, ds)}
	cr.Data.Raw = patch
	cr.Revision = revision
	s.put(cr)
	return cr
}

// dedupCurHistories keeps the current revision with the highest number,
// moves pods labelled with the others' hashes to it and deletes the others.
func (x *daemonSetSync) dedupCurHistories(current []*appsv1.ControllerRevision) *appsv1.ControllerRevision {
	if len(current) == 1 {
		return current[0]
	}
	keep := current[0]
	for _, h := range current[1:] {
		if h.Revision > keep.Revision || (h.Revision == keep.Revision && h.Name < keep.Name) {
			keep = h
		}
	}
	keepHash := keep.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
	for _, h := range current {
		if h == keep {
			continue
		}
		dupHash := h.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
		for _, p := range x.allPods {
			cur, ok := x.s.pods[keyOf(p)]
			if !ok || cur.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] != dupHash {
				continue
			}
			c := cur.DeepCopy()
			c.Labels = withKey(c.Labels, appsv1.DefaultDaemonSetUniqueLabelKey, keepHash)
			x.s.put(c)
		}
		x.s.remove("ControllerRevision", h)
	}
	return keep
}

// cleanupHistory deletes the oldest old revisions beyond
// revisionHistoryLimit that no pod runs.
func (x *daemonSetSync) cleanupHistory(old []*appsv1.ControllerRevision) {
	toKill := len(old) - int(*x.ds.Spec.RevisionHistoryLimit)
	if toKill <= 0 {
		return
	}
	live := map[string]bool{}
	for _, p := range x.allPods {
		if h := p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]; h != "" {
			live[h] = true
		}
	}
	old = append([]*appsv1.ControllerRevision(nil), old...)
	sortRevisions(old)
	for _, h := range old {
		if toKill <= 0 {
			break
		}
		if live[h.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] {
			continue
		}
		x.s.remove("ControllerRevision", h)
		toKill--
	}
}

func maxControllerRevision(rs []*appsv1.ControllerRevision) int64 {
	var m int64
	for _, r := range rs {
		m = max(m, r.Revision)
	}
	return m
}

// sortRevisions orders revisions by number, then creation, then name.
func sortRevisions(rs []*appsv1.ControllerRevision) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Revision == rs[j].Revision {
			if rs[i].CreationTimestamp.Equal(&rs[j].CreationTimestamp) {
				return rs[i].Name < rs[j].Name
			}
			return rs[i].CreationTimestamp.Before(&rs[j].CreationTimestamp)
		}
		return rs[i].Revision < rs[j].Revision
	})
}

func sortedStringKeysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
