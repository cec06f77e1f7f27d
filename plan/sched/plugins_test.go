package sched

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Fixture builders.

type podOpt func(*corev1.Pod)

func newPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func requests(cpu, mem string) podOpt {
	return func(p *corev1.Pod) {
		rl := corev1.ResourceList{}
		if cpu != "" {
			rl[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			rl[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		p.Spec.Containers[0].Resources.Requests = rl
	}
}

func tolerations(ts ...corev1.Toleration) podOpt {
	return func(p *corev1.Pod) { p.Spec.Tolerations = ts }
}

func withNodeSelector(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

func hostPort(port int32, ip string, proto corev1.Protocol) podOpt {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, HostIP: ip, Protocol: proto})
	}
}

func boundTo(node string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = node } }

func created(sec int) podOpt {
	return func(p *corev1.Pod) {
		p.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC))
	}
}

func required(terms ...corev1.NodeSelectorTerm) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func node(name string, opts ...func(*Node)) Node {
	n := Node{Name: name, Ready: true, Labels: map[string]string{"kubernetes.io/hostname": name},
		Allocatable: nodeapi.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, Pods: 110}}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func taint(key, value string, effect corev1.TaintEffect) func(*Node) {
	return func(n *Node) { n.Taints = append(n.Taints, corev1.Taint{Key: key, Value: value, Effect: effect}) }
}

