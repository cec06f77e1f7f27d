package sched

import (
	"fmt"
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Rejection reasons, in kube-scheduler's words where it has them.
const (
	ReasonUnschedulable      = "node(s) were unschedulable"
	ReasonNotReady           = "node(s) were not ready"
	ReasonNodeUnreachable    = "node(s) were unreachable"
	ReasonNodeNotFound       = "node(s) did not exist"
	ReasonNodeName           = "node(s) didn't match the requested node name"
	ReasonAffinity           = "node(s) didn't match Pod's node affinity/selector"
	ReasonPorts              = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods        = "Too many pods"
	ReasonInsufficientCPU    = "Insufficient cpu"
	ReasonInsufficientMemory = "Insufficient memory"
)

// Well-known taints the node lifecycle controller would put on nodes; a pod
// tolerating them may be placed despite the matching condition.
const (
	TaintNodeUnschedulable = "node.kubernetes.io/unschedulable"
	TaintNodeNotReady      = "node.kubernetes.io/not-ready"
	TaintNodeUnreachable   = "node.kubernetes.io/unreachable"
)

// --- PreEnqueue and PreFilter ---

// SchedulingGates keeps pods with scheduling gates out of scheduling.
type SchedulingGates struct{}

func (SchedulingGates) Name() string { return "SchedulingGates" }

func (SchedulingGates) PreEnqueue(p *PodInfo) string {
	gates := p.Pod.Spec.SchedulingGates
	if len(gates) == 0 {
		return ""
	}
	names := make([]string, len(gates))
	for i, g := range gates {
		names[i] = g.Name
	}
	return "scheduling is blocked due to non-empty scheduling gates: " + strings.Join(names, ", ")
}

// Unsupported rejects pods that ask for scheduling features clusterctl does
// not implement: placing them while ignoring the request would break it.
type Unsupported struct{}

func (Unsupported) Name() string { return "Unsupported" }

func (Unsupported) PreFilter(p *PodInfo) string {
	s := &p.Pod.Spec
	var fields []string
	if len(s.ResourceClaims) > 0 {
		fields = append(fields, "spec.resourceClaims")
	}
	if s.SchedulingGroup != nil {
		fields = append(fields, "spec.schedulingGroup")
	}
	var msgs []string
	if len(fields) > 0 {
		msgs = append(msgs, "pod uses "+strings.Join(fields, ", ")+", which clusterctl's scheduler does not support")
	}
	if s.SchedulerName != "" && s.SchedulerName != corev1.DefaultSchedulerName {
		msgs = append(msgs, fmt.Sprintf("pod asks for scheduler %q; clusterctl only implements %s", s.SchedulerName, corev1.DefaultSchedulerName))
	}
	return strings.Join(msgs, "; ")
}

// --- Filters ---

// NodeUnschedulable rejects cordoned nodes unless the pod tolerates the
// node.kubernetes.io/unschedulable:NoSchedule taint.
type NodeUnschedulable struct{}

func (NodeUnschedulable) Name() string { return "NodeUnschedulable" }

func (NodeUnschedulable) Filter(p *PodInfo, n *NodeInfo) []string {
	if schedulable(p, n.Node) {
		return nil
	}
	return []string{ReasonUnschedulable}
}

// schedulable: the node is not cordoned or the pod tolerates it.
func schedulable(p *PodInfo, n *Node) bool {
	if !n.Unschedulable {
		return true
	}
	taint := corev1.Taint{Key: TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}
	return toleratedBy(p.Pod.Spec.Tolerations, &taint)
}

// NodeReady rejects nodes that are not ready or unreachable, unless the pod
// tolerates the matching node.kubernetes.io/not-ready or
// node.kubernetes.io/unreachable NoSchedule taint, as in Kubernetes.
type NodeReady struct{}

func (NodeReady) Name() string { return "NodeReady" }

func (NodeReady) Filter(p *PodInfo, n *NodeInfo) []string {
	if readyFor(p, n.Node) {
		return nil
	}
	return []string{readiness(n.Node)}
}

// readyFor: the node is ready, or the pod tolerates what it is.
func readyFor(p *PodInfo, n *Node) bool {
	reason := readiness(n)
	if reason == "" {
		return true
	}
	key := TaintNodeNotReady
	if reason == ReasonNodeUnreachable {
		key = TaintNodeUnreachable
	}
	taint := corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule}
	return toleratedBy(p.Pod.Spec.Tolerations, &taint)
}

// readiness returns why a node is not ready, or "".
func readiness(n *Node) string {
	switch {
	case n.Unreachable:
		return ReasonNodeUnreachable
	case !n.Ready:
		return ReasonNotReady
	}
	return ""
}

