package sched

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	klabels "k8s.io/apimachinery/pkg/labels"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Node is a host as the scheduler sees it.
type Node struct {
	Name string
	// Labels should include the well-known labels kubelet sets:
	// kubernetes.io/hostname, kubernetes.io/os and kubernetes.io/arch.
	Labels        map[string]string
	Taints        []corev1.Taint
	Unschedulable bool // cordoned
	Ready         bool
	// Unreachable means the host did not answer; it implies not ready.
	Unreachable bool
	Allocatable nodeapi.Resources // cpu millis, memory bytes, pods
}

// Result is the outcome of Schedule.
type Result struct {
	// Bindings maps the key ("namespace/name") of each pod that was unbound
	// and now fits to its node.
	Bindings map[string]string
	// Unschedulable maps the key of each pod that could not be placed, or is
	// bound to a node that is missing or not ready, to why.
	Unschedulable map[string]Unschedulable
}

// Unschedulable says why a pod could not be placed.
type Unschedulable struct {
	// Message is kube-scheduler's summary, e.g. "0/3 nodes are available:
	// 1 node(s) had untolerated taint {dedicated: db}, 2 Insufficient cpu."
	Message string
	// Reasons maps each rejected node to its reasons, comma-separated.
	Reasons map[string]string
}

// Plugin is a named scheduling plugin.
type Plugin interface {
	Name() string
}

// PreEnqueuePlugin decides whether a pod may enter scheduling at all; a
// non-empty message keeps it out and is reported as is.
type PreEnqueuePlugin interface {
	Plugin
	PreEnqueue(pod *PodInfo) string
}

// PreFilterPlugin rejects a pod for every node at once; a non-empty message
// is reported as "0/N nodes are available: <message>.".
type PreFilterPlugin interface {
	Plugin
	PreFilter(pod *PodInfo) string
}

// FilterPlugin decides whether a node can run a pod: nil when it can, else
// the reasons it cannot, in kube-scheduler's wording (each reason is counted
// separately in the message).
type FilterPlugin interface {
	Plugin
	Filter(pod *PodInfo, node *NodeInfo) []string
}

// ScorePlugin ranks a node that passed the filters for a pod; higher is
// better, 0 to MaxNodeScore after normalization.
type ScorePlugin interface {
	Plugin
	Score(pod *PodInfo, node *NodeInfo) int64
}

// PreScorer is implemented by score plugins that do not apply to every pod:
// false skips the plugin for this pod (every node scores 0).
type PreScorer interface {
	PreScore(pod *PodInfo) bool
}

// ScoreNormalizer is implemented by score plugins whose raw scores are
// rescaled, over the feasible nodes, to 0..MaxNodeScore.
type ScoreNormalizer interface {
	NormalizeScores(scores []int64)
}

// MaxNodeScore is the highest score a plugin gives a node.
const MaxNodeScore = 100

// WeightedScore is a score plugin and the weight of its scores in the total.
type WeightedScore struct {
	Plugin ScorePlugin
	Weight int64
}

// ClusterPreFilter is implemented by filter plugins that look beyond the
// node at hand (inter-pod affinity, topology spread). Before the pod's
// filters run, PreFilterCluster sees the whole cluster and keeps what the
// plugin's Filter needs in pod.State. skip means there is nothing to check:
// the plugin's Filter is not called for this pod (kube-scheduler's Skip
// status). A non-empty reject message rejects the pod for every node, as
// PreFilter's does.
type ClusterPreFilter interface {
	PreFilterCluster(pod *PodInfo, cluster *Snapshot) (skip bool, reject string)
}

// ClusterPreScorer is implemented by score plugins that look beyond the
// node at hand. Once the feasible nodes are known, PreScoreCluster keeps
// what the plugin's Score needs in pod.State; false skips the plugin for
// this pod, as PreScorer's does (which it replaces).
type ClusterPreScorer interface {
	PreScoreCluster(pod *PodInfo, cluster *Snapshot, feasible []*NodeInfo) bool
}

// CycleState is what plugins computed for the pod being placed, kept for
// the rest of its scheduling cycle by plugin name, as kube-scheduler's
// CycleState.
type CycleState map[string]any

// Snapshot is the cluster as one pod's scheduling cycle sees it.
type Snapshot struct {
	// Nodes are every node, sorted by name, each with the pods bound or
	// placed on it so far.
	Nodes      []*NodeInfo
	namespaces map[string]klabels.Set
	// withAffinity and withRequiredAntiAffinity count the pods in the
	// nodes' PodsWithAffinity and PodsWithRequiredAntiAffinity, as of
	// NewSnapshot and the placements since.
	withAffinity, withRequiredAntiAffinity int
}