func labels(kv ...string) func(*Node) {
	return func(n *Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func allocatable(cpu, mem, pods int64) func(*Node) {
	return func(n *Node) { n.Allocatable = nodeapi.Resources{CPUMillis: cpu, MemoryBytes: mem, Pods: pods} }
}

// nodeInfo is a node with the given pods already on it.
func nodeInfo(n Node, pods ...*corev1.Pod) *NodeInfo {
	ni := &NodeInfo{Node: &n}
	for _, p := range pods {
		ni.Add(NewPodInfo(p))
	}
	return ni
}

type filterCase struct {
	name string
	pod  *corev1.Pod
	node *NodeInfo
	want []string
}

func runFilter(t *testing.T, pl FilterPlugin, tests []filterCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(pl.Name()+"/"+tt.name, func(t *testing.T) {
			got := pl.Filter(NewPodInfo(tt.pod), tt.node)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeUnschedulable(t *testing.T) {
	cordoned := func(n *Node) { n.Unschedulable = true }
	runFilter(t, NodeUnschedulable{}, []filterCase{
		{"schedulable", newPod("p"), nodeInfo(node("n")), nil},
		{"cordoned", newPod("p"), nodeInfo(node("n", cordoned)), []string{ReasonUnschedulable}},
		{"cordoned, tolerated", newPod("p", tolerations(corev1.Toleration{Key: TaintNodeUnschedulable, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoSchedule})), nodeInfo(node("n", cordoned)), nil},
		{"cordoned, tolerated by everything", newPod("p", tolerations(corev1.Toleration{Operator: corev1.TolerationOpExists})),
			nodeInfo(node("n", cordoned)), nil},
		{"cordoned, NoExecute toleration does not do", newPod("p", tolerations(corev1.Toleration{Key: TaintNodeUnschedulable,
			Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})), nodeInfo(node("n", cordoned)), []string{ReasonUnschedulable}},
	})
}

func TestNodeReady(t *testing.T) {
	notReady := func(n *Node) { n.Ready = false }
	unreachable := func(n *Node) { n.Ready, n.Unreachable = false, true }
	tolerate := func(key string) podOpt {
		return tolerations(corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	}
	runFilter(t, NodeReady{}, []filterCase{
		{"ready", newPod("p"), nodeInfo(node("n")), nil},
		{"not ready", newPod("p"), nodeInfo(node("n", notReady)), []string{ReasonNotReady}},
		{"unreachable", newPod("p"), nodeInfo(node("n", unreachable)), []string{ReasonNodeUnreachable}},
		{"unreachable even if marked ready", newPod("p"), nodeInfo(node("n", func(n *Node) { n.Unreachable = true })), []string{ReasonNodeUnreachable}},
		{"not ready, tolerated", newPod("p", tolerate(TaintNodeNotReady)), nodeInfo(node("n", notReady)), nil},
		{"unreachable, wrong toleration", newPod("p", tolerate(TaintNodeNotReady)), nodeInfo(node("n", unreachable)), []string{ReasonNodeUnreachable}},
		{"unreachable, tolerated", newPod("p", tolerate(TaintNodeUnreachable)), nodeInfo(node("n", unreachable)), nil},
	})
}

func TestNodeName(t *testing.T) {
	runFilter(t, NodeName{}, []filterCase{
		{"unset", newPod("p"), nodeInfo(node("n")), nil},
		{"match", newPod("p", boundTo("n")), nodeInfo(node("n")), nil},
		{"other", newPod("p", boundTo("m")), nodeInfo(node("n")), []string{ReasonNodeName}},
	})
}

func TestTaintTolerationFilter(t *testing.T) {
	db := taint("dedicated", "db", corev1.TaintEffectNoSchedule)
	tol := func(key string, op corev1.TolerationOperator, value string, effect corev1.TaintEffect) podOpt {
		return tolerations(corev1.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
	}
	untolerated := []string{"node(s) had untolerated taint {dedicated: db}"}
	runFilter(t, TaintToleration{}, []filterCase{
		{"no taints", newPod("p"), nodeInfo(node("n")), nil},
		{"untolerated", newPod("p"), nodeInfo(node("n", db)), untolerated},
		{"equal", newPod("p", tol("dedicated", corev1.TolerationOpEqual, "db", corev1.TaintEffectNoSchedule)), nodeInfo(node("n", db)), nil},
		{"empty operator is equal", newPod("p", tol("dedicated", "", "db", "")), nodeInfo(node("n", db)), nil},
		{"equal, other value", newPod("p", tol("dedicated", corev1.TolerationOpEqual, "web", "")), nodeInfo(node("n", db)), untolerated},
		{"exists", newPod("p", tol("dedicated", corev1.TolerationOpExists, "", "")), nodeInfo(node("n", db)), nil},
		{"empty key exists tolerates all", newPod("p", tol("", corev1.TolerationOpExists, "", "")),
			nodeInfo(node("n", db, taint("x", "", corev1.TaintEffectNoExecute))), nil},
		{"other effect", newPod("p", tol("dedicated", corev1.TolerationOpExists, "", corev1.TaintEffectNoExecute)), nodeInfo(node("n", db)), untolerated},
		{"other key", newPod("p", tol("team", corev1.TolerationOpExists, "", "")), nodeInfo(node("n", db)), untolerated},
		{"NoExecute must be tolerated", newPod("p"), nodeInfo(node("n", taint("gone", "", corev1.TaintEffectNoExecute))),
			[]string{"node(s) had untolerated taint {gone: }"}},
		{"PreferNoSchedule does not filter", newPod("p"), nodeInfo(node("n", taint("meh", "", corev1.TaintEffectPreferNoSchedule))), nil},
		{"the first untolerated taint is named", newPod("p", tol("dedicated", corev1.TolerationOpExists, "", "")),
			nodeInfo(node("n", db, taint("b", "2", corev1.TaintEffectNoSchedule), taint("a", "1", corev1.TaintEffectNoSchedule))),
			[]string{"node(s) had untolerated taint {b: 2}"}},
		{"Gt and Lt (alpha) never tolerate", newPod("p", tol("level", corev1.TolerationOpGt, "1", "")),
			nodeInfo(node("n", taint("level", "5", corev1.TaintEffectNoSchedule))), []string{"node(s) had untolerated taint {level: 5}"}},
	})
}

func TestNodeSelector(t *testing.T) {
	ssd := labels("disk", "ssd", "zone", "a")
	runFilter(t, NodeSelector{}, []filterCase{
		{"none", newPod("p"), nodeInfo(node("n")), nil},
		{"match", newPod("p", withNodeSelector("disk", "ssd")), nodeInfo(node("n", ssd)), nil},
		{"all must match", newPod("p", withNodeSelector("disk", "ssd", "zone", "b")), nodeInfo(node("n", ssd)), []string{ReasonAffinity}},
		{"missing label", newPod("p", withNodeSelector("gpu", "yes")), nodeInfo(node("n", ssd)), []string{ReasonAffinity}},
		{"empty value must exist", newPod("p", withNodeSelector("gpu", "")), nodeInfo(node("n", ssd)), []string{ReasonAffinity}},
	})
}

func TestNodeAffinityFilter(t *testing.T) {
	n := nodeInfo(node("n1", labels("zone", "a", "cores", "16", "disk", "ssd")))
	term := func(exprs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: exprs}
	}
	fields := func(op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", op, values...)}}
	}
	no := []string{ReasonAffinity}
	tests := []struct {
		name  string
		terms []corev1.NodeSelectorTerm
		want  []string
	}{
		{"In", []corev1.NodeSelectorTerm{term(expr("zone", corev1.NodeSelectorOpIn, "b", "a"))}, nil},
		{"In, no match", []corev1.NodeSelectorTerm{term(expr("zone", corev1.NodeSelectorOpIn, "b"))}, no},
		{"In, missing label", []corev1.NodeSelectorTerm{term(expr("rack", corev1.NodeSelectorOpIn, "1"))}, no},
		{"NotIn", []corev1.NodeSelectorTerm{term(expr("zone", corev1.NodeSelectorOpNotIn, "b"))}, nil},
		{"NotIn, match", []corev1.NodeSelectorTerm{term(expr("zone", corev1.NodeSelectorOpNotIn, "a"))}, no},
		{"NotIn, missing label", []corev1.NodeSelectorTerm{term(expr("rack", corev1.NodeSelectorOpNotIn, "1"))}, nil},
		{"Exists", []corev1.NodeSelectorTerm{term(expr("disk", corev1.NodeSelectorOpExists))}, nil},
		{"Exists, missing", []corev1.NodeSelectorTerm{term(expr("gpu", corev1.NodeSelectorOpExists))}, no},
		{"DoesNotExist", []corev1.NodeSelectorTerm{term(expr("gpu", corev1.NodeSelectorOpDoesNotExist))}, nil},
		{"DoesNotExist, present", []corev1.NodeSelectorTerm{term(expr("disk", corev1.NodeSelectorOpDoesNotExist))}, no},
		{"Gt", []corev1.NodeSelectorTerm{term(expr("cores", corev1.NodeSelectorOpGt, "8"))}, nil},
		{"Gt, equal", []corev1.NodeSelectorTerm{term(expr("cores", corev1.NodeSelectorOpGt, "16"))}, no},
		{"Lt", []corev1.NodeSelectorTerm{term(expr("cores", corev1.NodeSelectorOpLt, "32"))}, nil},
		{"Lt, greater", []corev1.NodeSelectorTerm{term(expr("cores", corev1.NodeSelectorOpLt, "4"))}, no},
		{"Gt on a non-number label", []corev1.NodeSelectorTerm{term(expr("zone", corev1.NodeSelectorOpGt, "1"))}, no},
		{"Gt with a non-number value is invalid", []corev1.NodeSelectorTerm{term(expr("cores", corev1.NodeSelectorOpGt, "x"))}, no},
		{"Gt with two values is invalid", []corev1.NodeSelectorTerm{term(expr("cores", corev1.NodeSelectorOpGt, "1", "2"))}, no},
		{"In without values is invalid", []corev1.NodeSelectorTerm{term(expr("zone", corev1.NodeSelectorOpIn))}, no},
		{"Exists with values is invalid", []corev1.NodeSelectorTerm{term(expr("zone", corev1.NodeSelectorOpExists, "a"))}, no},
		{"unknown operator", []corev1.NodeSelectorTerm{term(expr("zone", "Like", "a"))}, no},
		{"expressions are ANDed", []corev1.NodeSelectorTerm{term(expr("zone", corev1.NodeSelectorOpIn, "a"), expr("disk", corev1.NodeSelectorOpIn, "hdd"))}, no},
		{"terms are ORed", []corev1.NodeSelectorTerm{term(expr("zone", corev1.NodeSelectorOpIn, "b")), term(expr("disk", corev1.NodeSelectorOpIn, "ssd"))}, nil},
		{"an invalid term does not spoil the others", []corev1.NodeSelectorTerm{term(expr("zone", corev1.NodeSelectorOpIn)), term(expr("disk", corev1.NodeSelectorOpExists))}, nil},
		{"an empty term matches nothing", []corev1.NodeSelectorTerm{{}}, no},
		{"no terms match nothing", nil, no},
		{"matchFields In", []corev1.NodeSelectorTerm{fields(corev1.NodeSelectorOpIn, "n1")}, nil},
		{"matchFields In, other", []corev1.NodeSelectorTerm{fields(corev1.NodeSelectorOpIn, "n2")}, no},
		{"matchFields NotIn", []corev1.NodeSelectorTerm{fields(corev1.NodeSelectorOpNotIn, "n2")}, nil},
		{"matchFields NotIn, self", []corev1.NodeSelectorTerm{fields(corev1.NodeSelectorOpNotIn, "n1")}, no},
		{"matchFields with two values is invalid", []corev1.NodeSelectorTerm{fields(corev1.NodeSelectorOpIn, "n1", "n2")}, no},
		{"matchFields on another field is invalid", []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{
			expr("metadata.namespace", corev1.NodeSelectorOpIn, "n1")}}}, no},
		{"matchFields and expressions are ANDed", []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpIn, "a")},
			MatchFields:      []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "n2")}}}, no},
	}
	var cases []filterCase
	for _, tt := range tests {
		cases = append(cases, filterCase{tt.name, newPod("p", required(tt.terms...)), n, tt.want})
	}
	cases = append(cases, filterCase{"no affinity", newPod("p"), n, nil},
		filterCase{"preferred only does not filter", newPod("p", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
				{Weight: 1, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", corev1.NodeSelectorOpIn, "z")}}}}}}
		}), n, nil})
	runFilter(t, NodeAffinity{}, cases)
}

