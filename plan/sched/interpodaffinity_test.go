package sched

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	hostnameKey = corev1.LabelHostname
	zoneKey     = corev1.LabelTopologyZone
)

// Fixture builders for pod labels, namespaces and inter-pod affinity.

func podLabels(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

func inNamespace(ns string) podOpt { return func(p *corev1.Pod) { p.Namespace = ns } }

func deleting() podOpt {
	return func(p *corev1.Pod) { t := metav1.NewTime(p.CreationTimestamp.Time); p.DeletionTimestamp = &t }
}

// selector is a label selector with matchLabels kv.
func selector(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

type termOpt func(*corev1.PodAffinityTerm)

// term is a pod affinity term on topologyKey selecting matchLabels kv.
func term(topologyKey string, kv []string, opts ...termOpt) corev1.PodAffinityTerm {
	t := corev1.PodAffinityTerm{TopologyKey: topologyKey, LabelSelector: selector(kv...)}
	for _, o := range opts {
		o(&t)
	}
	return t
}

func kv(kv ...string) []string { return kv }

func namespaces(ns ...string) termOpt {
	return func(t *corev1.PodAffinityTerm) { t.Namespaces = ns }
}

func nsSelector(s *metav1.LabelSelector) termOpt {
	return func(t *corev1.PodAffinityTerm) { t.NamespaceSelector = s }
}

func affinity(p *corev1.Pod) *corev1.Affinity {
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	return p.Spec.Affinity
}

func requiredAffinity(terms ...corev1.PodAffinityTerm) podOpt {
	return func(p *corev1.Pod) {
		affinity(p).PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}
	}
}

func requiredAntiAffinity(terms ...corev1.PodAffinityTerm) podOpt {
	return func(p *corev1.Pod) {
		affinity(p).PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}
	}
}

func weighted(weight int32, t corev1.PodAffinityTerm) corev1.WeightedPodAffinityTerm {
	return corev1.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: t}
}

func preferredAffinity(terms ...corev1.WeightedPodAffinityTerm) podOpt {
	return func(p *corev1.Pod) {
		a := affinity(p)
		if a.PodAffinity == nil {
			a.PodAffinity = &corev1.PodAffinity{}
		}
		a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution = terms
	}
}

func preferredAntiAffinity(terms ...corev1.WeightedPodAffinityTerm) podOpt {
	return func(p *corev1.Pod) {
		a := affinity(p)
		if a.PodAntiAffinity == nil {
			a.PodAntiAffinity = &corev1.PodAntiAffinity{}
		}
		a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution = terms
	}
}

// zoned is a node in a zone.
func zoned(name, zone string, opts ...func(*Node)) Node {
	return node(name, append([]func(*Node){labels(zoneKey, zone)}, opts...)...)
}

// placed lays pods out on nodes: each pod goes to the node its
// spec.nodeName names.
func placed(nodes []Node, pods ...*corev1.Pod) []*NodeInfo {
	var infos []*NodeInfo
	for _, n := range nodes {
		ni := &NodeInfo{Node: &n}
		for _, p := range pods {
			if p.Spec.NodeName == n.Name {
				ni.Add(NewPodInfo(p))
			}
		}
		infos = append(infos, ni)
	}
	return infos
}

// filterAll runs a plugin's PreFilterCluster (if any) and Filter over the
// nodes and returns the rejected nodes' reasons, or the pre-filter message.
// When the plugin skips the pod, Filter is still called, to check that it
// passes every node.
func filterAll(pl FilterPlugin, pod *corev1.Pod, nodes []*NodeInfo, ns map[string]map[string]string) (map[string][]string, string) {
	pi := NewPodInfo(pod)
	if cp, ok := pl.(ClusterPreFilter); ok {
		if _, msg := cp.PreFilterCluster(pi, NewSnapshot(nodes, ns)); msg != "" {
			return nil, msg
		}
	}
	got := map[string][]string{}
	for _, ni := range nodes {
		if r := pl.Filter(pi, ni); r != nil {
			got[ni.Node.Name] = r
		}
	}
	return got, ""
}

