package sched

import (
	"errors"
	"fmt"
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
)

// Rejection reasons of PodTopologySpread, in kube-scheduler's words.
const (
	ReasonTopologySpread             = "node(s) didn't match pod topology spread constraints"
	ReasonTopologySpreadMissingLabel = ReasonTopologySpread + " (missing required label)"
)

// spreadConstraint is a parsed TopologySpreadConstraint with Kubernetes'
// defaults applied.
type spreadConstraint struct {
	maxSkew            int32
	topologyKey        string
	selector           klabels.Selector // labels.Nothing() when there is none
	minDomains         int32            // 1 when unset
	nodeAffinityPolicy corev1.NodeInclusionPolicy
	nodeTaintsPolicy   corev1.NodeInclusionPolicy
}

// newSpreadConstraint checks and parses a constraint of pod p, with the
// API server's validation rules (clusterctl has no API server to apply
// them). matchLabelKeys are merged into the label selector.
func newSpreadConstraint(p *corev1.Pod, c *corev1.TopologySpreadConstraint) (spreadConstraint, error) {
	switch {
	case c.MaxSkew <= 0:
		return spreadConstraint{}, errors.New("maxSkew must be greater than zero")
	case c.TopologyKey == "":
		return spreadConstraint{}, errors.New("topologyKey must not be empty")
	case c.WhenUnsatisfiable != corev1.DoNotSchedule && c.WhenUnsatisfiable != corev1.ScheduleAnyway:
		return spreadConstraint{}, fmt.Errorf("whenUnsatisfiable must be DoNotSchedule or ScheduleAnyway, not %q", c.WhenUnsatisfiable)
	case c.MinDomains != nil && *c.MinDomains <= 0:
		return spreadConstraint{}, errors.New("minDomains must be greater than zero")
	case c.MinDomains != nil && c.WhenUnsatisfiable != corev1.DoNotSchedule:
		return spreadConstraint{}, errors.New("minDomains may only be set with whenUnsatisfiable DoNotSchedule")
	}
	sc := spreadConstraint{maxSkew: c.MaxSkew, topologyKey: c.TopologyKey, minDomains: 1,
		nodeAffinityPolicy: corev1.NodeInclusionPolicyHonor, nodeTaintsPolicy: corev1.NodeInclusionPolicyIgnore}
	if c.MinDomains != nil {
		sc.minDomains = *c.MinDomains
	}
	for _, pol := range []struct {
		name string
		in   *corev1.NodeInclusionPolicy
		out  *corev1.NodeInclusionPolicy
	}{{"nodeAffinityPolicy", c.NodeAffinityPolicy, &sc.nodeAffinityPolicy}, {"nodeTaintsPolicy", c.NodeTaintsPolicy, &sc.nodeTaintsPolicy}} {
		if pol.in == nil {
			continue
		}
		if *pol.in != corev1.NodeInclusionPolicyHonor && *pol.in != corev1.NodeInclusionPolicyIgnore {
			return spreadConstraint{}, fmt.Errorf("%s must be Honor or Ignore, not %q", pol.name, *pol.in)
		}
		*pol.out = *pol.in
	}
	sel := c.LabelSelector
	if sel != nil && len(c.MatchLabelKeys) > 0 {
		sel = sel.DeepCopy()
		for _, k := range c.MatchLabelKeys {
			if v, ok := p.Labels[k]; ok {
				sel.MatchExpressions = append(sel.MatchExpressions,
					metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpIn, Values: []string{v}})
			}
		}
	}
	var err error
	if sc.selector, err = metav1.LabelSelectorAsSelector(sel); err != nil {
		return spreadConstraint{}, fmt.Errorf("parse labelSelector: %w", err)
	}
	return sc, nil
}

// parseSpread parses the pod's topology spread constraints.
func (pi *PodInfo) parseSpread() {
	for i := range pi.Pod.Spec.TopologySpreadConstraints {
		c := &pi.Pod.Spec.TopologySpreadConstraints[i]
		sc, err := newSpreadConstraint(pi.Pod, c)
		if err != nil {
			pi.spreadErrs = append(pi.spreadErrs, fmt.Sprintf("spec.topologySpreadConstraints[%d]: %v", i, err))
			continue
		}
		if c.WhenUnsatisfiable == corev1.DoNotSchedule {
			pi.hardSpread = append(pi.hardSpread, sc)
		} else {
			pi.softSpread = append(pi.softSpread, sc)
		}
	}
}

// includes reports whether node n counts toward the constraint of pod p:
// with nodeAffinityPolicy Honor (the default) it must match the pod's
// nodeSelector and required node affinity; with nodeTaintsPolicy Honor
// (default Ignore) the pod must tolerate its NoSchedule and NoExecute
// taints, the implied lifecycle taints included.
func (c *spreadConstraint) includes(p *PodInfo, n *Node) bool {
	if c.nodeAffinityPolicy == corev1.NodeInclusionPolicyHonor && !matchesNodeAffinity(p, n) {
		return false
	}
	if c.nodeTaintsPolicy == corev1.NodeInclusionPolicyHonor && hasUntoleratedTaint(p, n) {
		return false
	}
	return true
}