// NewSnapshot returns a snapshot of nodes (sorted by name) and the labels
// of the namespaces (see Cluster.Namespaces).
func NewSnapshot(nodes []*NodeInfo, namespaces map[string]map[string]string) *Snapshot {
	s := &Snapshot{Nodes: nodes, namespaces: make(map[string]klabels.Set, len(namespaces))}
	for ns, l := range namespaces {
		s.namespaces[ns] = namespaceLabels(ns, l)
	}
	for _, ni := range nodes {
		s.withAffinity += len(ni.PodsWithAffinity)
		s.withRequiredAntiAffinity += len(ni.PodsWithRequiredAntiAffinity)
	}
	return s
}

// add places a pod on one of the snapshot's nodes.
func (s *Snapshot) add(ni *NodeInfo, p *PodInfo) {
	ni.Add(p)
	if p.hasPodAffinity() {
		s.withAffinity++
	}
	if len(p.requiredAntiAffinity) > 0 {
		s.withRequiredAntiAffinity++
	}
}

// NamespaceLabels returns a namespace's labels, including
// kubernetes.io/metadata.name.
func (s *Snapshot) NamespaceLabels(ns string) klabels.Set {
	if s != nil {
		if l, ok := s.namespaces[ns]; ok {
			return l
		}
	}
	return namespaceLabels(ns, nil)
}

// namespaceLabels is a namespace's labels with the one the API server
// always sets.
func namespaceLabels(ns string, l map[string]string) klabels.Set {
	out := make(klabels.Set, len(l)+1)
	maps.Copy(out, l)
	out[corev1.LabelMetadataName] = ns
	return out
}

// Framework is an ordered set of plugins. Filters run in order and stop at
// the first that rejects a node, as in kube-scheduler. Filters and scores
// that are also ClusterPreFilters or ClusterPreScorers get those called,
// in the same order, before the nodes are filtered or scored.
type Framework struct {
	PreEnqueue []PreEnqueuePlugin
	PreFilters []PreFilterPlugin
	Filters    []FilterPlugin
	Scores     []WeightedScore
}

// Default returns kube-scheduler's default plugins in its order and with
// its default weights, restricted to those clusterctl implements, plus
// NodeReady.
func Default() *Framework {
	return &Framework{
		PreEnqueue: []PreEnqueuePlugin{SchedulingGates{}},
		PreFilters: []PreFilterPlugin{Unsupported{}},
		Filters: []FilterPlugin{NodeUnschedulable{}, NodeName{}, NodeReady{}, TaintToleration{},
			NodeSelector{}, NodeAffinity{}, NodePorts{}, NodeResourcesFit{}, PodTopologySpread{}, InterPodAffinity{}},
		Scores: []WeightedScore{
			{TaintToleration{}, 3},
			{NodeAffinity{}, 2},
			{LeastAllocated{}, 1},
			{PodTopologySpread{}, 2},
			{InterPodAffinity{}, 2},
			{BalancedAllocation{}, 1},
		},
	}
}

// Cluster is what ScheduleCluster works on.
type Cluster struct {
	Pods  []*corev1.Pod // as for Schedule
	Nodes []Node        // as for Schedule
	// Namespaces maps namespace names to their labels, for the
	// namespaceSelector of pod (anti-)affinity terms. Every namespace also
	// has kubernetes.io/metadata.name set to its name, as the API server
	// does; a namespace missing here has only that label.
	Namespaces map[string]map[string]string
}

// Schedule places the unbound pods with the default plugins; see
// (*Framework).Schedule.
func Schedule(pods []*corev1.Pod, nodes []Node) Result {
	return Default().Schedule(pods, nodes)
}

// ScheduleCluster is Schedule with the namespaces' labels.
func ScheduleCluster(c Cluster) Result {
	return Default().ScheduleCluster(c)
}

