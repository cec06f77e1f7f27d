package plan

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// NodePort range, as Kubernetes' default --service-node-port-range.
const (
	NodePortMin = 30000
	NodePortMax = 32767
)

// AllocateClusterIPs gives every service key a ClusterIP from cidr. A
// requested IP (spec.clusterIP) must be free and inside cidr; an existing
// allocation is kept; the rest get the lowest free address in key order. The
// network address and the first address (Kubernetes' "kubernetes" service)
// are never handed out. Headless services are not passed in.
func AllocateClusterIPs(cidr netip.Prefix, keys []string, requested, existing map[string]netip.Addr) (map[string]netip.Addr, error) {
	cidr = cidr.Masked()
	out := make(map[string]netip.Addr, len(keys))
	used := map[netip.Addr]string{}
	var errs []error
	take := func(key string, ip netip.Addr) bool {
		if !cidr.Contains(ip) {
			errs = append(errs, fmt.Errorf("allocate cluster IP for %s: %s is not in the service CIDR %s", key, ip, cidr))
			return false
		}
		if other, dup := used[ip]; dup {
			errs = append(errs, fmt.Errorf("allocate cluster IP for %s: %s is already used by %s", key, ip, other))
			return false
		}
		used[ip], out[key] = key, ip
		return true
	}
	sorted := slices.Sorted(slices.Values(keys))
	for _, k := range sorted { // explicit requests first, then kept allocations
		if ip, ok := requested[k]; ok {
			take(k, ip)
		}
	}
	for _, k := range sorted {
		if _, done := out[k]; done {
			continue
		}
		if _, req := requested[k]; req {
			continue
		}
		if ip, ok := existing[k]; ok && cidr.Contains(ip) && used[ip] == "" {
			take(k, ip)
		}
	}
	next := cidr.Addr().Next().Next() // skip the network address and .1
	for _, k := range sorted {
		if _, done := out[k]; done {
			continue
		}
		if _, req := requested[k]; req {
			continue
		}
		for ; cidr.Contains(next) && used[next] != ""; next = next.Next() {
		}
		if !cidr.Contains(next) {
			errs = append(errs, fmt.Errorf("allocate cluster IP for %s: service CIDR %s is full (%d in use)", k, cidr, len(used)))
			continue
		}
		take(k, next)
	}
	return out, errors.Join(errs...)
}

// AllocateNodePorts gives every key ("ns/name/portName") a node port in
// [NodePortMin, NodePortMax]: requested ports must be free, existing ones are
// kept, the rest get the lowest free port in key order.
func AllocateNodePorts(keys []string, requested, existing map[string]int32) (map[string]int32, error) {
	out := make(map[string]int32, len(keys))
	used := map[int32]string{}
	var errs []error
	sorted := slices.Sorted(slices.Values(keys))
	for _, k := range sorted {
		p, ok := requested[k]
		if !ok {
			continue
		}
		switch other, dup := used[p]; {
		case p < NodePortMin || p > NodePortMax:
			errs = append(errs, fmt.Errorf("allocate node port for %s: %d is outside %d-%d", k, p, NodePortMin, NodePortMax))
		case dup:
			errs = append(errs, fmt.Errorf("allocate node port for %s: %d is already used by %s", k, p, other))
		default:
			used[p], out[k] = k, p
		}
	}
	for _, k := range sorted {
		if _, req := requested[k]; req {
			continue
		}
		if p, ok := existing[k]; ok && p >= NodePortMin && p <= NodePortMax && used[p] == "" {
			used[p], out[k] = k, p
		}
	}
	next := int32(NodePortMin)
	for _, k := range sorted {
		if _, done := out[k]; done {
			continue
		}
		if _, req := requested[k]; req {
			continue
		}
		for ; next <= NodePortMax && used[next] != ""; next++ {
		}
		if next > NodePortMax {
			errs = append(errs, fmt.Errorf("allocate node port for %s: all %d node ports are in use", k, NodePortMax-NodePortMin+1))
			continue
		}
		used[next], out[k] = k, next
	}
	return out, errors.Join(errs...)
}

// PodEndpoint is what the planner knows about a pod that may back a Service.
type PodEndpoint struct {
	Pod   *corev1.Pod
	IP    string // as its node reports it; "" when not running yet
	Ready bool   // the pod's Ready condition as its node reports it
}

// Endpoints selects the pods backing svc (same namespace, selector matches,
// bound and with an IP) and resolves each service port's targetPort for each
// pod (named targetPorts are looked up in the pod's container ports; a pod
// without that name does not serve that port, as in Kubernetes). Services
// without a selector get no endpoints here (manual Endpoints objects are
// handled by the caller). Endpoints are sorted by IP.
func Endpoints(svc *corev1.Service, pods []PodEndpoint) []nodeapi.Endpoint {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var eps []nodeapi.Endpoint
	for _, pe := range pods {
		p := pe.Pod
		if p.Namespace != svc.Namespace || p.Spec.NodeName == "" || pe.IP == "" || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		ep := nodeapi.Endpoint{IP: pe.IP, NodeName: p.Spec.NodeName, Ready: pe.Ready, PodUID: string(p.UID), Ports: map[string]int32{}}
		if p.Spec.Subdomain == svc.Name {
			ep.Hostname = p.Spec.Hostname
			if ep.Hostname == "" {
				ep.Hostname = p.Name
			}
		}
		for _, sp := range svc.Spec.Ports {
			if port, ok := targetPort(sp, p); ok {
				ep.Ports[sp.Name] = port
			}
		}
		eps = append(eps, ep)
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].IP < eps[j].IP })
	return eps
}

// targetPort resolves a service port's targetPort on one pod.
func targetPort(sp corev1.ServicePort, p *corev1.Pod) (int32, bool) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.Int && tp.IntVal == 0:
		return sp.Port, true // unset: same as port
	case tp.Type == intstr.Int:
		return tp.IntVal, true
	}
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			cpProto := cp.Protocol
			if cpProto == "" {
				cpProto = corev1.ProtocolTCP
			}
			if cp.Name == tp.StrVal && cpProto == proto {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}
