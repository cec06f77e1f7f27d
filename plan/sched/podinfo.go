package sched

import (
	"cmp"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Requests used by the scoring plugins for containers that request no cpu or
// no memory, so that such pods still spread (kube-scheduler's
// DefaultMilliCPURequest and DefaultMemoryRequest).
const (
	DefaultMilliCPURequest = 100
	DefaultMemoryRequest   = 200 << 20
)

// Requests is an amount of requested resources.
type Requests struct {
	MilliCPU int64
	Memory   int64
	// Scalar holds the other resources requested (extended resources,
	// hugepages), sorted by name. ephemeral-storage is not accounted.
	Scalar []ScalarRequest
}

// ScalarRequest is a request for a resource other than cpu and memory.
type ScalarRequest struct {
	Name     corev1.ResourceName
	Quantity int64
}

// HostPort is a port a pod takes on its node.
type HostPort struct {
	IP       string // "0.0.0.0" when the pod did not name one
	Protocol corev1.Protocol
	Port     int32
}

// PodInfo is a pod with what the plugins need computed once.
type PodInfo struct {
	Pod *corev1.Pod
	Key string // namespace/name
	// Requests is Kubernetes' effective request: containers summed, the
	// largest init container (with sidecars) if more, plus overhead.
	Requests Requests
	// NonZero is Requests with DefaultMilliCPURequest and
	// DefaultMemoryRequest for containers that set none (for scoring).
	NonZero   Requests
	HostPorts []HostPort
	// required is the parsed required node affinity; nil when there is none.
	required *nodeSelector
	// preferred are the parsed preferred node affinity terms.
	preferred []preferredTerm

	// The parsed inter-pod affinity terms; invalid ones are left out and
	// reported in affinityErrs.
	requiredAffinity, requiredAntiAffinity   []affinityTerm
	preferredAffinity, preferredAntiAffinity []weightedAffinityTerm
	affinityErrs                             []string
	// The parsed topology spread constraints, by whenUnsatisfiable;
	// invalid ones are left out and reported in spreadErrs.
	hardSpread, softSpread []spreadConstraint
	spreadErrs             []string

	// State is what ClusterPreFilter and ClusterPreScorer plugins computed
	// for the pod's current scheduling cycle; the framework clears it when
	// the cycle starts.
	State CycleState
}

// writeState keeps a plugin's state for the pod's scheduling cycle.
func (p *PodInfo) writeState(plugin string, v any) {
	if p.State == nil {
		p.State = CycleState{}
	}
	p.State[plugin] = v
}

// NewPodInfo precomputes what the plugins need from a pod.
func NewPodInfo(p *corev1.Pod) *PodInfo {
	pi := &PodInfo{Pod: p, Key: p.Namespace + "/" + p.Name}
	pi.Requests, pi.NonZero = podRequests(p)
	hostPorts := func(c *corev1.Container) {
		for _, cp := range c.Ports {
			if cp.HostPort <= 0 {
				continue
			}
			hp := HostPort{IP: cmp.Or(cp.HostIP, "0.0.0.0"), Protocol: cmp.Or(cp.Protocol, corev1.ProtocolTCP), Port: cp.HostPort}
			pi.HostPorts = append(pi.HostPorts, hp)
		}
	}
	for i := range p.Spec.Containers {
		hostPorts(&p.Spec.Containers[i])
	}
	for i := range p.Spec.InitContainers {
		if c := &p.Spec.InitContainers[i]; isSidecar(c) { // sidecars keep their ports while the pod runs
			hostPorts(c)
		}
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		if r := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; r != nil {
			pi.required = newNodeSelector(r.NodeSelectorTerms)
		}
		for _, t := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if t.Weight == 0 {
				continue
			}
			pi.preferred = append(pi.preferred, preferredTerm{weight: int64(t.Weight), term: newSelectorTerm(t.Preference)})
		}
	}
	pi.parseAffinity()
	pi.parseSpread()
	return pi
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// amounts is a resource vector keyed by name while requests are summed.
type amounts map[corev1.ResourceName]int64

func (a amounts) add(b amounts) {
	for k, v := range b {
		a[k] += v
	}
}

func (a amounts) max(b amounts) {
	for k, v := range b {
		if v > a[k] {
			a[k] = v
		}
	}
}

// containerRequests returns a container's requests, defaulted from its
// limits as the API server does; nonZero also fills in the scoring defaults
// for missing cpu and memory.
func containerRequests(c *corev1.Container, nonZero bool) amounts {
	out := amounts{}
	for name, q := range c.Resources.Limits {
		out[name] = quantity(name, q)
	}
	for name, q := range c.Resources.Requests {
		out[name] = quantity(name, q)
	}
	if nonZero {
		if _, ok := out[corev1.ResourceCPU]; !ok {
			out[corev1.ResourceCPU] = DefaultMilliCPURequest
		}
		if _, ok := out[corev1.ResourceMemory]; !ok {
			out[corev1.ResourceMemory] = DefaultMemoryRequest
		}
	}
	return out
}

func quantity(name corev1.ResourceName, q resource.Quantity) int64 {
	if name == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// podRequests is Kubernetes' resource helper PodRequests: the sum of the
// containers (sidecar init containers included), or more if an init
// container needs more while it runs next to the sidecars started before
// it, plus the pod overhead. Pod-level requests, where set, win for cpu
// and memory.
func podRequests(p *corev1.Pod) (actual, nonZero Requests) {
	if r, nz, ok := plainRequests(p); ok {
		return r, nz
	}
	return mapRequests(p)
}

// mapRequests is podRequests for any pod.
func mapRequests(p *corev1.Pod) (actual, nonZero Requests) {
	compute := func(nz bool) Requests {
		reqs := amounts{}
		for i := range p.Spec.Containers {
			reqs.add(containerRequests(&p.Spec.Containers[i], nz))
		}
		sidecars, initMax := amounts{}, amounts{}
		for i := range p.Spec.InitContainers {
			c := &p.Spec.InitContainers[i]
			cr := containerRequests(c, nz)
			if isSidecar(c) {
				reqs.add(cr)
				sidecars.add(cr)
				cr = maps.Clone(sidecars)
			} else {
				cr.add(sidecars)
			}
			initMax.max(cr)
		}
		reqs.max(initMax)
		if pr := p.Spec.Resources; pr != nil {
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := pr.Requests[name]; ok {
					reqs[name] = quantity(name, q)
				} else if q, ok := pr.Limits[name]; ok {
					reqs[name] = quantity(name, q)
				}
			}
		}
		for name, q := range p.Spec.Overhead {
			reqs[name] += quantity(name, q)
		}
		out := Requests{MilliCPU: reqs[corev1.ResourceCPU], Memory: reqs[corev1.ResourceMemory]}
		for _, name := range slices.Sorted(maps.Keys(reqs)) {
			switch name {
			case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage:
				continue
			}
			if v := reqs[name]; v > 0 {
				out.Scalar = append(out.Scalar, ScalarRequest{Name: name, Quantity: v})
			}
		}
		return out
	}
	return compute(false), compute(true)
}

// plainRequests is podRequests for the common pod, computed without maps:
// no init containers, overhead or pod-level resources, and containers
// that name no resources but cpu and memory. ok is false for other pods.
func plainRequests(p *corev1.Pod) (actual, nonZero Requests, ok bool) {
	if len(p.Spec.InitContainers) > 0 || len(p.Spec.Overhead) > 0 || p.Spec.Resources != nil {
		return Requests{}, Requests{}, false
	}
	for i := range p.Spec.Containers {
		res := &p.Spec.Containers[i].Resources
		for _, rl := range []corev1.ResourceList{res.Requests, res.Limits} {
			for name := range rl {
				if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
					return Requests{}, Requests{}, false
				}
			}
		}
		// A request, else the limit it defaults to, else nothing (the
		// scoring default for nonZero).
		get := func(name corev1.ResourceName, def int64) (int64, int64) {
			q, ok := res.Requests[name]
			if !ok {
				q, ok = res.Limits[name]
			}
			if !ok {
				return 0, def
			}
			v := quantity(name, q)
			return v, v
		}
		cpu, nzCPU := get(corev1.ResourceCPU, DefaultMilliCPURequest)
		mem, nzMem := get(corev1.ResourceMemory, DefaultMemoryRequest)
		actual.MilliCPU += cpu
		actual.Memory += mem
		nonZero.MilliCPU += nzCPU
		nonZero.Memory += nzMem
	}
	return actual, nonZero, true
}

