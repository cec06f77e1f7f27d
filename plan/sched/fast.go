package sched

import (
	"math"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
)

// The fast path places pods with the default framework in far less than
// a filter and score of every node per pod, with the same result.
//
// Pods are grouped into classes: pods whose scheduling-relevant fields
// (namespace, labels, requests, host ports, node selector, tolerations,
// node affinity, topology spread constraints) are equal, as the replicas
// of one ReplicaSet are. For a class, what each node's filters and scores
// depend on is either static during a Schedule call (labels, taints,
// readiness, the pod's terms) and computed once per class, or changes
// only when a pod is placed on that node (usage, pods there), and every
// placement is logged; a class brings its per-node state up to date by
// replaying the placements since it last looked.
//
//   - Tree classes (no topology spread): a node's total score is its own
//     LeastAllocated and BalancedAllocation plus TaintToleration and
//     NodeAffinity scores normalized by their highest raw score over the
//     feasible nodes. A segment tree over the nodes keeps the best
//     feasible node (highest total, lowest name on ties); a placement
//     updates one leaf. Feasibility only shrinks as nodes fill, so the
//     normalizing maxima only fall; when one does the tree is rebuilt.
//   - Spread classes: topology spread scores depend on counts over whole
//     domains and on the feasible set, so every node of the domains the
//     first DoNotSchedule constraint allows is looked at for every pod;
//     the matching pods per node (one index per label selector) and per
//     domain are kept up to date from the log instead of recounted.
//
// Pods that have or are selected by inter-pod affinity terms, request
// resources other than cpu and memory, or are rejected before filtering
// (gates, unsupported fields, invalid terms) take the general path, as does
// any pod for which no node is feasible (to build its reasons). The
// property tests check that both paths place random clusters identically.

// fastPath is the fast path of one ScheduleCluster call.
type fastPath struct {
	nodes   []*NodeInfo // sorted by name, as cycle.nodes
	index   map[*NodeInfo]int32
	cluster *Snapshot
	// log holds every placement of this call, in order; ver[i] is the
	// length of the log after the last placement on node i.
	log []placement
	ver []int32
	// bound are the pods bound before the call, as placements (built
	// when a selector index first needs them).
	bound      []placement
	boundBuilt bool
	initial    []int32 // pods per node before the call
	// groups are the pods' namespaces and labels, as selectors see them.
	groups   []labelGroup
	groupIDs map[string]int32
	// affinity holds the pods on nodes with inter-pod affinity terms, in
	// the order they were bound or placed.
	affinity  []*PodInfo
	classes   map[string]*podClass
	statics   map[string]*staticState
	hot       []*podClass   // classes holding per-node state, most recent last
	free      []*classState // evicted tree states, for their buffers
	domains   map[string]*domainIndex
	selectors map[selectorKey]*selectorIndex
	key       []byte // scratch for keys
	scratch   []int32
}

type placement struct {
	node  int32
	group int32
}

// labelGroup is what countMatching looks at in a pod.
type labelGroup struct {
	namespace string
	labels    klabels.Set
	deleting  bool
}

// hotClasses is how many classes keep their per-node state at a time
// (a variable for tests).
var hotClasses = 8

// podClass is a class of equivalent pods.
type podClass struct {
	rep    *PodInfo
	group  int32
	static *staticState
	// touched: an existing pod's inter-pod affinity term selects the
	// class; its pods take the general path from then on.
	touched    bool
	affChecked int // how much of fastPath.affinity was checked
	st         *classState
}

// staticState is what the filters and scores that do not depend on usage
// say about each node, shared by the classes whose pods have the same
// tolerations, node selector and node affinity.
type staticState struct {
	ok []bool
	// The raw TaintToleration and NodeAffinity scores, as ranks into
	// their sorted distinct values; nil when all are 0 (or NodeAffinity
	// does not score the pod).
	taint, aff *rawScores
}

type rawScores struct {
	values []int64 // distinct, ascending
	rank   []int32 // per node
}

func (r *rawScores) of(i int) int64 {
	if r == nil {
		return 0
	}
	return r.values[r.rank[i]]
}

func newRawScores(raw []int64) *rawScores {
	r := &rawScores{values: slices.Compact(slices.Sorted(slices.Values(raw))), rank: make([]int32, len(raw))}
	for i, v := range raw {
		k, _ := slices.BinarySearch(r.values, v)
		r.rank[i] = int32(k)
	}
	return r
}