func TestNodePorts(t *testing.T) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	runFilter(t, NodePorts{}, []filterCase{
		{"no ports", newPod("p"), nodeInfo(node("n"), newPod("a", hostPort(80, "", tcp))), nil},
		{"container port only", newPod("p", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}}
		}), nodeInfo(node("n"), newPod("a", hostPort(80, "", tcp))), nil},
		{"free", newPod("p", hostPort(81, "", tcp)), nodeInfo(node("n"), newPod("a", hostPort(80, "", tcp))), nil},
		{"taken", newPod("p", hostPort(80, "", "")), nodeInfo(node("n"), newPod("a", hostPort(80, "", tcp))), []string{ReasonPorts}},
		{"other protocol", newPod("p", hostPort(53, "", udp)), nodeInfo(node("n"), newPod("a", hostPort(53, "", tcp))), nil},
		{"other IPs", newPod("p", hostPort(80, "10.0.0.2", tcp)), nodeInfo(node("n"), newPod("a", hostPort(80, "10.0.0.1", tcp))), nil},
		{"same IP", newPod("p", hostPort(80, "10.0.0.1", tcp)), nodeInfo(node("n"), newPod("a", hostPort(80, "10.0.0.1", tcp))), []string{ReasonPorts}},
		{"wildcard wanted", newPod("p", hostPort(80, "0.0.0.0", tcp)), nodeInfo(node("n"), newPod("a", hostPort(80, "10.0.0.1", tcp))), []string{ReasonPorts}},
		{"wildcard used", newPod("p", hostPort(80, "10.0.0.1", tcp)), nodeInfo(node("n"), newPod("a", hostPort(80, "", tcp))), []string{ReasonPorts}},
		{"sidecar ports count", newPod("p", hostPort(80, "", tcp)), nodeInfo(node("n"), newPod("a", func(p *corev1.Pod) {
			always := corev1.ContainerRestartPolicyAlways
			p.Spec.InitContainers = []corev1.Container{{Name: "s", RestartPolicy: &always, Ports: []corev1.ContainerPort{{HostPort: 80, ContainerPort: 80}}}}
		})), []string{ReasonPorts}},
		{"init container ports do not", newPod("p", hostPort(80, "", tcp)), nodeInfo(node("n"), newPod("a", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i", Ports: []corev1.ContainerPort{{HostPort: 80, ContainerPort: 80}}}}
		})), nil},
	})
}