// scoreAll runs a plugin's pre-score, Score and NormalizeScores over the
// nodes, all feasible; nil when the plugin skips the pod.
func scoreAll(pl ScorePlugin, pod *corev1.Pod, nodes []*NodeInfo, ns map[string]map[string]string) map[string]int64 {
	pi := NewPodInfo(pod)
	if cp, ok := pl.(ClusterPreScorer); ok {
		if !cp.PreScoreCluster(pi, NewSnapshot(nodes, ns), nodes) {
			return nil
		}
	} else if ps, ok := pl.(PreScorer); ok && !ps.PreScore(pi) {
		return nil
	}
	scores := make([]int64, len(nodes))
	for i, ni := range nodes {
		scores[i] = pl.Score(pi, ni)
	}
	if n, ok := pl.(ScoreNormalizer); ok {
		n.NormalizeScores(scores)
	}
	got := map[string]int64{}
	for i, ni := range nodes {
		got[ni.Node.Name] = scores[i]
	}
	return got
}

// affinityCluster: zone a has a1 (web) and a2, zone b has b1 (db, in
// namespace "other", labelled team=x), zone c has c1 (web-v2, tenant b),
// and n0 has no zone label.
func affinityCluster(extra ...*corev1.Pod) []*NodeInfo {
	nodes := []Node{zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b"), zoned("c1", "c"), node("n0")}
	pods := append([]*corev1.Pod{
		newPod("web", podLabels("app", "web", "version", "v1", "tenant", "a"), boundTo("a1")),
		newPod("db", podLabels("app", "db"), inNamespace("other"), boundTo("b1")),
		newPod("web-v2", podLabels("app", "web", "version", "v2", "tenant", "b"), boundTo("c1")),
	}, extra...)
	return placed(nodes, pods...)
}

var affinityNamespaces = map[string]map[string]string{"other": {"team": "x"}, "default": {"team": "y"}}

func TestInterPodAffinityFilter(t *testing.T) {
	aff, anti, existing := []string{ReasonPodAffinity}, []string{ReasonPodAntiAffinity}, []string{ReasonExistingAntiAffinity}
	tests := []struct {
		name  string
		pod   *corev1.Pod
		extra []*corev1.Pod // more existing pods
		want  map[string][]string
	}{
		{"no terms", newPod("p"), nil, map[string][]string{}},
		{"affinity, hostname", newPod("p", requiredAffinity(term(hostnameKey, kv("version", "v1")))), nil,
			map[string][]string{"a2": aff, "b1": aff, "c1": aff, "n0": aff}},
		{"affinity, zone", newPod("p", requiredAffinity(term(zoneKey, kv("app", "web")))), nil,
			map[string][]string{"b1": aff, "n0": aff}},
		{"affinity terms are ANDed", newPod("p", requiredAffinity(term(zoneKey, kv("app", "web")), term(hostnameKey, kv("version", "v2")))), nil,
			map[string][]string{"a1": aff, "a2": aff, "b1": aff, "n0": aff}},
		{"affinity, a pod in another namespace does not count", newPod("p", requiredAffinity(term(zoneKey, kv("app", "db")))), nil,
			map[string][]string{"a1": aff, "a2": aff, "b1": aff, "c1": aff, "n0": aff}},
		{"affinity, named namespace", newPod("p", requiredAffinity(term(zoneKey, kv("app", "db"), namespaces("other")))), nil,
			map[string][]string{"a1": aff, "a2": aff, "c1": aff, "n0": aff}},
		{"affinity, namespaceSelector", newPod("p", requiredAffinity(term(zoneKey, kv("app", "db"), nsSelector(selector("team", "x"))))), nil,
			map[string][]string{"a1": aff, "a2": aff, "c1": aff, "n0": aff}},
		{"affinity, namespaceSelector on the name label", newPod("p", requiredAffinity(term(zoneKey, kv("app", "db"),
			nsSelector(selector(corev1.LabelMetadataName, "other"))))), nil,
			map[string][]string{"a1": aff, "a2": aff, "c1": aff, "n0": aff}},
		{"affinity, empty namespaceSelector selects all namespaces", newPod("p", requiredAffinity(term(zoneKey, kv("app", "db"),
			nsSelector(&metav1.LabelSelector{})))), nil,
			map[string][]string{"a1": aff, "a2": aff, "c1": aff, "n0": aff}},
		{"affinity, namespaceSelector not matching", newPod("p", requiredAffinity(term(zoneKey, kv("app", "db"), nsSelector(selector("team", "z"))))), nil,
			map[string][]string{"a1": aff, "a2": aff, "b1": aff, "c1": aff, "n0": aff}},
		{"affinity, no pod matches and the pod does not match itself", newPod("p", requiredAffinity(term(zoneKey, kv("app", "cache")))), nil,
			map[string][]string{"a1": aff, "a2": aff, "b1": aff, "c1": aff, "n0": aff}},
		{"affinity, the first pod of a group goes anywhere with the key", newPod("p", podLabels("app", "cache"),
			requiredAffinity(term(zoneKey, kv("app", "cache")))), nil, map[string][]string{"n0": aff}},
		{"affinity, nil label selector matches nothing", newPod("p", requiredAffinity(corev1.PodAffinityTerm{TopologyKey: zoneKey})), nil,
			map[string][]string{"a1": aff, "a2": aff, "b1": aff, "c1": aff, "n0": aff}},
		{"affinity, matchLabelKeys", newPod("p", podLabels("version", "v2"), requiredAffinity(term(zoneKey, kv("app", "web"),
			func(t *corev1.PodAffinityTerm) { t.MatchLabelKeys = []string{"version"} }))), nil,
			map[string][]string{"a1": aff, "a2": aff, "b1": aff, "n0": aff}},
		{"anti-affinity, hostname", newPod("p", requiredAntiAffinity(term(hostnameKey, kv("app", "web")))), nil,
			map[string][]string{"a1": anti, "c1": anti}},
		{"anti-affinity, zone", newPod("p", requiredAntiAffinity(term(zoneKey, kv("app", "web")))), nil,
			map[string][]string{"a1": anti, "a2": anti, "c1": anti}},
		{"anti-affinity, any term", newPod("p", requiredAntiAffinity(term(zoneKey, kv("version", "v1")), term(hostnameKey, kv("version", "v2")))), nil,
			map[string][]string{"a1": anti, "a2": anti, "c1": anti}},
		{"anti-affinity, namespaceSelector", newPod("p", requiredAntiAffinity(term(zoneKey, kv("app", "db"), nsSelector(selector("team", "x"))))), nil,
			map[string][]string{"b1": anti}},
		{"anti-affinity, mismatchLabelKeys keeps tenants apart", newPod("p", podLabels("tenant", "a"), requiredAntiAffinity(
			corev1.PodAffinityTerm{TopologyKey: zoneKey, LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "tenant", Operator: metav1.LabelSelectorOpExists}}}, MismatchLabelKeys: []string{"tenant"}})), nil,
			map[string][]string{"c1": anti}},
		{"existing pod's anti-affinity", newPod("p", podLabels("app", "batch")),
			[]*corev1.Pod{newPod("loner", boundTo("a2"), requiredAntiAffinity(term(zoneKey, kv("app", "batch"))))},
			map[string][]string{"a1": existing, "a2": existing}},
		{"existing pod's anti-affinity, not selecting the pod", newPod("p", podLabels("app", "web")),
			[]*corev1.Pod{newPod("loner", boundTo("a2"), requiredAntiAffinity(term(zoneKey, kv("app", "batch"))))},
			map[string][]string{}},
		{"existing pod's anti-affinity, other namespace", newPod("p", podLabels("app", "batch"), inNamespace("other")),
			[]*corev1.Pod{newPod("loner", boundTo("a2"), requiredAntiAffinity(term(zoneKey, kv("app", "batch"))))},
			map[string][]string{}},
		{"existing pod's anti-affinity, namespaceSelector", newPod("p", podLabels("app", "batch"), inNamespace("other")),
			[]*corev1.Pod{newPod("loner", boundTo("a2"), requiredAntiAffinity(term(hostnameKey, kv("app", "batch"), nsSelector(selector("team", "x")))))},
			map[string][]string{"a2": existing}},
		{"affinity is checked first", newPod("p", podLabels("app", "batch"), requiredAffinity(term(hostnameKey, kv("app", "db"), namespaces("other"))),
			requiredAntiAffinity(term(zoneKey, kv("app", "web")))),
			[]*corev1.Pod{newPod("loner", boundTo("b1"), requiredAntiAffinity(term(zoneKey, kv("app", "batch"))))},
			map[string][]string{"a1": aff, "a2": aff, "b1": existing, "c1": aff, "n0": aff}},
		{"deleting pods still count", newPod("p", requiredAntiAffinity(term(hostnameKey, kv("app", "gone")))),
			[]*corev1.Pod{newPod("gone", podLabels("app", "gone"), boundTo("a2"), deleting())},
			map[string][]string{"a2": anti}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := filterAll(InterPodAffinity{}, tt.pod, affinityCluster(tt.extra...), affinityNamespaces)
			if msg != "" {
				t.Fatalf("PreFilterCluster = %q", msg)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rejected nodes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInterPodAffinityInvalid(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"empty topology key", newPod("p", requiredAffinity(term("", kv("app", "web")))),
			"invalid spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]: topologyKey must not be empty"},
		{"bad selector", newPod("p", preferredAntiAffinity(weighted(1, corev1.PodAffinityTerm{TopologyKey: zoneKey,
			LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Like"}}}}))),
			`invalid spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm: ` +
				`parse labelSelector: "Like" is not a valid label selector operator`},
		{"bad namespace selector", newPod("p", requiredAntiAffinity(term(zoneKey, kv("app", "web"), nsSelector(&metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn}}})))),
			"invalid spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]: " +
				"parse namespaceSelector: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, msg := filterAll(InterPodAffinity{}, tt.pod, affinityCluster(), nil)
			if msg != tt.want {
				t.Errorf("PreFilterCluster = %q, want %q", msg, tt.want)
			}
		})
	}
}

