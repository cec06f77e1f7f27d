package sched

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// fitCluster makes a random cluster for the fit property: nodes with
// labels, allocatable cpu, memory and pod slots (a few nodes with very few
// slots), taints of every effect, cordoned, not ready and unreachable
// nodes; pods with requests (or only limits), several containers, host
// ports on any or a given IP and protocol, tolerations (Equal, Exists, with
// and without key or effect), node selectors and required node affinity,
// some bound already. No inter-pod affinity or topology spread: whether a
// pod fits a node depends on that node alone.
func fitCluster(rng *rand.Rand) ([]*corev1.Pod, []Node) {
	zones := []string{"a", "b", "c"}
	keys := []string{"dedicated", "gpu", "spot"}
	var nodes []Node
	for i := range 1 + rng.IntN(10) {
		n := node(fmt.Sprintf("n%02d", i), labels("zone", zones[rng.IntN(3)]),
			allocatable(int64(rng.IntN(9)*500), int64(rng.IntN(9))<<29, int64(rng.IntN(7))))
		if rng.IntN(2) == 0 {
			n.Labels["disk"] = []string{"ssd", "hdd"}[rng.IntN(2)]
		}
		n.Ready = rng.IntN(8) != 0
		n.Unreachable = rng.IntN(15) == 0
		n.Unschedulable = rng.IntN(10) == 0
		for range rng.IntN(3) {
			effect := []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute, corev1.TaintEffectPreferNoSchedule}[rng.IntN(3)]
			n.Taints = append(n.Taints, corev1.Taint{Key: keys[rng.IntN(3)], Value: zones[rng.IntN(3)], Effect: effect})
		}
		nodes = append(nodes, n)
	}
	// Multiples of what nodes have, so that pods fill nodes exactly.
	quantity := func(step int, unit string) resource.Quantity {
		return resource.MustParse(fmt.Sprintf("%d%s", step*rng.IntN(7), unit))
	}
	var pods []*corev1.Pod
	for i := range rng.IntN(40) {
		p := newPod(fmt.Sprintf("p%02d", i), created(rng.IntN(4)))
		p.Spec.Containers = nil
		for c := range 1 + rng.IntN(2) {
			ctr := corev1.Container{Name: fmt.Sprintf("c%d", c), Image: "x"}
			rl := corev1.ResourceList{}
			if rng.IntN(4) != 0 {
				rl[corev1.ResourceCPU] = quantity(250, "m")
			}
			if rng.IntN(4) != 0 {
				rl[corev1.ResourceMemory] = quantity(256, "Mi")
			}
			if rng.IntN(4) == 0 {
				ctr.Resources.Limits = rl // requests default to limits
			} else {
				ctr.Resources.Requests = rl
			}
			if rng.IntN(4) == 0 {
				ip := []string{"", "0.0.0.0", "10.0.0.1", "10.0.0.2"}[rng.IntN(4)]
				proto := []corev1.Protocol{"", corev1.ProtocolTCP, corev1.ProtocolUDP}[rng.IntN(3)]
				port := int32(8000 + rng.IntN(3))
				ctr.Ports = append(ctr.Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, HostIP: ip, Protocol: proto})
			}
			p.Spec.Containers = append(p.Spec.Containers, ctr)
		}
		for range rng.IntN(3) {
			tol := corev1.Toleration{Key: keys[rng.IntN(3)], Value: zones[rng.IntN(3)]}
			switch rng.IntN(6) {
			case 0:
				tol.Operator, tol.Value = corev1.TolerationOpExists, ""
			case 1:
				tol = corev1.Toleration{Operator: corev1.TolerationOpExists} // everything
			case 2:
				tol.Key, tol.Value = []string{TaintNodeNotReady, TaintNodeUnreachable, TaintNodeUnschedulable}[rng.IntN(3)], ""
				tol.Operator = corev1.TolerationOpExists
			}
			if rng.IntN(2) == 0 {
				tol.Effect = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute, corev1.TaintEffectPreferNoSchedule}[rng.IntN(3)]
			}
			p.Spec.Tolerations = append(p.Spec.Tolerations, tol)
		}
		if rng.IntN(4) == 0 {
			p.Spec.NodeSelector = map[string]string{"zone": zones[rng.IntN(3)]}
		}
		if rng.IntN(5) == 0 {
			op := []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist}[rng.IntN(4)]
			e := expr("disk", op)
			if op == corev1.NodeSelectorOpIn || op == corev1.NodeSelectorOpNotIn {
				e.Values = []string{"ssd"}
			}
			required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{e}})(p)
		}
		if rng.IntN(5) == 0 && len(nodes) > 0 {
			p.Spec.NodeName = nodes[rng.IntN(len(nodes))].Name // may overcommit: bound pods are never moved
		}
		pods = append(pods, p)
	}
	return pods, nodes
}