// NodeName rejects every node but the one the pod names in spec.nodeName.
// (Schedule treats such pods as bound; the plugin is there for frameworks
// that filter them.)
type NodeName struct{}

func (NodeName) Name() string { return "NodeName" }

func (NodeName) Filter(p *PodInfo, n *NodeInfo) []string {
	if name := p.Pod.Spec.NodeName; name != "" && name != n.Node.Name {
		return []string{ReasonNodeName}
	}
	return nil
}

// TaintToleration rejects nodes with a NoSchedule or NoExecute taint the
// pod does not tolerate (the first one, in the node's order, is named), and
// scores nodes by how few PreferNoSchedule taints the pod does not tolerate.
type TaintToleration struct{}

func (TaintToleration) Name() string { return "TaintToleration" }

func (TaintToleration) Filter(p *PodInfo, n *NodeInfo) []string {
	if t := untoleratedTaint(p, n.Node); t != nil {
		return []string{"node(s) had untolerated taint {" + t.Key + ": " + t.Value + "}"}
	}
	return nil
}

// untoleratedTaint returns the node's first NoSchedule or NoExecute taint
// the pod does not tolerate, or nil.
func untoleratedTaint(p *PodInfo, n *Node) *corev1.Taint {
	for i := range n.Taints {
		t := &n.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !toleratedBy(p.Pod.Spec.Tolerations, t) {
			return t
		}
	}
	return nil
}

// Score counts the PreferNoSchedule taints not tolerated by a toleration with
// effect PreferNoSchedule or none; NormalizeScores turns fewer into higher.
func (TaintToleration) Score(p *PodInfo, n *NodeInfo) int64 {
	var count int64
	for i := range n.Node.Taints {
		t := &n.Node.Taints[i]
		if t.Effect != corev1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := false
		for j := range p.Pod.Spec.Tolerations {
			tol := &p.Pod.Spec.Tolerations[j]
			if (tol.Effect == "" || tol.Effect == corev1.TaintEffectPreferNoSchedule) && tolerates(tol, t) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			count++
		}
	}
	return count
}

func (TaintToleration) NormalizeScores(scores []int64) { normalize(scores, true) }

// NodeSelector rejects nodes whose labels do not include every
// spec.nodeSelector pair. (kube-scheduler checks it in NodeAffinity, with
// the same reason.)
type NodeSelector struct{}

func (NodeSelector) Name() string { return "NodeSelector" }

func (NodeSelector) Filter(p *PodInfo, n *NodeInfo) []string {
	if !matchesNodeSelector(p, n.Node) {
		return []string{ReasonAffinity}
	}
	return nil
}

