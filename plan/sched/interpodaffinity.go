package sched

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
)

// Rejection reasons of InterPodAffinity, in kube-scheduler's words.
const (
	ReasonPodAffinity          = "node(s) didn't match pod affinity rules"
	ReasonPodAntiAffinity      = "node(s) didn't match pod anti-affinity rules"
	ReasonExistingAntiAffinity = "node(s) didn't satisfy existing pods anti-affinity rules"
)

// HardPodAffinityWeight is the score weight of an existing pod's required
// affinity term that the incoming pod matches (kube-scheduler's
// hardPodAffinityWeight, default 1).
const HardPodAffinityWeight = 1

// affinityTerm is a parsed PodAffinityTerm.
type affinityTerm struct {
	selector klabels.Selector // labels.Nothing() when there is none
	// namespaces are the namespaces named, or the pod's own when the term
	// names none and has no namespaceSelector.
	namespaces  []string
	nsSelector  klabels.Selector // nil when there is none: no namespace
	topologyKey string
}

type weightedAffinityTerm struct {
	affinityTerm
	weight int64
}

// newAffinityTerm parses a term of pod p. matchLabelKeys and
// mismatchLabelKeys are merged into the label selector, as the API server
// does when it creates a pod (clusterctl has none to do it).
func newAffinityTerm(p *corev1.Pod, t *corev1.PodAffinityTerm) (affinityTerm, error) {
	if t.TopologyKey == "" {
		return affinityTerm{}, errors.New("topologyKey must not be empty")
	}
	sel := t.LabelSelector
	if sel != nil && len(t.MatchLabelKeys)+len(t.MismatchLabelKeys) > 0 {
		sel = sel.DeepCopy()
		for _, k := range t.MatchLabelKeys {
			if v, ok := p.Labels[k]; ok {
				sel.MatchExpressions = append(sel.MatchExpressions,
					metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpIn, Values: []string{v}})
			}
		}
		for _, k := range t.MismatchLabelKeys {
			if v, ok := p.Labels[k]; ok {
				sel.MatchExpressions = append(sel.MatchExpressions,
					metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpNotIn, Values: []string{v}})
			}
		}
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return affinityTerm{}, fmt.Errorf("parse labelSelector: %w", err)
	}
	at := affinityTerm{selector: selector, namespaces: t.Namespaces, topologyKey: t.TopologyKey}
	if len(t.Namespaces) == 0 && t.NamespaceSelector == nil {
		at.namespaces = []string{p.Namespace}
	}
	if t.NamespaceSelector != nil {
		if at.nsSelector, err = metav1.LabelSelectorAsSelector(t.NamespaceSelector); err != nil {
			return affinityTerm{}, fmt.Errorf("parse namespaceSelector: %w", err)
		}
	}
	return at, nil
}

// matches reports whether pod p is in one of the term's namespaces and
// matches its label selector; cluster has the namespaces' labels.
func (t *affinityTerm) matches(p *PodInfo, cluster *Snapshot) bool {
	if !slices.Contains(t.namespaces, p.Pod.Namespace) &&
		(t.nsSelector == nil || !t.nsSelector.Matches(cluster.NamespaceLabels(p.Pod.Namespace))) {
		return false
	}
	return t.selector.Matches(klabels.Set(p.Pod.Labels))
}

// matchesAll reports whether pod p matches every term; no terms match
// nothing.
func matchesAll(terms []affinityTerm, p *PodInfo, cluster *Snapshot) bool {
	if len(terms) == 0 {
		return false
	}
	for i := range terms {
		if !terms[i].matches(p, cluster) {
			return false
		}
	}
	return true
}