// oracleUsage is what the oracle has placed on a node so far.
type oracleUsage struct {
	cpu, mem, pods int64
	ports          []HostPort
}

// oracleRequests sums the containers' requests, a limit standing in for a
// missing request (fitCluster makes no init containers or overhead).
func oracleRequests(p *corev1.Pod) (cpu, mem int64) {
	for _, c := range p.Spec.Containers {
		get := func(name corev1.ResourceName) (resource.Quantity, bool) {
			if q, ok := c.Resources.Requests[name]; ok {
				return q, true
			}
			q, ok := c.Resources.Limits[name]
			return q, ok
		}
		if q, ok := get(corev1.ResourceCPU); ok {
			cpu += q.MilliValue()
		}
		if q, ok := get(corev1.ResourceMemory); ok {
			mem += q.Value()
		}
	}
	return cpu, mem
}

func oraclePorts(p *corev1.Pod) []HostPort {
	var out []HostPort
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.HostPort > 0 {
				out = append(out, HostPort{IP: cmp.Or(cp.HostIP, "0.0.0.0"), Protocol: cmp.Or(cp.Protocol, corev1.ProtocolTCP), Port: cp.HostPort})
			}
		}
	}
	return out
}

// oracleTolerates is Kubernetes' toleration rule, written out again.
func oracleTolerates(p *corev1.Pod, key, value string, effect corev1.TaintEffect) bool {
	for _, t := range p.Spec.Tolerations {
		effectOK := t.Effect == "" || t.Effect == effect
		keyOK := t.Key == key || t.Key == "" && t.Operator == corev1.TolerationOpExists
		valueOK := t.Operator == corev1.TolerationOpExists || t.Value == value
		if effectOK && keyOK && valueOK {
			return true
		}
	}
	return false
}

// oracleMisfit says why pod p does not fit node n with usage u, or "".
func oracleMisfit(p *corev1.Pod, n *Node, u *oracleUsage) string {
	switch {
	case n.Unschedulable && !oracleTolerates(p, TaintNodeUnschedulable, "", corev1.TaintEffectNoSchedule):
		return "cordoned"
	case n.Unreachable && !oracleTolerates(p, TaintNodeUnreachable, "", corev1.TaintEffectNoSchedule):
		return "unreachable"
	case !n.Unreachable && !n.Ready && !oracleTolerates(p, TaintNodeNotReady, "", corev1.TaintEffectNoSchedule):
		return "not ready"
	}
	for _, t := range n.Taints {
		if t.Effect != corev1.TaintEffectPreferNoSchedule && !oracleTolerates(p, t.Key, t.Value, t.Effect) {
			return fmt.Sprintf("taint %s=%s:%s", t.Key, t.Value, t.Effect)
		}
	}
	for k, v := range p.Spec.NodeSelector {
		if got, ok := n.Labels[k]; !ok || got != v {
			return "nodeSelector " + k
		}
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		e := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0]
		v, ok := n.Labels[e.Key]
		match := map[corev1.NodeSelectorOperator]bool{
			corev1.NodeSelectorOpIn:           ok && slices.Contains(e.Values, v),
			corev1.NodeSelectorOpNotIn:        !ok || !slices.Contains(e.Values, v),
			corev1.NodeSelectorOpExists:       ok,
			corev1.NodeSelectorOpDoesNotExist: !ok,
		}[e.Operator]
		if !match {
			return "node affinity"
		}
	}
	cpu, mem := oracleRequests(p)
	switch {
	case u.pods+1 > n.Allocatable.Pods:
		return "pods"
	case cpu > 0 && u.cpu+cpu > n.Allocatable.CPUMillis:
		return "cpu"
	case mem > 0 && u.mem+mem > n.Allocatable.MemoryBytes:
		return "memory"
	}
	for _, want := range oraclePorts(p) {
		for _, used := range u.ports {
			if want.Port == used.Port && want.Protocol == used.Protocol && (want.IP == used.IP || want.IP == "0.0.0.0" || used.IP == "0.0.0.0") {
				return fmt.Sprintf("host port %s/%d", want.Protocol, want.Port)
			}
		}
	}
	return ""
}