// matchesNodeAffinity reports whether node n matches the pod's nodeSelector
// and required node affinity (kube's GetRequiredNodeAffinity(pod).Match).
func matchesNodeAffinity(p *PodInfo, n *Node) bool {
	return matchesNodeSelector(p, n) && (p.required == nil || p.required.matches(n))
}

// hasUntoleratedTaint reports whether node n has a NoSchedule or NoExecute
// taint, or an implied one (see impliedTaints), that the pod does not
// tolerate.
func hasUntoleratedTaint(p *PodInfo, n *Node) bool {
	tols := p.Pod.Spec.Tolerations
	for i := range n.Taints {
		t := &n.Taints[i]
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !toleratedBy(tols, t) {
			return true
		}
	}
	for _, t := range impliedTaints(n, corev1.TaintEffectNoSchedule) {
		if !toleratedBy(tols, &t) {
			return true
		}
	}
	return false
}

// impliedTaints are the taints Kubernetes' node controllers would put on
// the node for its state, with the given effect: node.kubernetes.io/
// unschedulable (NoSchedule only) when cordoned, and node.kubernetes.io/
// unreachable or not-ready when it is. clusterctl keeps the state in Node
// instead.
func impliedTaints(n *Node, effect corev1.TaintEffect) []corev1.Taint {
	var out []corev1.Taint
	if n.Unschedulable && effect == corev1.TaintEffectNoSchedule {
		out = append(out, corev1.Taint{Key: TaintNodeUnschedulable, Effect: effect})
	}
	switch readiness(n) {
	case ReasonNodeUnreachable:
		out = append(out, corev1.Taint{Key: TaintNodeUnreachable, Effect: effect})
	case ReasonNotReady:
		out = append(out, corev1.Taint{Key: TaintNodeNotReady, Effect: effect})
	}
	return out
}

// hasTopologyKeys reports whether node n has every constraint's key.
func hasTopologyKeys(n *Node, cs []spreadConstraint) bool {
	for i := range cs {
		if _, ok := n.Labels[cs[i].topologyKey]; !ok {
			return false
		}
	}
	return true
}

// countMatching counts the pods in namespace ns that the selector matches,
// leaving out pods being deleted; an empty selector counts none, as in
// kube-scheduler.
func countMatching(pods []*PodInfo, sel klabels.Selector, ns string) int {
	if sel.Empty() {
		return 0
	}
	n := 0
	for _, p := range pods {
		if p.Pod.DeletionTimestamp == nil && p.Pod.Namespace == ns && sel.Matches(klabels.Set(p.Pod.Labels)) {
			n++
		}
	}
	return n
}

// PodTopologySpread rejects nodes where placing the pod would make a
// DoNotSchedule constraint's skew (matching pods in the node's domain, plus
// the pod if it matches, minus the fewest in any domain, or 0 when there
// are fewer domains than minDomains) exceed maxSkew, and scores nodes by
// fewer matching pods in their domains for ScheduleAnyway constraints.
// Domains are the values of the topology key on the nodes that have every
// key of the pod's constraints and pass its node inclusion policies. There
// are no system default constraints.
type PodTopologySpread struct{}

func (PodTopologySpread) Name() string { return "PodTopologySpread" }

// spreadFilterState is, per DoNotSchedule constraint, the matching pods
// per domain and the global minimum.
type spreadFilterState struct {
	counts   []map[string]int
	minMatch []int
}

// PreFilterCluster counts the matching pods per domain over every node; it
// skips pods without DoNotSchedule constraints. A pod with an invalid
// constraint is rejected.
func (pl PodTopologySpread) PreFilterCluster(p *PodInfo, cluster *Snapshot) (bool, string) {
	if len(p.spreadErrs) > 0 {
		return false, "invalid " + strings.Join(p.spreadErrs, "; ")
	}
	if len(p.hardSpread) == 0 {
		return true, ""
	}
	p.writeState(pl.Name(), spreadFilterStateOf(p, cluster.Nodes))
	return false, ""
}

func spreadFilterStateOf(p *PodInfo, nodes []*NodeInfo) *spreadFilterState {
	cs := p.hardSpread
	st := &spreadFilterState{counts: make([]map[string]int, len(cs)), minMatch: make([]int, len(cs))}
	for i := range cs {
		st.counts[i] = map[string]int{}
	}
	for _, ni := range nodes {
		if !hasTopologyKeys(ni.Node, cs) {
			continue
		}
		for i := range cs {
			if c := &cs[i]; c.includes(p, ni.Node) {
				st.counts[i][ni.Node.Labels[c.topologyKey]] += countMatching(ni.PodInfos, c.selector, p.Pod.Namespace)
			}
		}
	}
	for i := range cs {
		m := math.MaxInt32
		for _, n := range st.counts[i] {
			m = min(m, n)
		}
		if len(st.counts[i]) < int(cs[i].minDomains) {
			m = 0
		}
		st.minMatch[i] = m
	}
	return st
}

