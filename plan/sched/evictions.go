package sched

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// DefaultTolerationSeconds is how long a pod tolerates the NoExecute
// node.kubernetes.io/not-ready and node.kubernetes.io/unreachable taints
// when it has no toleration of its own for them: the API server's
// DefaultTolerationSeconds admission plugin adds such tolerations to every
// pod, and clusterctl has no API server to do it.
const DefaultTolerationSeconds = 300

// Eviction is a bound pod that a NoExecute taint drives off its node.
type Eviction struct {
	Pod   string // namespace/name
	Node  string
	Taint corev1.Taint
	// Reason says why, e.g. "untolerated NoExecute taint {dedicated: db}"
	// or "NoExecute taint {node.kubernetes.io/unreachable: } tolerated for
	// 5m0s, which has passed".
	Reason string
}

// Evictions lists the bound pods that Kubernetes' taint eviction controller
// would delete at time now: those on a node with a NoExecute taint they do
// not tolerate, or tolerate for tolerationSeconds that have run out since
// the taint's timeAdded (a taint without one counts as added now, so only
// tolerationSeconds of 0 or less have run out). A pod without a toleration
// for the NoExecute not-ready or unreachable taints tolerates them for
// DefaultTolerationSeconds.
//
// The node's taints are Node.Taints and the node lifecycle taints implied
// by Ready and Unreachable (node.kubernetes.io/not-ready or unreachable,
// NoExecute) unless Node.Taints has them already; callers that know since
// when a node is down should put those taints, with timeAdded, in
// Node.Taints.
//
// Pods not bound, bound to a node not in nodes, finished or already being
// deleted are left out. Each pod is listed once, for the first of its
// node's taints that evicts it (Node.Taints in order, then the implied
// ones); the list is sorted by pod key. Neither input is modified.
func Evictions(pods []*corev1.Pod, nodes []Node, now time.Time) []Eviction {
	return EvictionsAfter(pods, nodes, now, DefaultTolerationSeconds*time.Second)
}

// EvictionsAfter is Evictions with defaultToleration, rounded down to whole
// seconds, in place of DefaultTolerationSeconds: the cluster's pod eviction
// timeout.
func EvictionsAfter(pods []*corev1.Pod, nodes []Node, now time.Time, defaultToleration time.Duration) []Eviction {
	defaultSecs := int64(defaultToleration / time.Second)
	taints := make(map[string][]corev1.Taint, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		if _, dup := taints[n.Name]; dup {
			continue
		}
		var ts []corev1.Taint
		for _, t := range n.Taints {
			if t.Effect == corev1.TaintEffectNoExecute {
				ts = append(ts, t)
			}
		}
		for _, t := range impliedTaints(n, corev1.TaintEffectNoExecute) {
			if !slices.ContainsFunc(ts, func(x corev1.Taint) bool { return x.Key == t.Key }) {
				ts = append(ts, t)
			}
		}
		taints[n.Name] = ts
	}
	var out []Eviction
	for _, p := range pods {
		if p == nil || p.Spec.NodeName == "" || p.DeletionTimestamp != nil ||
			p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		tols := withDefaultTolerations(p.Spec.Tolerations, defaultSecs)
		for _, t := range taints[p.Spec.NodeName] {
			if reason := evicts(tols, &t, now); reason != "" {
				out = append(out, Eviction{Pod: p.Namespace + "/" + p.Name, Node: p.Spec.NodeName, Taint: t, Reason: reason})
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b Eviction) int { return cmp.Compare(a.Pod, b.Pod) })
	return out
}

// evicts says why a NoExecute taint evicts a pod with the tolerations at
// time now, or "" if it does not (yet). As Kubernetes' taint eviction
// controller, the first toleration that tolerates the taint decides.
func evicts(tols []corev1.Toleration, t *corev1.Taint, now time.Time) string {
	name := "NoExecute taint {" + t.Key + ": " + t.Value + "}"
	i := slices.IndexFunc(tols, func(tol corev1.Toleration) bool { return tolerates(&tol, t) })
	if i < 0 {
		return "untolerated " + name
	}
	secs := tols[i].TolerationSeconds
	if secs == nil {
		return ""
	}
	added := now
	if t.TimeAdded != nil {
		added = t.TimeAdded.Time
	}
	d := time.Duration(max(*secs, 0)) * time.Second
	if now.Before(added.Add(d)) {
		return ""
	}
	return fmt.Sprintf("%s tolerated for %s, which has passed", name, d)
}

// withDefaultTolerations adds the tolerations of the DefaultTolerationSeconds
// admission plugin, with its test: a toleration counts if its key is the
// taint's or empty and its effect NoExecute or empty.
func withDefaultTolerations(tols []corev1.Toleration, secs int64) []corev1.Toleration {
	out := tols
	for _, key := range []string{TaintNodeNotReady, TaintNodeUnreachable} {
		if slices.ContainsFunc(tols, func(t corev1.Toleration) bool {
			return (t.Key == key || t.Key == "") && (t.Effect == corev1.TaintEffectNoExecute || t.Effect == "")
		}) {
			continue
		}
		secs := secs
		out = append(slices.Clip(out), corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs})
	}
	return out
}
