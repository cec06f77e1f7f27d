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

// ServiceAllocation is what AllocateServices needs about one Service:
// the object (whose spec.clusterIP and ports' nodePort it fills in) and,
// when it was stored before, the stored one (whose allocations it keeps).
type ServiceAllocation struct {
	Service *corev1.Service
	Stored  *corev1.Service // nil for a new Service
}

// AllocateServices fills in the cluster IP and node ports of every Service
// in apply that lacks them, the way the API server does: a value written in
// the manifest is used (and must be free); otherwise the stored Service's
// value is kept (re-applying a manifest without clusterIP keeps the IP);
// otherwise the lowest free one is taken. others are the stored Services
// not being applied; their allocations are in use. Changing an allocated
// cluster IP is refused, as on Kubernetes (the field is immutable).
// Headless Services get no IP; ClusterIP Services lose their node ports.
func AllocateServices(cidr netip.Prefix, apply []ServiceAllocation, others []*corev1.Service) error {
	var errs []error
	ipKeys := []string{}
	requested := map[string]netip.Addr{}
	existing := map[string]netip.Addr{}
	portKeys := []string{}
	reqPorts := map[string]int32{}
	oldPorts := map[string]int32{}
	key := func(s *corev1.Service) string { return s.Namespace + "/" + s.Name }
	portKey := func(s *corev1.Service, p corev1.ServicePort) string {
		return fmt.Sprintf("%s/%s/%d/%s", key(s), p.Name, p.Port, p.Protocol)
	}
	// Others first: their allocations are fixed.
	for _, s := range others {
		if ip, err := netip.ParseAddr(s.Spec.ClusterIP); err == nil {
			k := key(s)
			ipKeys = append(ipKeys, k)
			requested[k] = ip
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 {
				k := portKey(s, p)
				portKeys = append(portKeys, k)
				reqPorts[k] = p.NodePort
			}
		}
	}
	for _, a := range apply {
		s, old := a.Service, a.Stored
		k := key(s)
		if old != nil && old.Spec.ClusterIP != "" && s.Spec.ClusterIP != "" && s.Spec.ClusterIP != old.Spec.ClusterIP {
			errs = append(errs, fmt.Errorf("service %s: spec.clusterIP: field is immutable (is %s, manifest says %s); delete the service to change it",
				k, old.Spec.ClusterIP, s.Spec.ClusterIP))
			continue
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		ipKeys = append(ipKeys, k)
		if ip, err := netip.ParseAddr(s.Spec.ClusterIP); err == nil {
			requested[k] = ip
		} else if old != nil {
			if ip, err := netip.ParseAddr(old.Spec.ClusterIP); err == nil {
				existing[k] = ip
			}
		}
		if s.Spec.Type != corev1.ServiceTypeNodePort {
			for i := range s.Spec.Ports {
				s.Spec.Ports[i].NodePort = 0
			}
			continue
		}
		for _, p := range s.Spec.Ports {
			pk := portKey(s, p)
			portKeys = append(portKeys, pk)
			if p.NodePort != 0 {
				reqPorts[pk] = p.NodePort
				continue
			}
			if old == nil {
				continue
			}
			for _, op := range old.Spec.Ports { // kept by port name, as kubectl apply does
				if op.Name == p.Name && op.Protocol == p.Protocol && op.NodePort != 0 {
					oldPorts[pk] = op.NodePort
				}
			}
		}
	}
	ips, err := AllocateClusterIPs(cidr, ipKeys, requested, existing)
	if err != nil {
		errs = append(errs, err)
	}
	ports, err := AllocateNodePorts(portKeys, reqPorts, oldPorts)
	if err != nil {
		errs = append(errs, err)
	}
	for _, a := range apply {
		s := a.Service
		if ip, ok := ips[key(s)]; ok && s.Spec.ClusterIP != corev1.ClusterIPNone {
			s.Spec.ClusterIP = ip.String()
			s.Spec.ClusterIPs = []string{ip.String()}
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			s.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
		}
		if s.Spec.Type == corev1.ServiceTypeNodePort {
			for i, p := range s.Spec.Ports {
				if np, ok := ports[portKey(s, p)]; ok {
					s.Spec.Ports[i].NodePort = np
				}
			}
		}
	}
	return errors.Join(errs...)
}