func TestNodeResourcesFit(t *testing.T) {
	small := func(n *Node) { n.Allocatable = nodeapi.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, Pods: 2} }
	gpu := func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
	}
	runFilter(t, NodeResourcesFit{}, []filterCase{
		{"fits", newPod("p", requests("500m", "512Mi")), nodeInfo(node("n", small), newPod("a", requests("500m", "512Mi"))), nil},
		{"cpu", newPod("p", requests("501m", "")), nodeInfo(node("n", small), newPod("a", requests("500m", ""))), []string{ReasonInsufficientCPU}},
		{"memory", newPod("p", requests("", "513Mi")), nodeInfo(node("n", small), newPod("a", requests("", "512Mi"))), []string{ReasonInsufficientMemory}},
		{"everything", newPod("p", requests("2", "2Gi")), nodeInfo(node("n", small), newPod("a"), newPod("b")),
			[]string{ReasonTooManyPods, ReasonInsufficientCPU, ReasonInsufficientMemory}},
		{"best effort fits an overcommitted node", newPod("p"), nodeInfo(node("n", small), newPod("a", requests("3", "3Gi"))), nil},
		{"zero cpu request skips the cpu check", newPod("p", requests("0", "1Mi")), nodeInfo(node("n", small), newPod("a", requests("3", ""))), nil},
		{"no pod slots", newPod("p"), nodeInfo(node("n", allocatable(1000, 1<<30, 0))), []string{ReasonTooManyPods}},
		{"limits default requests", newPod("p", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"cpu": resource.MustParse("2")}
		}), nodeInfo(node("n", small)), []string{ReasonInsufficientCPU}},
		{"extended resources are never available", newPod("p", gpu), nodeInfo(node("n")), []string{"Insufficient nvidia.com/gpu"}},
	})
}