// parseAffinity parses the pod's inter-pod affinity terms.
func (pi *PodInfo) parseAffinity() {
	a := pi.Pod.Spec.Affinity
	if a == nil {
		return
	}
	required := func(path string, terms []corev1.PodAffinityTerm) []affinityTerm {
		var out []affinityTerm
		for i := range terms {
			t, err := newAffinityTerm(pi.Pod, &terms[i])
			if err != nil {
				pi.affinityErrs = append(pi.affinityErrs, fmt.Sprintf("%s.requiredDuringSchedulingIgnoredDuringExecution[%d]: %v", path, i, err))
				continue
			}
			out = append(out, t)
		}
		return out
	}
	preferred := func(path string, terms []corev1.WeightedPodAffinityTerm) []weightedAffinityTerm {
		var out []weightedAffinityTerm
		for i := range terms {
			t, err := newAffinityTerm(pi.Pod, &terms[i].PodAffinityTerm)
			if err != nil {
				pi.affinityErrs = append(pi.affinityErrs, fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d].podAffinityTerm: %v", path, i, err))
				continue
			}
			if terms[i].Weight != 0 {
				out = append(out, weightedAffinityTerm{affinityTerm: t, weight: int64(terms[i].Weight)})
			}
		}
		return out
	}
	if pa := a.PodAffinity; pa != nil {
		pi.requiredAffinity = required("spec.affinity.podAffinity", pa.RequiredDuringSchedulingIgnoredDuringExecution)
		pi.preferredAffinity = preferred("spec.affinity.podAffinity", pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if pa := a.PodAntiAffinity; pa != nil {
		pi.requiredAntiAffinity = required("spec.affinity.podAntiAffinity", pa.RequiredDuringSchedulingIgnoredDuringExecution)
		pi.preferredAntiAffinity = preferred("spec.affinity.podAntiAffinity", pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
}

// hasPodAffinity reports whether the pod has any inter-pod affinity term.
func (pi *PodInfo) hasPodAffinity() bool {
	return len(pi.requiredAffinity)+len(pi.requiredAntiAffinity)+len(pi.preferredAffinity)+len(pi.preferredAntiAffinity) > 0
}

// topologyPair is a topology domain: a node label and its value.
type topologyPair struct {
	key, value string
}

// pairCounts counts matches per topology domain.
type pairCounts map[topologyPair]int64

// add counts v for the domain of node n under key, if n has that label.
func (m *pairCounts) add(n *Node, key string, v int64) {
	value, ok := n.Labels[key]
	if !ok {
		return
	}
	if *m == nil {
		*m = pairCounts{}
	}
	(*m)[topologyPair{key, value}] += v
}

// InterPodAffinity rejects nodes where the pod's required pod affinity or
// anti-affinity terms are not met, or where the pod would break an existing
// pod's required anti-affinity, and scores nodes by the preferred terms of
// the pod and of the existing pods (and the existing pods' required
// affinity terms, with HardPodAffinityWeight), normalized to 0..100.
type InterPodAffinity struct{}

func (InterPodAffinity) Name() string { return "InterPodAffinity" }

// affinityFilterState is what InterPodAffinity's Filter needs: per topology
// domain, the existing pods matching all the pod's required affinity terms,
// those matching its required anti-affinity terms, and those whose
// required anti-affinity terms the pod matches.
type affinityFilterState struct {
	affinity, antiAffinity, existingAntiAffinity pairCounts
	// selfMatch: the pod matches all its own required affinity terms.
	selfMatch bool
}

// PreFilterCluster counts, over every node, the pods that the pod's
// required terms select and the pods whose required anti-affinity selects
// the pod; it skips the pod when there are none of either. A pod with an
// invalid term is rejected.
func (pl InterPodAffinity) PreFilterCluster(p *PodInfo, cluster *Snapshot) (bool, string) {
	if len(p.affinityErrs) > 0 {
		return false, "invalid " + strings.Join(p.affinityErrs, "; ")
	}
	own := len(p.requiredAffinity)+len(p.requiredAntiAffinity) > 0
	if !own && cluster.withRequiredAntiAffinity == 0 {
		return true, ""
	}
	st := affinityFilterStateOf(p, cluster)
	if !own && len(st.existingAntiAffinity) == 0 {
		return true, ""
	}
	p.writeState(pl.Name(), st)
	return false, ""
}

func affinityFilterStateOf(p *PodInfo, cluster *Snapshot) *affinityFilterState {
	st := &affinityFilterState{}
	for _, ni := range cluster.Nodes {
		for _, ex := range ni.PodsWithRequiredAntiAffinity {
			for i := range ex.requiredAntiAffinity {
				if t := &ex.requiredAntiAffinity[i]; t.matches(p, cluster) {
					st.existingAntiAffinity.add(ni.Node, t.topologyKey, 1)
				}
			}
		}
	}
	if len(p.requiredAffinity) == 0 && len(p.requiredAntiAffinity) == 0 {
		return st
	}
	st.selfMatch = matchesAll(p.requiredAffinity, p, cluster)
	for _, ni := range cluster.Nodes {
		for _, ex := range ni.PodInfos {
			if matchesAll(p.requiredAffinity, ex, cluster) {
				for i := range p.requiredAffinity {
					st.affinity.add(ni.Node, p.requiredAffinity[i].topologyKey, 1)
				}
			}
			for i := range p.requiredAntiAffinity {
				if t := &p.requiredAntiAffinity[i]; t.matches(ex, cluster) {
					st.antiAffinity.add(ni.Node, t.topologyKey, 1)
				}
			}
		}
	}
	return st
}

func (pl InterPodAffinity) Filter(p *PodInfo, n *NodeInfo) []string {
	st, ok := p.State[pl.Name()].(*affinityFilterState)
	if !ok { // PreFilterCluster did not run: the node is all there is
		st = affinityFilterStateOf(p, NewSnapshot([]*NodeInfo{n}, nil))
	}
	switch {
	case !st.satisfiesAffinity(p, n.Node):
		return []string{ReasonPodAffinity}
	case !st.satisfiesAntiAffinity(p, n.Node):
		return []string{ReasonPodAntiAffinity}
	case !st.satisfiesExistingAntiAffinity(n.Node):
		return []string{ReasonExistingAntiAffinity}
	}
	return nil
}

// satisfiesAffinity: the node has every topology key of the pod's required
// affinity terms and, in each of its domains, a pod matching all of them.
// The first pod of a group with affinity to itself may go anywhere with
// those keys, when no pod matches yet and it matches its own terms.
func (st *affinityFilterState) satisfiesAffinity(p *PodInfo, n *Node) bool {
	podsExist := true
	for i := range p.requiredAffinity {
		key := p.requiredAffinity[i].topologyKey
		value, ok := n.Labels[key]
		if !ok {
			return false
		}
		if st.affinity[topologyPair{key, value}] <= 0 {
			podsExist = false
		}
	}
	if podsExist {
		return true
	}
	return len(st.affinity) == 0 && st.selfMatch
}

// satisfiesAntiAffinity: no domain of the node holds a pod that one of the
// pod's required anti-affinity terms selects.
func (st *affinityFilterState) satisfiesAntiAffinity(p *PodInfo, n *Node) bool {
	if len(st.antiAffinity) == 0 {
		return true
	}
	for i := range p.requiredAntiAffinity {
		key := p.requiredAntiAffinity[i].topologyKey
		if value, ok := n.Labels[key]; ok && st.antiAffinity[topologyPair{key, value}] > 0 {
			return false
		}
	}
	return true
}

// satisfiesExistingAntiAffinity: no domain of the node holds a pod whose
// required anti-affinity selects the pod.
func (st *affinityFilterState) satisfiesExistingAntiAffinity(n *Node) bool {
	if len(st.existingAntiAffinity) > len(n.Labels) {
		for k, v := range n.Labels {
			if st.existingAntiAffinity[topologyPair{k, v}] > 0 {
				return false
			}
		}
		return true
	}
	for tp, count := range st.existingAntiAffinity {
		if value, ok := n.Labels[tp.key]; ok && value == tp.value && count > 0 {
			return false
		}
	}
	return true
}

// affinityScoreState is the summed weights per topology key and value.
type affinityScoreState map[string]map[string]int64

func (s *affinityScoreState) add(n *Node, key string, weight int64) {
	value, ok := n.Labels[key]
	if !ok {
		return
	}
	if *s == nil {
		*s = affinityScoreState{}
	}
	m := (*s)[key]
	if m == nil {
		m = map[string]int64{}
		(*s)[key] = m
	}
	m[value] += weight
}

// PreScoreCluster sums, per topology domain, the weights of the terms that
// select: the pod's preferred terms (anti-affinity negative) matching the
// existing pods, and the existing pods' required affinity
// (HardPodAffinityWeight) and preferred terms matching the pod. Without
// preferred terms of its own, only existing pods with affinity terms are
// looked at. False (skip) when nothing matched.
func (pl InterPodAffinity) PreScoreCluster(p *PodInfo, cluster *Snapshot, _ []*NodeInfo) bool {
	st := affinityScoreStateOf(p, cluster)
	if len(st) == 0 {
		return false
	}
	p.writeState(pl.Name()+"/score", st)
	return true
}

func affinityScoreStateOf(p *PodInfo, cluster *Snapshot) affinityScoreState {
	var st affinityScoreState
	own := len(p.preferredAffinity)+len(p.preferredAntiAffinity) > 0
	if !own && cluster.withAffinity == 0 {
		return nil
	}
	for _, ni := range cluster.Nodes {
		n := ni.Node
		if len(n.Labels) == 0 {
			continue
		}
		pods := ni.PodsWithAffinity
		if own {
			pods = ni.PodInfos
		}
		for _, ex := range pods {
			for i := range p.preferredAffinity {
				if t := &p.preferredAffinity[i]; t.matches(ex, cluster) {
					st.add(n, t.topologyKey, t.weight)
				}
			}
			for i := range p.preferredAntiAffinity {
				if t := &p.preferredAntiAffinity[i]; t.matches(ex, cluster) {
					st.add(n, t.topologyKey, -t.weight)
				}
			}
			for i := range ex.requiredAffinity {
				if t := &ex.requiredAffinity[i]; t.matches(p, cluster) {
					st.add(n, t.topologyKey, HardPodAffinityWeight)
				}
			}
			for i := range ex.preferredAffinity {
				if t := &ex.preferredAffinity[i]; t.matches(p, cluster) {
					st.add(n, t.topologyKey, t.weight)
				}
			}
			for i := range ex.preferredAntiAffinity {
				if t := &ex.preferredAntiAffinity[i]; t.matches(p, cluster) {
					st.add(n, t.topologyKey, -t.weight)
				}
			}
		}
	}
	return st
}

// Score is the sum of the node's domains' weights; it may be negative.
func (pl InterPodAffinity) Score(p *PodInfo, n *NodeInfo) int64 {
	st, ok := p.State[pl.Name()+"/score"].(affinityScoreState)
	if !ok { // PreScoreCluster did not run: the node is all there is
		st = affinityScoreStateOf(p, NewSnapshot([]*NodeInfo{n}, nil))
	}
	var score int64
	for key, values := range st {
		if v, ok := n.Node.Labels[key]; ok {
			score += values[v]
		}
	}
	return score
}

// NormalizeScores maps the scores linearly from min..max to 0..100 (all 0
// when they are equal).
func (InterPodAffinity) NormalizeScores(scores []int64) {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range scores {
		lo, hi = min(lo, s), max(hi, s)
	}
	for i, s := range scores {
		if hi > lo {
			scores[i] = int64(float64(MaxNodeScore) * float64(s-lo) / float64(hi-lo))
		} else {
			scores[i] = 0
		}
	}
}