// Schedule places the unbound pods on nodes.
//
// Pods with spec.nodeName set are bound: they count toward their node's
// usage and are never moved; one bound to a node that does not exist or is
// not ready is reported in Unschedulable (and stays bound). Pods that have
// finished (phase Succeeded or Failed) count nowhere; unbound pods being
// deleted are not placed. The unbound pods are placed one at a time in order
// of creationTimestamp, then namespace/name, each placement updating the
// usage and the pods (for inter-pod affinity and topology spread) the next
// one sees.
//
// Node names must be unique (a duplicate is ignored). The result does not
// depend on the order of pods or nodes. Neither is modified.
//
// Namespaces have no labels but kubernetes.io/metadata.name; see
// ScheduleCluster.
func (f *Framework) Schedule(pods []*corev1.Pod, nodes []Node) Result {
	return f.ScheduleCluster(Cluster{Pods: pods, Nodes: nodes})
}

// ScheduleCluster is Schedule with the namespaces' labels.
func (f *Framework) ScheduleCluster(c Cluster) Result {
	pods, nodes := c.Pods, c.Nodes
	res := Result{Bindings: map[string]string{}, Unschedulable: map[string]Unschedulable{}}

	sorted := make([]*Node, 0, len(nodes))
	for i := range nodes {
		sorted = append(sorted, &nodes[i])
	}
	slices.SortStableFunc(sorted, func(a, b *Node) int { return cmp.Compare(a.Name, b.Name) })
	infos := make([]*NodeInfo, 0, len(sorted))
	byName := make(map[string]*NodeInfo, len(sorted))
	for _, n := range sorted {
		if _, dup := byName[n.Name]; dup {
			continue
		}
		ni := &NodeInfo{Node: n}
		infos = append(infos, ni)
		byName[n.Name] = ni
	}

	var pending []*PodInfo
	for _, p := range pods {
		if p == nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if p.Spec.NodeName == "" {
			if p.DeletionTimestamp == nil {
				pending = append(pending, NewPodInfo(p))
			}
			continue
		}
		pi := NewPodInfo(p)
		name := p.Spec.NodeName
		ni, ok := byName[name]
		if !ok {
			res.Unschedulable[pi.Key] = Unschedulable{
				Message: fmt.Sprintf("bound to node %s, which does not exist", name),
				Reasons: map[string]string{name: ReasonNodeNotFound},
			}
			continue
		}
		ni.Add(pi)
		if reason := readiness(ni.Node); reason != "" {
			what := "is not ready"
			if reason == ReasonNodeUnreachable {
				what = "is unreachable"
			}
			res.Unschedulable[pi.Key] = Unschedulable{
				Message: fmt.Sprintf("bound to node %s, which %s", name, what),
				Reasons: map[string]string{name: reason},
			}
		}
	}

	slices.SortFunc(pending, func(a, b *PodInfo) int {
		return cmp.Or(a.Pod.CreationTimestamp.Compare(b.Pod.CreationTimestamp.Time), cmp.Compare(a.Key, b.Key))
	})
	snapshot := NewSnapshot(infos, c.Namespaces)
	for _, p := range pods {
		if p != nil {
			if _, ok := snapshot.namespaces[p.Namespace]; !ok {
				snapshot.namespaces[p.Namespace] = namespaceLabels(p.Namespace, nil)
			}
		}
	}
	s := &cycle{f: f, nodes: infos, snapshot: snapshot, skip: make([]bool, len(f.Filters)),
		feasible: make([]int, 0, len(infos)), feasibleNodes: make([]*NodeInfo, 0, len(infos)),
		rejected: make([][]string, len(infos)), total: make([]int64, len(infos)), scores: make([]int64, len(infos))}
	var fast *fastPath
	if f.isDefault() && !generalPathOnly {
		fast = newFastPath(s)
	}
	for _, pi := range pending {
		var node *NodeInfo
		var why *Unschedulable
		i, class, ok := fast.schedule(pi)
		if ok {
			node = infos[i]
		} else {
			node, why = s.scheduleOne(pi)
		}
		if why != nil {
			res.Unschedulable[pi.Key] = *why
			continue
		}
		snapshot.add(node, pi)
		fast.placed(node, pi, class)
		res.Bindings[pi.Key] = node.Node.Name
	}
	return res
}

// generalPathOnly turns the fast path off, for tests that compare the two.
var generalPathOnly = false

// isDefault reports whether f has exactly Default's plugins and weights,
// which the fast path implements.
func (f *Framework) isDefault() bool {
	d := Default()
	return slices.Equal(f.PreEnqueue, d.PreEnqueue) && slices.Equal(f.PreFilters, d.PreFilters) &&
		slices.Equal(f.Filters, d.Filters) && slices.Equal(f.Scores, d.Scores)
}