// classState is a class's per-node state.
type classState struct {
	seen     int // placements replayed
	balanced bool
	// Tree classes.
	feasible   []bool
	cntT, cntA []int32 // feasible nodes per raw score rank
	topT, topA int     // rank of the highest raw score with a count, or -1
	vals       []int64 // total score per node; noScore when infeasible
	tree       []int32 // tree[1] is the best node; leaves from size
	size       int
	// norm is the normalized TaintToleration ×3 and NodeAffinity ×2 score
	// per pair of raw score ranks (taint rank × len(aff values) + aff
	// rank), for the current maxima.
	norm []int64

	spread *spreadState
}

// noScore marks an infeasible node.
const noScore = math.MinInt64

// newFastPath returns the fast path for s, whose snapshot has the nodes
// with the pods bound before the call.
func newFastPath(s *cycle) *fastPath {
	f := &fastPath{nodes: s.nodes, index: make(map[*NodeInfo]int32, len(s.nodes)), ver: make([]int32, len(s.nodes)),
		cluster: s.snapshot, groupIDs: map[string]int32{}, classes: map[string]*podClass{}, statics: map[string]*staticState{},
		domains: map[string]*domainIndex{}, selectors: map[selectorKey]*selectorIndex{}}
	for i, ni := range s.nodes {
		f.index[ni] = int32(i)
		f.initial = append(f.initial, int32(len(ni.PodInfos)))
		f.affinity = append(f.affinity, ni.PodsWithAffinity...)
	}
	return f
}

// placed records a placement made by either path.
func (f *fastPath) placed(ni *NodeInfo, p *PodInfo, c *podClass) {
	if f == nil {
		return
	}
	g := int32(-1)
	if c != nil {
		g = c.group
	} else {
		g = f.group(p.Pod)
	}
	i := f.index[ni]
	f.log = append(f.log, placement{node: i, group: g})
	f.ver[i] = int32(len(f.log))
	if p.hasPodAffinity() {
		f.affinity = append(f.affinity, p)
	}
}

// group returns the label group of a pod.
func (f *fastPath) group(p *corev1.Pod) int32 {
	b := f.key[:0]
	b = appendStr(b, p.Namespace)
	b = appendMap(b, p.Labels)
	if p.DeletionTimestamp != nil {
		b = append(b, 'D')
	}
	f.key = b
	if g, ok := f.groupIDs[string(b)]; ok {
		return g
	}
	g := int32(len(f.groups))
	f.groupIDs[string(b)] = g
	f.groups = append(f.groups, labelGroup{namespace: p.Namespace, labels: klabels.Set(p.Labels), deleting: p.DeletionTimestamp != nil})
	return g
}

// schedule returns the node for pi, or false to leave the pod to the
// general path; the class goes to placed.
func (f *fastPath) schedule(pi *PodInfo) (int, *podClass, bool) {
	if f == nil || len(f.nodes) == 0 {
		return 0, nil, false
	}
	staticKey, key, ok := f.classKey(pi)
	if !ok {
		return 0, nil, false
	}
	c := f.classes[key]
	if c == nil {
		c = &podClass{rep: pi, group: f.group(pi.Pod), static: f.statics[staticKey]}
		if c.static == nil {
			c.static = f.newStatic(pi)
			f.statics[staticKey] = c.static
		}
		f.classes[key] = c
	}
	if c.touched || f.touch(c) {
		return 0, nil, false
	}
	st := f.state(c, pi)
	var best int
	if st.spread != nil {
		best = f.scanSpread(c, st, pi)
	} else {
		best = f.bestInTree(c, st, pi)
	}
	return best, c, best >= 0
}

// touch checks the pods with inter-pod affinity placed since the last
// look: if any of their terms selects the class, it is marked touched.
func (f *fastPath) touch(c *podClass) bool {
	for ; c.affChecked < len(f.affinity); c.affChecked++ {
		ex := f.affinity[c.affChecked]
		for _, terms := range [][]affinityTerm{ex.requiredAffinity, ex.requiredAntiAffinity} {
			for i := range terms {
				if terms[i].matches(c.rep, f.cluster) {
					c.touched = true
				}
			}
		}
		for _, terms := range [][]weightedAffinityTerm{ex.preferredAffinity, ex.preferredAntiAffinity} {
			for i := range terms {
				if terms[i].matches(c.rep, f.cluster) {
					c.touched = true
				}
			}
		}
		if c.touched {
			if i := slices.Index(f.hot, c); i >= 0 {
				f.hot = slices.Delete(f.hot, i, i+1)
			}
			c.st = nil
			return true
		}
	}
	return false
}