func TestPodRequests(t *testing.T) {
	c := func(name, cpu, mem string) corev1.Container {
		rl := corev1.ResourceList{}
		if cpu != "" {
			rl["cpu"] = resource.MustParse(cpu)
		}
		if mem != "" {
			rl["memory"] = resource.MustParse(mem)
		}
		return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: rl}}
	}
	sidecar := func(ct corev1.Container) corev1.Container {
		always := corev1.ContainerRestartPolicyAlways
		ct.RestartPolicy = &always
		return ct
	}
	const mi = 1 << 20
	tests := []struct {
		name            string
		init, main      []corev1.Container
		overhead        corev1.ResourceList
		podLevel        *corev1.ResourceRequirements
		actual, nonZero Requests
	}{
		{"containers are summed", nil, []corev1.Container{c("a", "100m", "64Mi"), c("b", "200m", "")},
			nil, nil, Requests{MilliCPU: 300, Memory: 64 * mi}, Requests{MilliCPU: 300, Memory: 264 * mi}},
		{"nothing requested", nil, []corev1.Container{c("a", "", "")},
			nil, nil, Requests{}, Requests{MilliCPU: DefaultMilliCPURequest, Memory: DefaultMemoryRequest}},
		{"explicit zero is not defaulted", nil, []corev1.Container{c("a", "0", "0")},
			nil, nil, Requests{}, Requests{}},
		{"the largest init container wins per resource", []corev1.Container{c("i1", "2", "10Mi"), c("i2", "500m", "1Gi")},
			[]corev1.Container{c("a", "1", "100Mi")},
			nil, nil, Requests{MilliCPU: 2000, Memory: 1024 * mi}, Requests{MilliCPU: 2000, Memory: 1024 * mi}},
		{"sidecars add up and run beside later init containers", []corev1.Container{sidecar(c("s", "300m", "100Mi")), c("i", "1", "50Mi")},
			[]corev1.Container{c("a", "200m", "100Mi")},
			nil, nil, Requests{MilliCPU: 1300, Memory: 200 * mi}, Requests{MilliCPU: 1300, Memory: 200 * mi}},
		{"overhead is added", nil, []corev1.Container{c("a", "100m", "")},
			corev1.ResourceList{"cpu": resource.MustParse("250m"), "memory": resource.MustParse("10Mi")}, nil,
			Requests{MilliCPU: 350, Memory: 10 * mi}, Requests{MilliCPU: 350, Memory: 210 * mi}},
		{"pod-level requests win", nil, []corev1.Container{c("a", "100m", "1Gi")}, nil,
			&corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resource.MustParse("3")}},
			Requests{MilliCPU: 3000, Memory: 1024 * mi}, Requests{MilliCPU: 3000, Memory: 1024 * mi}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &corev1.Pod{Spec: corev1.PodSpec{InitContainers: tt.init, Containers: tt.main, Overhead: tt.overhead, Resources: tt.podLevel}}
			actual, nonZero := podRequests(p)
			if diff := cmp.Diff(tt.actual, actual); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.nonZero, nonZero); diff != "" {
				t.Errorf("non-zero requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScores(t *testing.T) {
	pref := func(weight int32, exprs ...corev1.NodeSelectorRequirement) corev1.PreferredSchedulingTerm {
		return corev1.PreferredSchedulingTerm{Weight: weight, Preference: corev1.NodeSelectorTerm{MatchExpressions: exprs}}
	}
	preferred := func(terms ...corev1.PreferredSchedulingTerm) podOpt {
		return func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: terms}}
		}
	}
	half := node("n", allocatable(4000, 4<<30, 110))
	tests := []struct {
		name   string
		plugin ScorePlugin
		pod    *corev1.Pod
		node   *NodeInfo
		want   int64
	}{
		// (4000-1000)*100/4000 = 75, (4096-1024)*100/4096 = 75 → 75.
		{"least allocated", LeastAllocated{}, newPod("p", requests("1", "1Gi")), nodeInfo(half), 75},
		// Already 1 cpu + 3 GiB used: cpu (4000-2000)/4000 = 50, memory 0 → 25.
		{"least allocated, counting the node's pods", LeastAllocated{}, newPod("p", requests("1", "1Gi")),
			nodeInfo(half, newPod("a", requests("1", "3Gi"))), 25},
		// Nothing requested counts as 100m and 200Mi: (3900*100/4000)=97, (4096-200)*100/4096=95 → 96.
		{"least allocated, non-zero defaults", LeastAllocated{}, newPod("p"), nodeInfo(half), 96},
		{"least allocated, overcommitted", LeastAllocated{}, newPod("p", requests("5", "1Gi")), nodeInfo(half), 37},
		{"least allocated, no allocatable", LeastAllocated{}, newPod("p"), nodeInfo(node("n", allocatable(0, 0, 1))), 0},
		{"balanced, equal fractions", BalancedAllocation{}, newPod("p", requests("1", "1Gi")), nodeInfo(half), 100},
		// cpu 0.5, memory 0.25: std 0.125 → 87.
		{"balanced, unequal fractions", BalancedAllocation{}, newPod("p", requests("2", "1Gi")), nodeInfo(half), 87},
		// cpu 2/4 capped at 1 is not needed; memory 8 GiB of 4 capped at 1: |0.25-1|/2 = 0.375 → 62.
		{"balanced, fraction capped at 1", BalancedAllocation{}, newPod("p", requests("1", "8Gi")), nodeInfo(half), 62},
		{"balanced, one resource only", BalancedAllocation{}, newPod("p", requests("1", "1Gi")), nodeInfo(node("n", allocatable(4000, 0, 1))), 100},
		{"affinity weights summed", NodeAffinity{}, newPod("p", preferred(
			pref(10, expr("zone", corev1.NodeSelectorOpIn, "a")), pref(5, expr("disk", corev1.NodeSelectorOpExists)),
			pref(50, expr("zone", corev1.NodeSelectorOpIn, "b")))), nodeInfo(node("n", labels("zone", "a", "disk", "ssd"))), 15},
		{"untolerated PreferNoSchedule counted", TaintToleration{}, newPod("p", tolerations(
			corev1.Toleration{Key: "a", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectPreferNoSchedule},
			corev1.Toleration{Key: "b", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})),
			nodeInfo(node("n", taint("a", "", corev1.TaintEffectPreferNoSchedule), taint("b", "", corev1.TaintEffectPreferNoSchedule),
				taint("c", "", corev1.TaintEffectPreferNoSchedule), taint("d", "", corev1.TaintEffectNoSchedule))), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.plugin.Score(NewPodInfo(tt.pod), tt.node); got != tt.want {
				t.Errorf("%s.Score = %d, want %d", tt.plugin.Name(), got, tt.want)
			}
		})
	}
	if (BalancedAllocation{}).PreScore(NewPodInfo(newPod("p"))) {
		t.Error("BalancedAllocation scores best-effort pods")
	}
	if (NodeAffinity{}).PreScore(NewPodInfo(newPod("p"))) {
		t.Error("NodeAffinity scores pods without preferences")
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		in      []int64
		reverse bool
		want    []int64
	}{
		{[]int64{0, 5, 10}, false, []int64{0, 50, 100}},
		{[]int64{0, 5, 10}, true, []int64{100, 50, 0}},
		{[]int64{1, 3}, false, []int64{33, 100}},
		{[]int64{0, 0}, false, []int64{0, 0}},
		{[]int64{0, 0}, true, []int64{100, 100}},
	}
	for _, tt := range tests {
		got := append([]int64(nil), tt.in...)
		normalize(got, tt.reverse)
		if !cmp.Equal(got, tt.want) {
			t.Errorf("normalize(%v, %v) = %v, want %v", tt.in, tt.reverse, got, tt.want)
		}
	}
}