// cycle holds one Schedule call's nodes and scratch space reused by every
// pod.
type cycle struct {
	f             *Framework
	nodes         []*NodeInfo // sorted by name
	snapshot      *Snapshot   // of nodes
	skip          []bool      // per filter, whether it is skipped for the pod being placed
	feasible      []int
	feasibleNodes []*NodeInfo
	rejected      [][]string // per node, the reasons of the pod being placed
	total         []int64
	scores        []int64
}

// scheduleOne picks the node for one pod, or says why there is none.
func (s *cycle) scheduleOne(pi *PodInfo) (*NodeInfo, *Unschedulable) {
	for _, pl := range s.f.PreEnqueue {
		if msg := pl.PreEnqueue(pi); msg != "" {
			return nil, &Unschedulable{Message: msg, Reasons: map[string]string{}}
		}
	}
	if len(s.nodes) == 0 {
		return nil, &Unschedulable{Message: "no nodes available to schedule pods", Reasons: map[string]string{}}
	}
	pi.State = nil
	for _, pl := range s.f.PreFilters {
		if msg := pl.PreFilter(pi); msg != "" {
			return nil, s.preFilterError(msg)
		}
	}
	for k, pl := range s.f.Filters {
		s.skip[k] = false
		if cp, ok := pl.(ClusterPreFilter); ok {
			skip, msg := cp.PreFilterCluster(pi, s.snapshot)
			if msg != "" {
				return nil, s.preFilterError(msg)
			}
			s.skip[k] = skip
		}
	}

	feasible := s.feasible[:0]
	for i, ni := range s.nodes {
		var reasons []string
		for k, pl := range s.f.Filters {
			if s.skip[k] {
				continue
			}
			if reasons = pl.Filter(pi, ni); len(reasons) > 0 {
				break
			}
		}
		s.rejected[i] = reasons
		if len(reasons) == 0 {
			feasible = append(feasible, i)
		}
	}
	s.feasible = feasible
	switch len(feasible) {
	case 0:
		return nil, fitError(s.nodes, s.rejected)
	case 1: // nothing to compare, as in kube-scheduler
		return s.nodes[feasible[0]], nil
	}

	total := s.total[:len(feasible)]
	clear(total)
	scores := s.scores[:len(feasible)]
	feasibleNodes := s.feasibleNodes[:0]
	for _, i := range feasible {
		feasibleNodes = append(feasibleNodes, s.nodes[i])
	}
	s.feasibleNodes = feasibleNodes
	for _, ws := range s.f.Scores {
		if cp, ok := ws.Plugin.(ClusterPreScorer); ok {
			if !cp.PreScoreCluster(pi, s.snapshot, feasibleNodes) {
				continue
			}
		} else if ps, ok := ws.Plugin.(PreScorer); ok && !ps.PreScore(pi) {
			continue
		}
		for j, i := range feasible {
			scores[j] = ws.Plugin.Score(pi, s.nodes[i])
		}
		if n, ok := ws.Plugin.(ScoreNormalizer); ok {
			n.NormalizeScores(scores)
		}
		for j := range scores {
			total[j] += scores[j] * ws.Weight
		}
	}
	best := 0
	for j := 1; j < len(total); j++ {
		if total[j] > total[best] { // ties keep the lower name
			best = j
		}
	}
	return s.nodes[feasible[best]], nil
}

// preFilterError rejects a pod for every node with one message.
func (s *cycle) preFilterError(msg string) *Unschedulable {
	reasons := make(map[string]string, len(s.nodes))
	for _, ni := range s.nodes {
		reasons[ni.Node.Name] = msg
	}
	return &Unschedulable{Message: fmt.Sprintf("0/%d nodes are available: %s.", len(s.nodes), msg), Reasons: reasons}
}

// fitError aggregates the nodes' reasons (rejected[i] for nodes[i]) like
// kube-scheduler's FitError: each reason counted over the nodes,
// "<count> <reason>" sorted as strings.
func fitError(nodes []*NodeInfo, rejected [][]string) *Unschedulable {
	numNodes := len(nodes)
	counts := map[string]int{}
	reasons := make(map[string]string, numNodes)
	for i, rs := range rejected {
		for _, r := range rs {
			counts[r]++
		}
		reasons[nodes[i].Node.Name] = strings.Join(rs, ", ")
	}
	parts := make([]string, 0, len(counts))
	for r, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	slices.Sort(parts)
	return &Unschedulable{
		Message: fmt.Sprintf("0/%d nodes are available: %s.", numNodes, strings.Join(parts, ", ")),
		Reasons: reasons,
	}
}