// state returns the class's per-node state, built or brought up to date.
func (f *fastPath) state(c *podClass, pi *PodInfo) *classState {
	if c.st == nil {
		if len(f.hot) == hotClasses {
			if old := f.hot[0].st; old.spread == nil {
				f.free = append(f.free, old)
			}
			f.hot[0].st = nil
			f.hot = slices.Delete(f.hot, 0, 1)
		}
		c.st = f.newState(c, pi)
		f.hot = append(f.hot, c)
		return c.st
	}
	if i := slices.Index(f.hot, c); i >= 0 && i != len(f.hot)-1 {
		f.hot = append(slices.Delete(f.hot, i, i+1), c)
	}
	return c.st
}

func (f *fastPath) newStatic(pi *PodInfo) *staticState {
	n := len(f.nodes)
	ss := &staticState{ok: make([]bool, n)}
	var taint []int64
	for i, ni := range f.nodes {
		node := ni.Node
		ss.ok[i] = schedulable(pi, node) && readyFor(pi, node) && untoleratedTaint(pi, node) == nil &&
			matchesNodeSelector(pi, node) && (pi.required == nil || pi.required.matches(node))
		if raw := (TaintToleration{}).Score(pi, ni); raw != 0 {
			if taint == nil {
				taint = make([]int64, n)
			}
			taint[i] = raw
		}
	}
	if taint != nil {
		ss.taint = newRawScores(taint)
	}
	if (NodeAffinity{}).PreScore(pi) {
		aff := make([]int64, n)
		for i, ni := range f.nodes {
			aff[i] = NodeAffinity{}.Score(pi, ni)
		}
		ss.aff = newRawScores(aff)
	}
	return ss
}

func (f *fastPath) newState(c *podClass, pi *PodInfo) *classState {
	st := &classState{seen: len(f.log), balanced: BalancedAllocation{}.PreScore(pi)}
	if len(pi.hardSpread)+len(pi.softSpread) > 0 {
		st.spread = f.newSpreadState(pi)
		return st
	}
	if k := len(f.free); k > 0 { // reuse an evicted class's buffers
		old := f.free[k-1]
		f.free = f.free[:k-1]
		st.feasible, st.vals, st.tree, st.size = old.feasible, old.vals, old.tree, old.size
	} else {
		st.feasible = make([]bool, len(f.nodes))
	}
	if c.static.taint != nil {
		st.cntT = make([]int32, len(c.static.taint.values))
	}
	if c.static.aff != nil {
		st.cntA = make([]int32, len(c.static.aff.values))
	}
	f.buildTree(c, st, pi)
	return st
}

// --- Tree classes ---

// buildTree computes every node's feasibility and score and the tree.
func (f *fastPath) buildTree(c *podClass, st *classState, pi *PodInfo) {
	n := len(f.nodes)
	clear(st.cntT)
	clear(st.cntA)
	for i, ni := range f.nodes {
		st.feasible[i] = c.static.ok[i] && fitsDynamic(pi, ni)
		if st.feasible[i] {
			st.count(c.static, i, 1)
		}
	}
	st.topT, st.topA = topRank(st.cntT, len(st.cntT)-1), topRank(st.cntA, len(st.cntA)-1)
	st.norm = c.static.normalized(st.norm, topValue(c.static.taint, st.topT), topValue(c.static.aff, st.topA))
	if st.vals == nil {
		st.size = 1
		for st.size < n {
			st.size *= 2
		}
		st.vals = make([]int64, n)
		st.tree = make([]int32, 2*st.size)
	}
	for i := range st.size {
		st.tree[st.size+i] = -1
		if i < n {
			st.tree[st.size+i] = int32(i)
			st.vals[i] = st.score(c.static, f.nodes[i], pi, i)
		}
	}
	for k := st.size - 1; k >= 1; k-- {
		st.tree[k] = st.better(st.tree[2*k], st.tree[2*k+1])
	}
}

// count adds d to the counts of node i's raw scores.
func (st *classState) count(ss *staticState, i int, d int32) {
	if ss.taint != nil {
		st.cntT[ss.taint.rank[i]] += d
	}
	if ss.aff != nil {
		st.cntA[ss.aff.rank[i]] += d
	}
}