func (pl PodTopologySpread) Filter(p *PodInfo, n *NodeInfo) []string {
	if len(p.hardSpread) == 0 {
		return nil
	}
	st, ok := p.State[pl.Name()].(*spreadFilterState)
	if !ok { // PreFilterCluster did not run: the node is all there is
		st = spreadFilterStateOf(p, []*NodeInfo{n})
	}
	podLabels := klabels.Set(p.Pod.Labels)
	for i := range p.hardSpread {
		c := &p.hardSpread[i]
		value, ok := n.Node.Labels[c.topologyKey]
		if !ok {
			return []string{ReasonTopologySpreadMissingLabel}
		}
		self := 0
		if c.selector.Matches(podLabels) {
			self = 1
		}
		if st.counts[i][value]+self-st.minMatch[i] > int(c.maxSkew) {
			return []string{ReasonTopologySpread}
		}
	}
	return nil
}

// spreadScoreState is, per ScheduleAnyway constraint, the matching pods per
// domain of the feasible nodes (per node for kubernetes.io/hostname, counted
// in Score) and the weight of a pod, log(domains + 2); ignored are the
// feasible nodes missing a topology key.
type spreadScoreState struct {
	ignored map[*NodeInfo]bool
	counts  []map[string]int64
	weights []float64
}

// PreScoreCluster counts the matching pods in the domains of the feasible
// nodes, over every node. False (skip) without ScheduleAnyway constraints.
func (pl PodTopologySpread) PreScoreCluster(p *PodInfo, cluster *Snapshot, feasible []*NodeInfo) bool {
	if len(p.softSpread) == 0 {
		return false
	}
	p.writeState(pl.Name()+"/score", spreadScoreStateOf(p, cluster.Nodes, feasible))
	return true
}

func spreadScoreStateOf(p *PodInfo, nodes, feasible []*NodeInfo) *spreadScoreState {
	cs := p.softSpread
	st := &spreadScoreState{ignored: map[*NodeInfo]bool{}, counts: make([]map[string]int64, len(cs)), weights: make([]float64, len(cs))}
	for i := range cs {
		st.counts[i] = map[string]int64{}
	}
	for _, ni := range feasible {
		if !hasTopologyKeys(ni.Node, cs) {
			st.ignored[ni] = true
			continue
		}
		for i := range cs {
			if cs[i].topologyKey != corev1.LabelHostname {
				st.counts[i][ni.Node.Labels[cs[i].topologyKey]] = 0
			}
		}
	}
	for i := range cs {
		size := len(st.counts[i])
		if cs[i].topologyKey == corev1.LabelHostname {
			size = len(feasible) - len(st.ignored)
		}
		st.weights[i] = math.Log(float64(size + 2))
	}
	for _, ni := range nodes {
		if !hasTopologyKeys(ni.Node, cs) {
			continue
		}
		for i := range cs {
			c := &cs[i]
			value := ni.Node.Labels[c.topologyKey]
			if _, ok := st.counts[i][value]; !ok || !c.includes(p, ni.Node) {
				continue
			}
			st.counts[i][value] += int64(countMatching(ni.PodInfos, c.selector, p.Pod.Namespace))
		}
	}
	return st
}

// Score is, summed over the constraints, the matching pods in the node's
// domain times the constraint's weight, plus maxSkew-1; -1 for a node
// missing a topology key. NormalizeScores turns fewer into higher.
func (pl PodTopologySpread) Score(p *PodInfo, n *NodeInfo) int64 {
	st, ok := p.State[pl.Name()+"/score"].(*spreadScoreState)
	if !ok { // PreScoreCluster did not run: the node is all there is
		st = spreadScoreStateOf(p, []*NodeInfo{n}, []*NodeInfo{n})
	}
	if st.ignored[n] {
		return -1
	}
	var score float64
	for i := range p.softSpread {
		c := &p.softSpread[i]
		value, ok := n.Node.Labels[c.topologyKey]
		if !ok {
			continue
		}
		var count int64
		if c.topologyKey == corev1.LabelHostname {
			count = int64(countMatching(n.PodInfos, c.selector, p.Pod.Namespace))
		} else {
			count = st.counts[i][value]
		}
		score += float64(count)*st.weights[i] + float64(c.maxSkew-1)
	}
	return int64(math.Round(score))
}

// NormalizeScores maps each score s to 100 * (max + min - s) / max over the
// nodes that were scored (all 100 when max is 0); nodes missing a
// topology key (score -1) get 0.
func (PodTopologySpread) NormalizeScores(scores []int64) {
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, s := range scores {
		if s >= 0 {
			lo, hi = min(lo, s), max(hi, s)
		}
	}
	for i, s := range scores {
		switch {
		case s < 0:
			scores[i] = 0
		case hi == 0:
			scores[i] = MaxNodeScore
		default:
			scores[i] = MaxNodeScore * (hi + lo - s) / hi
		}
	}
}