func (u *oracleUsage) add(p *corev1.Pod) {
	cpu, mem := oracleRequests(p)
	u.cpu += cpu
	u.mem += mem
	u.pods++
	u.ports = append(u.ports, oraclePorts(p)...)
}

// checkFit replays got in the scheduler's documented order (creation time,
// then namespace/name) against the oracle: every binding fits its node
// given the pods bound and placed before it (so no node ends over its
// allocatable unless pods bound before the call put it there), and every
// pod left unschedulable fits no node at its turn and has a reason for
// every node. It returns the first violation.
func checkFit(pods []*corev1.Pod, nodes []Node, got Result) error {
	byName := map[string]*Node{}
	use := map[string]*oracleUsage{}
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
		use[nodes[i].Name] = &oracleUsage{}
	}
	var pending []*corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			if _, ok := got.Bindings[p.Namespace+"/"+p.Name]; ok {
				return fmt.Errorf("%s: already bound to %s, bound again", p.Name, p.Spec.NodeName)
			}
			if u, ok := use[p.Spec.NodeName]; ok {
				u.add(p)
			}
			continue
		}
		pending = append(pending, p)
	}
	slices.SortFunc(pending, func(a, b *corev1.Pod) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name))
	})
	for _, p := range pending {
		key := p.Namespace + "/" + p.Name
		name, bound := got.Bindings[key]
		u, unsched := got.Unschedulable[key]
		switch {
		case bound == unsched:
			return fmt.Errorf("%s: bound %v and unschedulable %v, want exactly one", p.Name, bound, unsched)
		case bound:
			n, ok := byName[name]
			if !ok {
				return fmt.Errorf("%s: bound to unknown node %s", p.Name, name)
			}
			if why := oracleMisfit(p, n, use[name]); why != "" {
				return fmt.Errorf("%s: bound to %s, where it does not fit (%s)", p.Name, name, why)
			}
			use[name].add(p)
		default:
			for _, n := range nodes {
				if oracleMisfit(p, &n, use[n.Name]) == "" {
					return fmt.Errorf("%s: unschedulable (%s), but fits %s", p.Name, u.Message, n.Name)
				}
				if u.Reasons[n.Name] == "" {
					return fmt.Errorf("%s: unschedulable (%s) without a reason for %s", p.Name, u.Message, n.Name)
				}
			}
			if want := fmt.Sprintf("0/%d nodes are available: ", len(nodes)); len(nodes) > 0 && !strings.HasPrefix(u.Message, want) {
				return fmt.Errorf("%s: message %q does not start %q", p.Name, u.Message, want)
			}
		}
	}
	return nil
}

// shrinkFit removes pods and nodes one at a time while fails holds.
func shrinkFit(pods []*corev1.Pod, nodes []Node, fails func([]*corev1.Pod, []Node) bool) ([]*corev1.Pod, []Node) {
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(pods); i++ {
			p2 := slices.Delete(slices.Clone(pods), i, i+1)
			if fails(p2, nodes) {
				pods, changed = p2, true
				i--
			}
		}
		for i := 0; i < len(nodes); i++ {
			n2 := slices.Delete(slices.Clone(nodes), i, i+1)
			if fails(pods, n2) {
				nodes, changed = n2, true
				i--
			}
		}
	}
	return pods, nodes
}

// dumpCluster renders a cluster as a sched-*.yaml fixture.
func dumpCluster(pods []*corev1.Pod, nodes []Node) string {
	var c cluster
	c.Nodes = nodes
	for _, p := range pods {
		c.Pods = append(c.Pods, struct {
			Count int        `json:"count"`
			Pod   corev1.Pod `json:"pod"`
		}{Pod: *p})
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		return err.Error()
	}
	return string(out)
}