// topRank is the highest rank at or below from with a count, or -1.
func topRank(cnt []int32, from int) int {
	for from >= 0 && cnt[from] == 0 {
		from--
	}
	return from
}

// topValue is the normalizing maximum: the highest raw score of a
// feasible node, or 0 (normalize's floor).
func topValue(r *rawScores, rank int) int64 {
	if r == nil || rank < 0 {
		return 0
	}
	return max(r.values[rank], 0)
}

// score is node i's total score for the class, as scheduleOne adds it up
// (noScore when infeasible).
func (st *classState) score(ss *staticState, ni *NodeInfo, pi *PodInfo, i int) int64 {
	if !st.feasible[i] {
		return noScore
	}
	return st.norm[ss.pair(i)] + dynamicScore(pi, ni, st.balanced)
}

// pair is node i's index into normalized.
func (ss *staticState) pair(i int) int {
	var t, a int
	if ss.taint != nil {
		t = int(ss.taint.rank[i])
	}
	if ss.aff != nil {
		a = int(ss.aff.rank[i])
		t *= len(ss.aff.values)
	}
	return t + a
}

// normalized fills buf with TaintToleration ×3 plus NodeAffinity ×2,
// normalized by the highest raw scores of the feasible nodes, per pair of
// raw score ranks (see pair).
func (ss *staticState) normalized(buf []int64, topT, topA int64) []int64 {
	nt, na := 1, 1
	if ss.taint != nil {
		nt = len(ss.taint.values)
	}
	if ss.aff != nil {
		na = len(ss.aff.values)
	}
	buf = buf[:0]
	for t := range nt {
		score := int64(3 * MaxNodeScore) // reversed: fewer untolerated taints is better
		if topT != 0 {
			score = 3 * (MaxNodeScore - MaxNodeScore*ss.taint.values[t]/topT)
		}
		for a := range na {
			s := score
			if topA != 0 {
				s += 2 * (MaxNodeScore * ss.aff.values[a] / topA)
			}
			buf = append(buf, s)
		}
	}
	return buf
}

// dynamicScore is LeastAllocated and BalancedAllocation (when it scores
// the pod), both weight 1.
// It is the plugins' arithmetic unrolled for cpu and memory.
func dynamicScore(pi *PodInfo, ni *NodeInfo, balanced bool) int64 {
	alloc := &ni.Node.Allocatable
	var la, weights int64
	if a := alloc.CPUMillis; a != 0 {
		if r := ni.NonZeroRequested.MilliCPU + pi.NonZero.MilliCPU; r <= a {
			la += (a - r) * MaxNodeScore / a
		}
		weights++
	}
	if a := alloc.MemoryBytes; a != 0 {
		if r := ni.NonZeroRequested.Memory + pi.NonZero.Memory; r <= a {
			la += (a - r) * MaxNodeScore / a
		}
		weights++
	}
	if weights > 0 {
		la /= weights
	}
	if !balanced {
		return la
	}
	var fractions [2]float64
	k := 0
	if a := alloc.CPUMillis; a != 0 {
		fractions[k] = min(float64(ni.Requested.MilliCPU+pi.Requests.MilliCPU)/float64(a), 1)
		k++
	}
	if a := alloc.MemoryBytes; a != 0 {
		fractions[k] = min(float64(ni.Requested.Memory+pi.Requests.Memory)/float64(a), 1)
		k++
	}
	std := 0.0
	if k == 2 {
		std = math.Abs((fractions[0] - fractions[1]) / 2)
	}
	return la + int64((1-std)*MaxNodeScore)
}

// better returns the better of two nodes: higher score, then lower index.
func (st *classState) better(a, b int32) int32 {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	va, vb := st.vals[a], st.vals[b]
	if va > vb || va == vb && a < b {
		return a
	}
	return b
}