func TestPreFilters(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"plain", newPod("p"), ""},
		{"default scheduler", newPod("p", func(p *corev1.Pod) { p.Spec.SchedulerName = corev1.DefaultSchedulerName }), ""},
		{"everything unsupported", newPod("p", func(p *corev1.Pod) {
			p.Spec.ResourceClaims = []corev1.PodResourceClaim{{}}
			p.Spec.SchedulingGroup = &corev1.PodSchedulingGroup{}
			p.Spec.SchedulerName = "volcano"
		}), "pod uses spec.resourceClaims, spec.schedulingGroup, which clusterctl's scheduler does not support; " +
			`pod asks for scheduler "volcano"; clusterctl only implements default-scheduler`},
		{"pod affinity and topology spread are supported", newPod("p", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{}, PodAntiAffinity: &corev1.PodAntiAffinity{}}
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{}}
		}), ""},
	}
	for _, tt := range tests {
		if got := (Unsupported{}).PreFilter(NewPodInfo(tt.pod)); got != tt.want {
			t.Errorf("%s: PreFilter = %q, want %q", tt.name, got, tt.want)
		}
	}
	gated := newPod("p", func(p *corev1.Pod) {
		p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/a"}, {Name: "example.com/b"}}
	})
	if got, want := (SchedulingGates{}).PreEnqueue(NewPodInfo(gated)),
		"scheduling is blocked due to non-empty scheduling gates: example.com/a, example.com/b"; got != want {
		t.Errorf("PreEnqueue = %q, want %q", got, want)
	}
}