// TestScheduleFitProperty checks, over many random clusters, that every
// binding Schedule makes fits (requests within allocatable, pod slots,
// host ports, taints tolerated, node selector and required affinity
// matched, node ready and schedulable or tolerated) and that every pod it
// leaves unschedulable fits nowhere, with an independent oracle. A
// failing cluster is shrunk and printed as a fixture.
func TestScheduleFitProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 26))
	cases := 2000
	if testing.Short() {
		cases = 300
	}
	fails := func(pods []*corev1.Pod, nodes []Node) bool {
		return checkFit(pods, nodes, Schedule(pods, nodes)) != nil
	}
	for i := range cases {
		pods, nodes := fitCluster(rng)
		if err := checkFit(pods, nodes, Schedule(pods, nodes)); err != nil {
			pods, nodes = shrinkFit(pods, nodes, fails)
			t.Fatalf("case %d: %v\nshrunk to: %v\n%s", i, err, checkFit(pods, nodes, Schedule(pods, nodes)), dumpCluster(pods, nodes))
		}
	}
}

// TestCheckFitCatchesViolations makes sure the oracle is not vacuous.
func TestCheckFitCatchesViolations(t *testing.T) {
	nodes := []Node{
		node("h1", allocatable(1000, 1<<30, 2)),
		node("h2", taint("dedicated", "db", corev1.TaintEffectNoSchedule)),
	}
	pods := []*corev1.Pod{
		newPod("a", requests("600m", "")),
		newPod("b", requests("600m", "")),
		newPod("c", hostPort(80, "", "")),
		newPod("d", hostPort(80, "10.0.0.1", "")),
	}
	tests := []struct {
		name string
		got  Result
		want string
	}{
		{"over cpu", Result{Bindings: map[string]string{"default/a": "h1", "default/b": "h1", "default/c": "h1", "default/d": "h1"}}, "b: bound to h1, where it does not fit (cpu)"},
		{"untolerated taint", Result{Bindings: map[string]string{"default/a": "h2"}}, "a: bound to h2, where it does not fit (taint dedicated=db:NoSchedule)"},
		{"unschedulable but fits", Result{Bindings: map[string]string{}, Unschedulable: map[string]Unschedulable{"default/a": {}}}, "a: unschedulable (), but fits h1"},
	}
	for _, tt := range tests {
		err := checkFit(pods, nodes, tt.got)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	hp := []*corev1.Pod{newPod("c", hostPort(80, "", "")), newPod("d", hostPort(80, "10.0.0.1", ""))}
	if err := checkFit(hp, nodes[:1], Result{Bindings: map[string]string{"default/c": "h1", "default/d": "h1"}}); err == nil ||
		!strings.Contains(err.Error(), "host port TCP/80") {
		t.Errorf("host port clash: %v", err)
	}
}

// TestPlainRequestsMatchMapRequests checks the map-free requests of plain
// pods against the general computation on random containers.
func TestPlainRequestsMatchMapRequests(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	plain := 0
	for i := range 3000 {
		p := newPod("p")
		p.Spec.Containers = nil
		for c := range 1 + rng.IntN(3) {
			ctr := corev1.Container{Name: fmt.Sprintf("c%d", c)}
			for _, rl := range []*corev1.ResourceList{&ctr.Resources.Requests, &ctr.Resources.Limits} {
				if rng.IntN(3) == 0 {
					continue
				}
				*rl = corev1.ResourceList{}
				if rng.IntN(3) != 0 {
					(*rl)[corev1.ResourceCPU] = resource.MustParse(fmt.Sprintf("%dm", rng.IntN(3000)))
				}
				if rng.IntN(3) != 0 {
					(*rl)[corev1.ResourceMemory] = resource.MustParse(fmt.Sprintf("%dMi", rng.IntN(3000)))
				}
				if rng.IntN(10) == 0 {
					(*rl)["example.com/gpu"] = resource.MustParse("1")
				}
			}
			p.Spec.Containers = append(p.Spec.Containers, ctr)
		}
		if rng.IntN(10) == 0 {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}}}
		}
		wantR, wantNZ := mapRequests(p)
		r, nz, ok := plainRequests(p)
		if !ok {
			continue
		}
		plain++
		if diff := gocmp.Diff([]Requests{wantR, wantNZ}, []Requests{r, nz}); diff != "" {
			t.Fatalf("case %d: plainRequests differs (-map +plain):\n%s\n%s", i, diff, dumpCluster([]*corev1.Pod{p}, nil))
		}
	}
	if plain < 1000 {
		t.Errorf("only %d plain pods", plain)
	}
}