// bestInTree replays the placements since the class last looked and
// returns the best feasible node, or -1.
func (f *fastPath) bestInTree(c *podClass, st *classState, pi *PodInfo) int {
	if len(f.log)-st.seen > len(f.nodes)/4 {
		st.seen = len(f.log)
		f.buildTree(c, st, pi)
	} else {
		dirty := f.scratch[:0]
		for _, pl := range f.log[st.seen:] {
			dirty = append(dirty, pl.node)
		}
		st.seen = len(f.log)
		for _, i := range dirty {
			if st.feasible[i] && !fitsDynamic(pi, f.nodes[i]) {
				st.feasible[i] = false
				st.count(c.static, int(i), -1)
			}
		}
		f.scratch = dirty
		topT, topA := st.topT, st.topA
		if st.cntT != nil {
			st.topT = topRank(st.cntT, st.topT)
		}
		if st.cntA != nil {
			st.topA = topRank(st.cntA, st.topA)
		}
		if topValue(c.static.taint, st.topT) != topValue(c.static.taint, topT) || topValue(c.static.aff, st.topA) != topValue(c.static.aff, topA) {
			f.buildTree(c, st, pi)
		} else {
			for _, i := range dirty {
				st.vals[i] = st.score(c.static, f.nodes[i], pi, int(i))
				for k := (st.size + int(i)) / 2; k >= 1; k /= 2 {
					st.tree[k] = st.better(st.tree[2*k], st.tree[2*k+1])
				}
			}
		}
	}
	best := st.tree[1]
	if best < 0 || st.vals[best] == noScore {
		return -1
	}
	return int(best)
}

// fitsDynamic is NodeResourcesFit and NodePorts for a pod without scalar
// requests.
func fitsDynamic(pi *PodInfo, ni *NodeInfo) bool {
	return fitsResources(pi, ni) && (len(pi.HostPorts) == 0 || NodePorts{}.Filter(pi, ni) == nil)
}

// --- Spread classes ---

// domainIndex numbers the values of one node label: of[i] is node i's
// domain, -1 without the label.
type domainIndex struct {
	of      []int32
	n       int
	members [][]int32 // per domain, its nodes in order
}

func (f *fastPath) domainIndex(key string) *domainIndex {
	if d, ok := f.domains[key]; ok {
		return d
	}
	d := &domainIndex{of: make([]int32, len(f.nodes))}
	ids := map[string]int32{}
	for i, ni := range f.nodes {
		v, ok := ni.Node.Labels[key]
		if !ok {
			d.of[i] = -1
			continue
		}
		id, ok := ids[v]
		if !ok {
			id = int32(len(ids))
			ids[v] = id
		}
		d.of[i] = id
	}
	d.n = len(ids)
	d.members = make([][]int32, d.n)
	for i, id := range d.of {
		if id >= 0 {
			d.members[id] = append(d.members[id], int32(i))
		}
	}
	f.domains[key] = d
	return d
}

// selectorKey names the pods a spread constraint counts.
type selectorKey struct{ namespace, selector string }

// selectorIndex counts, per node, the pods countMatching counts.
type selectorIndex struct {
	namespace string
	selector  klabels.Selector
	cnt       []int64
	seen      int
	match     []int8 // per label group: 0 not yet known, 1 counted, 2 not
}

func (f *fastPath) selectorIndex(ns string, sel klabels.Selector) *selectorIndex {
	k := selectorKey{ns, sel.String()}
	if x, ok := f.selectors[k]; ok {
		f.syncSelector(x)
		return x
	}
	if !f.boundBuilt {
		f.boundBuilt = true
		for i, ni := range f.nodes {
			for _, p := range ni.PodInfos[:f.initial[i]] {
				f.bound = append(f.bound, placement{node: int32(i), group: f.group(p.Pod)})
			}
		}
	}
	x := &selectorIndex{namespace: ns, selector: sel, cnt: make([]int64, len(f.nodes))}
	if !sel.Empty() {
		for _, pl := range f.bound {
			if x.counts(f, pl.group) {
				x.cnt[pl.node]++
			}
		}
	}
	f.syncSelector(x)
	if k.selector != "" { // "" is both everything and nothing: not shared
		f.selectors[k] = x
	}
	return x
}

// counts reports whether countMatching counts the pods of a label group.
func (x *selectorIndex) counts(f *fastPath, g int32) bool {
	for int(g) >= len(x.match) {
		x.match = append(x.match, 0)
	}
	if x.match[g] == 0 {
		lg := &f.groups[g]
		x.match[g] = 2
		if !lg.deleting && lg.namespace == x.namespace && x.selector.Matches(lg.labels) {
			x.match[g] = 1
		}
	}
	return x.match[g] == 1
}

func (f *fastPath) syncSelector(x *selectorIndex) {
	if !x.selector.Empty() {
		for _, pl := range f.log[x.seen:] {
			if x.counts(f, pl.group) {
				x.cnt[pl.node]++
			}
		}
	}
	x.seen = len(f.log)
}