// matchesNodeSelector: the node has every spec.nodeSelector pair.
func matchesNodeSelector(p *PodInfo, n *Node) bool {
	for k, v := range p.Pod.Spec.NodeSelector {
		if got, ok := n.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// NodeAffinity rejects nodes that match none of the required
// nodeSelectorTerms (matchExpressions In, NotIn, Exists, DoesNotExist, Gt,
// Lt; matchFields metadata.name In, NotIn), and scores nodes by the summed
// weights of the preferred terms they match, normalized to 0..100.
type NodeAffinity struct{}

func (NodeAffinity) Name() string { return "NodeAffinity" }

func (NodeAffinity) Filter(p *PodInfo, n *NodeInfo) []string {
	if p.required != nil && !p.required.matches(n.Node) {
		return []string{ReasonAffinity}
	}
	return nil
}

func (NodeAffinity) PreScore(p *PodInfo) bool { return len(p.preferred) > 0 }

func (NodeAffinity) Score(p *PodInfo, n *NodeInfo) int64 {
	var sum int64
	for i := range p.preferred {
		if p.preferred[i].term.matches(n.Node) {
			sum += p.preferred[i].weight
		}
	}
	return sum
}

func (NodeAffinity) NormalizeScores(scores []int64) { normalize(scores, false) }

// NodePorts rejects nodes where a host port the pod asks for is taken: same
// protocol and port, and the same IP or either side binding 0.0.0.0.
type NodePorts struct{}

func (NodePorts) Name() string { return "NodePorts" }

func (NodePorts) Filter(p *PodInfo, n *NodeInfo) []string {
	for _, want := range p.HostPorts {
		for _, used := range n.UsedPorts {
			if want.Port == used.Port && want.Protocol == used.Protocol &&
				(want.IP == used.IP || want.IP == "0.0.0.0" || used.IP == "0.0.0.0") {
				return []string{ReasonPorts}
			}
		}
	}
	return nil
}

// NodeResourcesFit rejects nodes without room for the pod's effective
// requests (cpu, memory, other requested resources) or for one more pod.
// A resource the pod does not request is not checked, as in Kubernetes.
type NodeResourcesFit struct{}

func (NodeResourcesFit) Name() string { return "NodeResourcesFit" }

// fitsResources is NodeResourcesFit's Filter without reasons, for pods
// that request only cpu and memory.
func fitsResources(p *PodInfo, n *NodeInfo) bool {
	alloc := &n.Node.Allocatable
	r := &p.Requests
	return n.Pods+1 <= alloc.Pods &&
		(r.MilliCPU <= 0 || r.MilliCPU <= alloc.CPUMillis-n.Requested.MilliCPU) &&
		(r.Memory <= 0 || r.Memory <= alloc.MemoryBytes-n.Requested.Memory)
}

func (NodeResourcesFit) Filter(p *PodInfo, n *NodeInfo) []string {
	var reasons []string
	alloc := &n.Node.Allocatable
	if n.Pods+1 > alloc.Pods {
		reasons = append(reasons, ReasonTooManyPods)
	}
	r := &p.Requests
	if r.MilliCPU > 0 && r.MilliCPU > alloc.CPUMillis-n.Requested.MilliCPU {
		reasons = append(reasons, ReasonInsufficientCPU)
	}
	if r.Memory > 0 && r.Memory > alloc.MemoryBytes-n.Requested.Memory {
		reasons = append(reasons, ReasonInsufficientMemory)
	}
	for _, s := range r.Scalar { // nodes advertise none of these
		if s.Quantity > -n.Requested.scalar(s.Name) {
			reasons = append(reasons, "Insufficient "+string(s.Name))
		}
	}
	return reasons
}

// --- Scores ---

// LeastAllocated favours nodes with the most room left after placing the
// pod: for cpu and memory, (allocatable - requested) * 100 / allocatable,
// averaged (weights 1:1), counting requests with the non-zero defaults.
type LeastAllocated struct{}

func (LeastAllocated) Name() string { return "NodeResourcesLeastAllocated" }

func (LeastAllocated) Score(p *PodInfo, n *NodeInfo) int64 {
	var score, weights int64
	for _, r := range [2][2]int64{
		{n.NonZeroRequested.MilliCPU + p.NonZero.MilliCPU, n.Node.Allocatable.CPUMillis},
		{n.NonZeroRequested.Memory + p.NonZero.Memory, n.Node.Allocatable.MemoryBytes},
	} {
		requested, allocatable := r[0], r[1]
		if allocatable == 0 {
			continue
		}
		if requested <= allocatable {
			score += (allocatable - requested) * MaxNodeScore / allocatable
		}
		weights++
	}
	if weights == 0 {
		return 0
	}
	return score / weights
}

// BalancedAllocation favours nodes whose cpu and memory would be used in
// the same proportion after placing the pod: (1 - std of the two fractions)
// * 100, fractions capped at 1. Pods that request neither are not scored by
// it (kubernetes/kubernetes#129138).
type BalancedAllocation struct{}

func (BalancedAllocation) Name() string { return "NodeResourcesBalancedAllocation" }

func (BalancedAllocation) PreScore(p *PodInfo) bool {
	return p.Requests.MilliCPU != 0 || p.Requests.Memory != 0
}

func (BalancedAllocation) Score(p *PodInfo, n *NodeInfo) int64 {
	var fractions [2]float64
	k := 0
	for _, r := range [2][2]int64{
		{n.Requested.MilliCPU + p.Requests.MilliCPU, n.Node.Allocatable.CPUMillis},
		{n.Requested.Memory + p.Requests.Memory, n.Node.Allocatable.MemoryBytes},
	} {
		if r[1] == 0 {
			continue
		}
		fractions[k] = min(float64(r[0])/float64(r[1]), 1)
		k++
	}
	std := 0.0
	if k == 2 {
		std = math.Abs((fractions[0] - fractions[1]) / 2)
	}
	return int64((1 - std) * MaxNodeScore)
}

// normalize is kube-scheduler's DefaultNormalizeScore: scale so that the
// highest score becomes MaxNodeScore (all MaxNodeScore when reversed and all
// zero), reversed meaning lower raw scores are better.
func normalize(scores []int64, reverse bool) {
	var top int64
	for _, s := range scores {
		top = max(top, s)
	}
	if top == 0 {
		if reverse {
			for i := range scores {
				scores[i] = MaxNodeScore
			}
		}
		return
	}
	for i, s := range scores {
		s = MaxNodeScore * s / top
		if reverse {
			s = MaxNodeScore - s
		}
		scores[i] = s
	}
}
