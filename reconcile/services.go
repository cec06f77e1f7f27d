package reconcile

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/plan"
)

// ObservedPods indexes what nodes report about their pods by node and pod
// UID (ObservedKey): a pod is only believed on the node it is bound to (a
// node may still be stopping a pod that moved).
func ObservedPods(statuses map[string]*nodeapi.NodeStatus) map[string]ObservedPod {
	out := map[string]ObservedPod{}
	for node, st := range statuses {
		if st == nil {
			continue
		}
		for i := range st.Pods {
			p := &st.Pods[i]
			out[ObservedKey(node, p.UID)] = ObservedPod{Node: node, Status: p}
		}
	}
	return out
}

// ObservedKey is the key of a pod's observation in ObservedPods.
func ObservedKey(node, uid string) string { return node + "/" + uid }

// ObservedPod is one pod as a node reports it.
type ObservedPod struct {
	Node   string
	Status *nodeapi.PodStatus
}

// NodeIP is the host's cluster-facing address: the one `up` recorded, else
// the inventory address when it is an IPv4 literal.
func NodeIP(inv *inventory.Inventory, h inventory.Host) (netip.Addr, bool) {
	if a := inv.HostState(h.Name).InternalIP; a.IsValid() {
		return a, true
	}
	a, err := netip.ParseAddr(h.Address)
	return a, err == nil && a.Is4()
}

// peers lists every host with a pod CIDR and an address, for host-gw
// routes (each node skips itself).
func peers(inv *inventory.Inventory) []nodeapi.Peer {
	var out []nodeapi.Peer
	for _, h := range inv.Hosts {
		cidr := inv.HostState(h.Name).PodCIDR
		ip, ok := NodeIP(inv, h)
		if !cidr.IsValid() || !ok {
			continue
		}
		out = append(out, nodeapi.Peer{Name: h.Name, Address: ip.String(), PodCIDR: cidr.String()})
	}
	return out
}

// ServiceSpecs lowers every Service that has a cluster IP (allocated at
// apply) with its endpoints: the pods its selector matches as their nodes
// report them, or, for a Service without a selector, the addresses of its
// Endpoints object or its EndpointSlices. Sorted by namespace/name.
func ServiceSpecs(cl *Cluster, observed map[string]ObservedPod) []nodeapi.ServiceSpec {
	var podEndpoints []plan.PodEndpoint
	for _, p := range cl.Pods {
		o, ok := observed[ObservedKey(p.Spec.NodeName, string(p.UID))]
		if !ok || p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
			continue
		}
		podEndpoints = append(podEndpoints, plan.PodEndpoint{Pod: p, IP: o.Status.PodIP, Ready: o.Status.Ready()})
	}
	var out []nodeapi.ServiceSpec
	for _, key := range SortedKeys(cl.Services) {
		svc := cl.Services[key]
		if svc.Spec.ClusterIP == "" {
			continue // not allocated yet
		}
		s := nodeapi.ServiceSpec{Namespace: svc.Namespace, Name: svc.Name, Type: string(svc.Spec.Type), ClusterIP: svc.Spec.ClusterIP,
			ExternalTrafficPolicyLocal: svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal}
		if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			s.SessionAffinityTimeout = 10800
			if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
				s.SessionAffinityTimeout = *c.ClientIP.TimeoutSeconds
			}
		}
		for _, p := range svc.Spec.Ports {
			s.Ports = append(s.Ports, nodeapi.ServicePort{Name: p.Name, Protocol: string(p.Protocol), Port: p.Port, NodePort: p.NodePort})
		}
		if len(svc.Spec.Selector) > 0 {
			s.Endpoints = plan.Endpoints(svc, podEndpoints)
		} else {
			s.Endpoints = manualEndpoints(svc, cl)
		}
		out = append(out, s)
	}
	return out
}

// manualEndpoints are the addresses of a selector-less Service's Endpoints
// object (same name) and EndpointSlices (label kubernetes.io/service-name),
// with the service's ports resolved by port name, deduplicated by IP.
func manualEndpoints(svc *corev1.Service, cl *Cluster) []nodeapi.Endpoint {
	byIP := map[string]*nodeapi.Endpoint{}
	add := func(ip, hostname, node string, ready bool, ports map[string]int32) {
		e, ok := byIP[ip]
		if !ok {
			e = &nodeapi.Endpoint{IP: ip, NodeName: node, Ready: ready, Hostname: hostname, Ports: map[string]int32{}}
			byIP[ip] = e
		}
		e.Ready = e.Ready || ready
		for _, sp := range svc.Spec.Ports {
			if p, ok := ports[sp.Name]; ok {
				e.Ports[sp.Name] = p
			}
		}
	}
	if ep, ok := cl.Endpoints[Key(svc.Namespace, svc.Name)]; ok {
		for _, sub := range ep.Subsets {
			ports := map[string]int32{}
			for _, p := range sub.Ports {
				ports[p.Name] = p.Port
			}
			for _, a := range sub.Addresses {
				add(a.IP, a.Hostname, ptrValue(a.NodeName), true, ports)
			}
			for _, a := range sub.NotReadyAddresses {
				add(a.IP, a.Hostname, ptrValue(a.NodeName), false, ports)
			}
		}
	}
	for _, es := range cl.EndpointSlices {
		if es.Namespace != svc.Namespace || es.Labels[discoveryv1.LabelServiceName] != svc.Name {
			continue
		}
		ports := map[string]int32{}
		for _, p := range es.Ports {
			if p.Port != nil {
				ports[ptrValue(p.Name)] = *p.Port
			}
		}
		for _, e := range es.Endpoints {
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready // nil means ready
			for _, a := range e.Addresses {
				add(a, ptrValue(e.Hostname), ptrValue(e.NodeName), ready, ports)
			}
		}
	}
	out := make([]nodeapi.Endpoint, 0, len(byIP))
	for _, e := range byIP {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP < out[j].IP })
	return out
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