// spreadTerm is one constraint of a spread class.
type spreadTerm struct {
	c        *spreadConstraint
	sel      *selectorIndex
	dom      *domainIndex
	incl     []bool // c.includes(pod, node)
	hostname bool   // a ScheduleAnyway constraint on kubernetes.io/hostname
	self     int64  // a DoNotSchedule constraint's selector matches the pod
	// counts are the matching pods per domain over the nodes that count
	// (every topology key of the constraint's kind and included), kept up
	// to date from the log; present marks the domains of such nodes.
	counts  []int64
	present []bool
	// Scratch per pod.
	scored []bool // soft: the domain has a feasible node with every key
	min    int64
	weight float64
}

type spreadState struct {
	hard, soft []*spreadTerm
	// hardKeys and softKeys: the node has every hard (soft) topology key.
	hardKeys, softKeys []bool
	// Usage-dependent results per node, valid while ver matches the
	// node's fastPath.ver.
	ver     []int32
	fits    []bool
	dynamic []int64
	// Scratch per pod.
	cand    []int32
	ignored []bool
	raw     []int64
	norm    []int64
}

func (f *fastPath) newSpreadState(pi *PodInfo) *spreadState {
	n := len(f.nodes)
	ss := &spreadState{hardKeys: make([]bool, n), softKeys: make([]bool, n), ignored: make([]bool, n), raw: make([]int64, n),
		ver: make([]int32, n), fits: make([]bool, n), dynamic: make([]int64, n)}
	for i := range ss.ver {
		ss.ver[i] = -1
	}
	terms := func(cs []spreadConstraint, soft bool) []*spreadTerm {
		var out []*spreadTerm
		for i := range cs {
			c := &cs[i]
			t := &spreadTerm{c: c, sel: f.selectorIndex(pi.Pod.Namespace, c.selector), dom: f.domainIndex(c.topologyKey), incl: make([]bool, n),
				hostname: soft && c.topologyKey == corev1.LabelHostname}
			for j, ni := range f.nodes {
				t.incl[j] = c.includes(pi, ni.Node)
			}
			if !soft && c.selector.Matches(klabels.Set(pi.Pod.Labels)) {
				t.self = 1
			}
			t.counts, t.present, t.scored = make([]int64, t.dom.n), make([]bool, t.dom.n), make([]bool, t.dom.n)
			out = append(out, t)
		}
		return out
	}
	ss.hard, ss.soft = terms(pi.hardSpread, false), terms(pi.softSpread, true)
	for i, ni := range f.nodes {
		ss.hardKeys[i] = hasTopologyKeys(ni.Node, pi.hardSpread)
		ss.softKeys[i] = hasTopologyKeys(ni.Node, pi.softSpread)
		for _, t := range ss.hard {
			if ss.hardKeys[i] && t.incl[i] {
				t.present[t.dom.of[i]] = true
				t.counts[t.dom.of[i]] += t.sel.cnt[i]
			}
		}
		for _, t := range ss.soft {
			if !t.hostname && ss.softKeys[i] && t.incl[i] {
				t.present[t.dom.of[i]] = true
				t.counts[t.dom.of[i]] += t.sel.cnt[i]
			}
		}
	}
	return ss
}

// sync brings the selector indexes and the per-domain counts up to date
// with the log.
func (ss *spreadState) sync(f *fastPath, st *classState) {
	for _, t := range ss.hard {
		f.syncSelector(t.sel)
	}
	for _, t := range ss.soft {
		f.syncSelector(t.sel)
	}
	for _, pl := range f.log[st.seen:] {
		i := pl.node
		for _, t := range ss.hard {
			if ss.hardKeys[i] && t.incl[i] && t.sel.counts(f, pl.group) {
				t.counts[t.dom.of[i]]++
			}
		}
		for _, t := range ss.soft {
			if !t.hostname && ss.softKeys[i] && t.incl[i] && t.sel.counts(f, pl.group) {
				t.counts[t.dom.of[i]]++
			}
		}
	}
	st.seen = len(f.log)
}

