package workloads

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Taints the node lifecycle controller puts on nodes, which Node expresses
// as fields.
const (
	taintNotReady           = "node.kubernetes.io/not-ready"
	taintUnreachable        = "node.kubernetes.io/unreachable"
	taintUnschedulable      = "node.kubernetes.io/unschedulable"
	taintDiskPressure       = "node.kubernetes.io/disk-pressure"
	taintMemoryPressure     = "node.kubernetes.io/memory-pressure"
	taintPIDPressure        = "node.kubernetes.io/pid-pressure"
	taintNetworkUnavailable = "node.kubernetes.io/network-unavailable"
)

// nodeTaints returns the node's taints plus the ones Kubernetes would add
// for its conditions: unschedulable:NoSchedule for a cordoned node and
// not-ready:NoSchedule and :NoExecute for a node that is not ready.
func nodeTaints(n *Node) []corev1.Taint {
	taints := append([]corev1.Taint(nil), n.Taints...)
	add := func(key string, effect corev1.TaintEffect) {
		for _, t := range taints {
			if t.Key == key && t.Effect == effect {
				return
			}
		}
		taints = append(taints, corev1.Taint{Key: key, Effect: effect})
	}
	if n.Unschedulable {
		add(taintUnschedulable, corev1.TaintEffectNoSchedule)
	}
	if !n.Ready {
		add(taintNotReady, corev1.TaintEffectNoSchedule)
		add(taintNotReady, corev1.TaintEffectNoExecute)
	}
	return taints
}

// addDaemonPodTolerations adds the tolerations every DaemonSet pod gets
// (util.AddOrUpdateDaemonPodTolerations): not-ready and unreachable
// NoExecute, so node trouble does not evict it; disk-, memory- and
// pid-pressure and unschedulable NoSchedule; network-unavailable for
// host-network pods.
func addDaemonPodTolerations(spec *corev1.PodSpec) {
	add := func(key string, effect corev1.TaintEffect) {
		tol := corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect}
		for i := range spec.Tolerations {
			if tol.MatchToleration(&spec.Tolerations[i]) {
				spec.Tolerations[i] = tol
				return
			}
		}
		spec.Tolerations = append(spec.Tolerations, tol)
	}
	add(taintNotReady, corev1.TaintEffectNoExecute)
	add(taintUnreachable, corev1.TaintEffectNoExecute)
	add(taintDiskPressure, corev1.TaintEffectNoSchedule)
	add(taintMemoryPressure, corev1.TaintEffectNoSchedule)
	add(taintPIDPressure, corev1.TaintEffectNoSchedule)
	add(taintUnschedulable, corev1.TaintEffectNoSchedule)
	if spec.HostNetwork {
		add(taintNetworkUnavailable, corev1.TaintEffectNoSchedule)
	}
}

// tolerates reports whether the toleration tolerates the taint. The Lt and
// Gt operators (alpha in Kubernetes, off by default) never match.
func tolerates(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "", corev1.TolerationOpEqual:
		return t.Value == taint.Value
	case corev1.TolerationOpExists:
		return true
	}
	return false
}

// hasUntoleratedTaint reports whether a taint selected by effect is not
// tolerated.
func hasUntoleratedTaint(taints []corev1.Taint, tolerations []corev1.Toleration, effect func(corev1.TaintEffect) bool) bool {
	for i := range taints {
		if !effect(taints[i].Effect) {
			continue
		}
		tolerated := false
		for j := range tolerations {
			if tolerates(&tolerations[j], &taints[i]) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			return true
		}
	}
	return false
}

// matchesNodeSelectorAndAffinity is nodeaffinity.GetRequiredNodeAffinity
// (pod).Match(node): spec.nodeSelector and the required node affinity.
func matchesNodeSelectorAndAffinity(spec *corev1.PodSpec, n *Node) bool {
	for k, v := range spec.NodeSelector {
		if lv, ok := n.Labels[k]; !ok || lv != v {
			return false
		}
	}
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	for _, term := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if termMatches(&term, n) {
			return true
		}
	}
	return false
}

// termMatches: all requirements of a term must hold; an empty or invalid
// term matches nothing.
func termMatches(t *corev1.NodeSelectorTerm, n *Node) bool {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return false
	}
	for _, r := range t.MatchExpressions {
		v, ok := n.Labels[r.Key]
		if !requirementMatches(r, v, ok, true) {
			return false
		}
	}
	for _, r := range t.MatchFields {
		if r.Key != metav1.ObjectNameField || (r.Operator != corev1.NodeSelectorOpIn && r.Operator != corev1.NodeSelectorOpNotIn) || len(r.Values) != 1 {
			return false
		}
		if !requirementMatches(r, n.Name, true, false) {
			return false
		}
	}
	return true
}

func requirementMatches(r corev1.NodeSelectorRequirement, value string, present, numeric bool) bool {
	in := func() bool {
		for _, v := range r.Values {
			if v == value {
				return true
			}
		}
		return false
	}
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return present && in()
	case corev1.NodeSelectorOpNotIn:
		return !present || !in()
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !numeric || !present || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(value, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// daemonPodSpec is the spec of the DaemonSet's pod for a node, as the
// controller's NewPod: the template's with the default tolerations.
func daemonPodSpec(ds *appsv1.DaemonSet) corev1.PodSpec {
	spec := *ds.Spec.Template.Spec.DeepCopy()
	addDaemonPodTolerations(&spec)
	return spec
}

// nodeShouldRunDaemonPod is the DaemonSet controller's predicate: whether a
// new daemon pod should be placed on the node, and whether a running one
// may stay (it tolerates every NoExecute taint).
func nodeShouldRunDaemonPod(n *Node, ds *appsv1.DaemonSet, spec *corev1.PodSpec) (shouldRun, shouldContinueRunning bool) {
	if ds.Spec.Template.Spec.NodeName != "" && ds.Spec.Template.Spec.NodeName != n.Name {
		return false, false
	}
	if !matchesNodeSelectorAndAffinity(spec, n) {
		return false, false
	}
	taints := nodeTaints(n)
	if hasUntoleratedTaint(taints, spec.Tolerations, func(e corev1.TaintEffect) bool {
		return e == corev1.TaintEffectNoSchedule || e == corev1.TaintEffectNoExecute
	}) {
		return false, !hasUntoleratedTaint(taints, spec.Tolerations, func(e corev1.TaintEffect) bool {
			return e == corev1.TaintEffectNoExecute
		})
	}
	return true, true
}

// replaceNodeNameAffinity pins a daemon pod to a node the way Kubernetes
// does (a required matchFields metadata.name term replacing the others).
func replaceNodeNameAffinity(a *corev1.Affinity, node string) *corev1.Affinity {
	sel := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
	}}}
	if a == nil {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: sel}}
	}
	if a.NodeAffinity == nil {
		a.NodeAffinity = &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: sel}
		return a
	}
	if a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = sel
		return a
	}
	a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = sel.NodeSelectorTerms
	return a
}

// targetNodeName is the node a daemon pod is for: spec.nodeName, or the
// node its metadata.name affinity pins it to.
func targetNodeName(p *corev1.Pod) (string, bool) {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName, true
	}
	a := p.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) < 1 {
		return "", false
	}
	for _, r := range terms[0].MatchFields {
		if r.Key == metav1.ObjectNameField && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 {
			return r.Values[0], true
		}
	}
	return "", false
}