// NodeInfo is a node with the pods placed on it so far.
type NodeInfo struct {
	Node *Node
	// Requested sums the pods' Requests; NonZeroRequested their NonZero.
	Requested        Requests
	NonZeroRequested Requests
	Pods             int64
	UsedPorts        []HostPort
	// PodInfos are the pods, in the order they were added; of them,
	// PodsWithAffinity are those with pod affinity or anti-affinity terms
	// and PodsWithRequiredAntiAffinity those with required anti-affinity.
	PodInfos                     []*PodInfo
	PodsWithAffinity             []*PodInfo
	PodsWithRequiredAntiAffinity []*PodInfo
}

// Add accounts a pod to the node.
func (n *NodeInfo) Add(p *PodInfo) {
	n.Requested.MilliCPU += p.Requests.MilliCPU
	n.Requested.Memory += p.Requests.Memory
	n.NonZeroRequested.MilliCPU += p.NonZero.MilliCPU
	n.NonZeroRequested.Memory += p.NonZero.Memory
	for _, s := range p.Requests.Scalar {
		i := slices.IndexFunc(n.Requested.Scalar, func(x ScalarRequest) bool { return x.Name == s.Name })
		if i < 0 {
			n.Requested.Scalar = append(n.Requested.Scalar, s)
			continue
		}
		n.Requested.Scalar[i].Quantity += s.Quantity
	}
	n.Pods++
	n.UsedPorts = append(n.UsedPorts, p.HostPorts...)
	n.PodInfos = append(n.PodInfos, p)
	if p.hasPodAffinity() {
		n.PodsWithAffinity = append(n.PodsWithAffinity, p)
	}
	if len(p.requiredAntiAffinity) > 0 {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, p)
	}
}

// scalar returns the amount of a scalar resource in r.
func (r *Requests) scalar(name corev1.ResourceName) int64 {
	for _, s := range r.Scalar {
		if s.Name == name {
			return s.Quantity
		}
	}
	return 0
}