// scanSpread filters and scores every node for a pod of a spread class,
// as scheduleOne would, and returns the best node or -1.
func (f *fastPath) scanSpread(c *podClass, st *classState, pi *PodInfo) int {
	ss := st.spread
	ss.sync(f, st)

	// PodTopologySpread's filter: the global minimum per DoNotSchedule
	// constraint (0 with fewer domains than minDomains).
	for _, t := range ss.hard {
		m, domains := int64(math.MaxInt32), int32(0)
		for d, ok := range t.present {
			if ok {
				m = min(m, t.counts[d])
				domains++
			}
		}
		if domains < t.c.minDomains {
			m = 0
		}
		t.min = m
	}
	allowed := func(t *spreadTerm, d int32) bool {
		return d >= 0 && t.counts[d]+t.self-t.min <= int64(t.c.maxSkew)
	}
	candidate := func(i int32) bool {
		if !c.static.ok[i] {
			return false
		}
		if ss.ver[i] != f.ver[i] {
			ni := f.nodes[i]
			ss.ver[i] = f.ver[i]
			ss.fits[i] = fitsDynamic(pi, ni)
			if ss.fits[i] {
				ss.dynamic[i] = dynamicScore(pi, ni, st.balanced)
			}
		}
		if !ss.fits[i] {
			return false
		}
		for _, t := range ss.hard {
			if !allowed(t, t.dom.of[i]) {
				return false
			}
		}
		return true
	}
	cand := ss.cand[:0]
	if len(ss.hard) > 0 {
		// Only the nodes of the first constraint's allowed domains.
		t := ss.hard[0]
		for d, members := range t.dom.members {
			if allowed(t, int32(d)) {
				for _, i := range members {
					if candidate(i) {
						cand = append(cand, i)
					}
				}
			}
		}
	} else {
		for i := range f.nodes {
			if candidate(int32(i)) {
				cand = append(cand, int32(i))
			}
		}
	}
	ss.cand = cand
	switch len(cand) {
	case 0:
		return -1
	case 1:
		return int(cand[0])
	}

	var topT, topA int64
	if c.static.taint != nil || c.static.aff != nil {
		for _, i := range cand {
			topT = max(topT, c.static.taint.of(int(i)))
			topA = max(topA, c.static.aff.of(int(i)))
		}
	}

	// PodTopologySpread's score state, over the feasible nodes.
	scoreSpread := len(ss.soft) > 0
	var lo, hi int64 = math.MaxInt64, 0
	if scoreSpread {
		// The domains of the feasible nodes with every soft key; the
		// weight of a constraint is log(their number + 2).
		ignored := 0
		for _, t := range ss.soft {
			clear(t.scored)
		}
		for _, i := range cand {
			ss.ignored[i] = !ss.softKeys[i]
			if ss.ignored[i] {
				ignored++
				continue
			}
			for _, t := range ss.soft {
				if !t.hostname {
					t.scored[t.dom.of[i]] = true
				}
			}
		}
		for _, t := range ss.soft {
			size := 0
			if t.hostname {
				size = len(cand) - ignored
			} else {
				for _, ok := range t.scored {
					if ok {
						size++
					}
				}
			}
			t.weight = math.Log(float64(size + 2))
		}
		for _, i := range cand {
			if ss.ignored[i] {
				ss.raw[i] = -1
				continue
			}
			var score float64
			for _, t := range ss.soft {
				var count int64
				if t.hostname {
					count = t.sel.cnt[i]
				} else {
					count = t.counts[t.dom.of[i]]
				}
				score += float64(count)*t.weight + float64(t.c.maxSkew-1)
			}
			s := int64(math.Round(score))
			ss.raw[i] = s
			lo, hi = min(lo, s), max(hi, s)
		}
	}

	ss.norm = c.static.normalized(ss.norm, topT, topA)
	best, bestScore := -1, int64(noScore)
	for _, i := range cand {
		total := ss.norm[c.static.pair(int(i))] + ss.dynamic[i]
		if scoreSpread {
			var s int64
			switch raw := ss.raw[i]; {
			case raw < 0:
				s = 0
			case hi == 0:
				s = MaxNodeScore
			default:
				s = MaxNodeScore * (hi + lo - raw) / hi
			}
			total += 2 * s
		}
		if total > bestScore || total == bestScore && int(i) < best {
			best, bestScore = int(i), total
		}
	}
	return best
}

// --- Classes ---

// appendStr and appendMap encode strings and maps unambiguously.
func appendStr(b []byte, v string) []byte {
	b = strconv.AppendInt(b, int64(len(v)), 10)
	b = append(b, ':')
	return append(b, v...)
}