func TestInterPodAffinityScore(t *testing.T) {
	tests := []struct {
		name  string
		pod   *corev1.Pod
		extra []*corev1.Pod
		want  map[string]int64 // nil: skipped
	}{
		{"nothing to score", newPod("p"), nil, nil},
		{"preferred terms matching nothing", newPod("p", preferredAffinity(weighted(10, term(zoneKey, kv("app", "cache"))))), nil, nil},
		{"preferred affinity, zone", newPod("p", preferredAffinity(weighted(10, term(zoneKey, kv("version", "v1"))))), nil,
			map[string]int64{"a1": 100, "a2": 100, "b1": 0, "c1": 0, "n0": 0}},
		// a1 and c1 hold app=web (-5 each); zone a holds v1 (+3).
		{"preferred anti-affinity and affinity", newPod("p",
			preferredAntiAffinity(weighted(5, term(hostnameKey, kv("app", "web")))),
			preferredAffinity(weighted(3, term(zoneKey, kv("version", "v1"))))), nil,
			map[string]int64{"a1": 37, "a2": 100, "b1": 62, "c1": 0, "n0": 62}},
		{"weights add up per domain", newPod("p", preferredAffinity(weighted(10, term(zoneKey, kv("app", "web"))),
			weighted(30, term(hostnameKey, kv("version", "v2"))))), nil,
			map[string]int64{"a1": 25, "a2": 25, "b1": 0, "c1": 100, "n0": 0}},
		{"existing pod's required affinity counts with weight 1", newPod("p", podLabels("app", "batch")),
			[]*corev1.Pod{newPod("follower", boundTo("b1"), requiredAffinity(term(zoneKey, kv("app", "batch"))))},
			map[string]int64{"a1": 0, "a2": 0, "b1": 100, "c1": 0, "n0": 0}},
		{"existing pod's preferred affinity and anti-affinity", newPod("p", podLabels("app", "batch")),
			[]*corev1.Pod{
				newPod("friend", boundTo("b1"), preferredAffinity(weighted(40, term(zoneKey, kv("app", "batch"))))),
				newPod("foe", boundTo("a2"), preferredAntiAffinity(weighted(20, term(zoneKey, kv("app", "batch"))))),
			},
			map[string]int64{"a1": 0, "a2": 0, "b1": 100, "c1": 33, "n0": 33}},
		{"existing pod's terms must select the pod", newPod("p", podLabels("app", "other")),
			[]*corev1.Pod{newPod("friend", boundTo("b1"), preferredAffinity(weighted(40, term(zoneKey, kv("app", "batch")))))},
			nil},
		{"preferred affinity, namespaceSelector", newPod("p", preferredAffinity(weighted(10, term(hostnameKey, kv("app", "db"),
			nsSelector(selector("team", "x")))))), nil,
			map[string]int64{"a1": 0, "a2": 0, "b1": 100, "c1": 0, "n0": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scoreAll(InterPodAffinity{}, tt.pod, affinityCluster(tt.extra...), affinityNamespaces)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("scores (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInterPodAffinityWithoutPreFilter: called alone, the plugins see only
// the node at hand.
func TestInterPodAffinityWithoutPreFilter(t *testing.T) {
	pod := NewPodInfo(newPod("p", requiredAntiAffinity(term(hostnameKey, kv("app", "web")))))
	if got := (InterPodAffinity{}).Filter(pod, nodeInfo(node("n"), newPod("web", podLabels("app", "web")))); !cmp.Equal(got, []string{ReasonPodAntiAffinity}) {
		t.Errorf("Filter = %q", got)
	}
	if got := (InterPodAffinity{}).Filter(pod, nodeInfo(node("n"))); got != nil {
		t.Errorf("Filter = %q", got)
	}
	pod = NewPodInfo(newPod("p", preferredAffinity(weighted(7, term(hostnameKey, kv("app", "web"))))))
	if got := (InterPodAffinity{}).Score(pod, nodeInfo(node("n"), newPod("web", podLabels("app", "web")))); got != 7 {
		t.Errorf("Score = %d, want 7", got)
	}
}

func TestScheduleInterPodAffinity(t *testing.T) {
	replicas := func(n int, app string, opts ...podOpt) []*corev1.Pod {
		var pods []*corev1.Pod
		for i := range n {
			pods = append(pods, newPod(app+"-"+string(rune('0'+i)), append([]podOpt{podLabels("app", app), created(10 + i)}, opts...)...))
		}
		return pods
	}
	oneEach := requiredAntiAffinity(term(hostnameKey, kv("app", "web")))
	threeZones := []Node{zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b"), zoned("b2", "b"), zoned("c1", "c")}
	tests := []struct {
		name       string
		pods       []*corev1.Pod
		nodes      []Node
		namespaces map[string]map[string]string
		bindings   map[string]string
		unsched    map[string]string // pod key → message
	}{
		{
			name:     "anti-affinity puts one replica per node",
			pods:     replicas(3, "web", oneEach),
			nodes:    []Node{node("h1"), node("h2")},
			bindings: map[string]string{"default/web-0": "h1", "default/web-1": "h2"},
			unsched:  map[string]string{"default/web-2": "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules."},
		},
		{
			name: "an existing pod's anti-affinity keeps the pod away",
			pods: []*corev1.Pod{
				newPod("loner", created(1), requiredAntiAffinity(term(hostnameKey, kv("app", "noisy")))),
				newPod("noisy", created(2), podLabels("app", "noisy")),
			},
			nodes:    []Node{node("h1")},
			bindings: map[string]string{"default/loner": "h1"},
			unsched:  map[string]string{"default/noisy": "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules."},
		},
		{
			name:     "anti-affinity per zone",
			pods:     replicas(4, "web", requiredAntiAffinity(term(zoneKey, kv("app", "web")))),
			nodes:    threeZones,
			bindings: map[string]string{"default/web-0": "a1", "default/web-1": "b1", "default/web-2": "c1"},
			unsched: map[string]string{
				"default/web-3": "0/5 nodes are available: 5 node(s) didn't match pod anti-affinity rules.",
			},
		},
		{
			name:     "affinity follows the first pod of the group into its zone",
			pods:     append(replicas(1, "db"), replicas(3, "web", requiredAffinity(term(zoneKey, kv("app", "db"))), created(20))...),
			nodes:    []Node{zoned("a1", "a"), zoned("b1", "b"), zoned("b2", "b")},
			bindings: map[string]string{"default/db-0": "a1", "default/web-0": "a1", "default/web-1": "a1", "default/web-2": "a1"},
		},
		{
			name:     "a group with affinity to itself lands together",
			pods:     replicas(3, "cache", requiredAffinity(term(hostnameKey, kv("app", "cache")))),
			nodes:    []Node{node("h1"), node("h2"), node("h3")},
			bindings: map[string]string{"default/cache-0": "h1", "default/cache-1": "h1", "default/cache-2": "h1"},
		},
		{
			name:     "preferred anti-affinity spreads over zones first",
			pods:     replicas(3, "web", preferredAntiAffinity(weighted(100, term(zoneKey, kv("app", "web"))))),
			nodes:    []Node{zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")},
			bindings: map[string]string{"default/web-0": "a1", "default/web-1": "b1", "default/web-2": "a2"},
		},
		{
			name: "namespaceSelector with the namespaces' labels",
			pods: []*corev1.Pod{
				newPod("db", created(1), inNamespace("prod"), podLabels("app", "db")),
				newPod("report", created(2), inNamespace("analytics"), requiredAffinity(term(hostnameKey, kv("app", "db"),
					nsSelector(selector("env", "prod"))))),
			},
			nodes:      []Node{node("h1"), node("h2")},
			namespaces: map[string]map[string]string{"prod": {"env": "prod"}},
			bindings:   map[string]string{"prod/db": "h1", "analytics/report": "h1"},
		},
		{
			name: "namespaceSelector without the namespaces' labels",
			pods: []*corev1.Pod{
				newPod("db", created(1), inNamespace("prod"), podLabels("app", "db")),
				newPod("report", created(2), inNamespace("analytics"), requiredAffinity(term(hostnameKey, kv("app", "db"),
					nsSelector(selector("env", "prod"))))),
			},
			nodes:    []Node{node("h1"), node("h2")},
			bindings: map[string]string{"prod/db": "h1"},
			unsched:  map[string]string{"analytics/report": "0/2 nodes are available: 2 node(s) didn't match pod affinity rules."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ScheduleCluster(Cluster{Pods: tt.pods, Nodes: tt.nodes, Namespaces: tt.namespaces})
			if diff := cmp.Diff(tt.bindings, got.Bindings); diff != "" {
				t.Errorf("bindings (-want +got):\n%s", diff)
			}
			msgs := map[string]string{}
			for k, u := range got.Unschedulable {
				msgs[k] = u.Message
			}
			if tt.unsched == nil {
				tt.unsched = map[string]string{}
			}
			if diff := cmp.Diff(tt.unsched, msgs); diff != "" {
				t.Errorf("unschedulable (-want +got):\n%s", diff)
			}
		})
	}
}