func appendMap(b []byte, m map[string]string) []byte {
	b = strconv.AppendInt(b, int64(len(m)), 10)
	b = append(b, ',')
	switch len(m) {
	case 0:
	case 1:
		for k, v := range m {
			b = appendStr(appendStr(b, k), v)
		}
	default:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendStr(appendStr(b, k), m[k])
		}
	}
	return b
}

// classKey encodes what the default plugins look at in a pod, other than
// its name: staticKey what does not depend on usage or other pods
// (tolerations, node selector, node affinity), key all of it. It returns
// false for pods the fast path leaves alone.
func (f *fastPath) classKey(pi *PodInfo) (staticKey, key string, ok bool) {
	p := pi.Pod
	s := &p.Spec
	if len(s.SchedulingGates) > 0 || len(s.ResourceClaims) > 0 || s.SchedulingGroup != nil ||
		s.SchedulerName != "" && s.SchedulerName != corev1.DefaultSchedulerName ||
		pi.hasPodAffinity() || len(pi.affinityErrs) > 0 || len(pi.spreadErrs) > 0 ||
		len(pi.Requests.Scalar) > 0 || len(pi.NonZero.Scalar) > 0 {
		return "", "", false
	}
	for _, t := range pi.preferred {
		if t.weight <= 0 {
			return "", "", false
		}
	}
	b := f.key[:0]
	str := func(v string) { b = appendStr(b, v) }
	num := func(v int64) {
		b = strconv.AppendInt(b, v, 10)
		b = append(b, ',')
	}
	strs := func(vs []string) {
		num(int64(len(vs)))
		for _, v := range vs {
			str(v)
		}
	}
	b = appendMap(b, s.NodeSelector)
	num(int64(len(s.Tolerations)))
	for _, t := range s.Tolerations {
		str(t.Key)
		str(string(t.Operator))
		str(t.Value)
		str(string(t.Effect))
	}
	selTerm := func(t corev1.NodeSelectorTerm) {
		num(int64(len(t.MatchExpressions)))
		for _, e := range t.MatchExpressions {
			str(e.Key)
			str(string(e.Operator))
			strs(e.Values)
		}
		num(int64(len(t.MatchFields)))
		for _, e := range t.MatchFields {
			str(e.Key)
			str(string(e.Operator))
			strs(e.Values)
		}
	}
	if a := s.Affinity; a != nil && a.NodeAffinity != nil {
		b = append(b, 'A')
		if r := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; r != nil {
			b = append(b, 'R')
			num(int64(len(r.NodeSelectorTerms)))
			for _, t := range r.NodeSelectorTerms {
				selTerm(t)
			}
		}
		prefs := a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		num(int64(len(prefs)))
		for _, t := range prefs {
			num(int64(t.Weight))
			selTerm(t.Preference)
		}
	}
	static := len(b)
	b = append(b, '|')
	str(p.Namespace)
	b = appendMap(b, p.Labels)
	num(pi.Requests.MilliCPU)
	num(pi.Requests.Memory)
	num(pi.NonZero.MilliCPU)
	num(pi.NonZero.Memory)
	num(int64(len(pi.HostPorts)))
	for _, hp := range pi.HostPorts {
		str(hp.IP)
		str(string(hp.Protocol))
		num(int64(hp.Port))
	}
	num(int64(len(s.TopologySpreadConstraints)))
	for _, c := range s.TopologySpreadConstraints {
		num(int64(c.MaxSkew))
		str(c.TopologyKey)
		str(string(c.WhenUnsatisfiable))
		if c.LabelSelector == nil {
			b = append(b, '-')
		} else {
			b = appendMap(b, c.LabelSelector.MatchLabels)
			num(int64(len(c.LabelSelector.MatchExpressions)))
			for _, e := range c.LabelSelector.MatchExpressions {
				str(e.Key)
				str(string(e.Operator))
				strs(e.Values)
			}
		}
		if c.MinDomains == nil {
			b = append(b, '-')
		} else {
			num(int64(*c.MinDomains))
		}
		for _, pol := range []*corev1.NodeInclusionPolicy{c.NodeAffinityPolicy, c.NodeTaintsPolicy} {
			if pol == nil {
				b = append(b, '-')
			} else {
				str(string(*pol))
			}
		}
		strs(c.MatchLabelKeys)
	}
	f.key = b
	key = string(b)
	return key[:static], key, true
}
