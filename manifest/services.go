package manifest

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Service defaulting, as the API server does it: type ClusterIP,
// sessionAffinity None (ClientIP gets timeoutSeconds 10800), port protocol
// TCP, targetPort = port when unset, externalTrafficPolicy Cluster and
// internalTrafficPolicy Cluster. A manifest's status is dropped. Endpoints:
// port protocol TCP. EndpointSlice: port protocol TCP, ready/serving
// conditions left as written (nil means ready, as Kubernetes reads them).

const defaultClientIPTimeout = 10800

func defaultService(svc *corev1.Service) {
	spec := &svc.Spec
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		if spec.SessionAffinityConfig == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
		}
		if spec.SessionAffinityConfig.ClientIP == nil {
			spec.SessionAffinityConfig.ClientIP = &corev1.ClientIPConfig{}
		}
		if spec.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig.ClientIP.TimeoutSeconds = ptr(int32(defaultClientIPTimeout))
		}
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 && p.TargetPort.StrVal == "" {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if spec.Type == corev1.ServiceTypeNodePort && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil {
		spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyCluster)
	}
}

func (s *sink) validateService(svc *corev1.Service) {
	spec := &svc.Spec
	sp := path{}.field("spec")
	switch spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName:
		s.at(sp.field("type"), "type %s is not supported: there is no cloud load balancer or external name support (use ClusterIP or NodePort)", spec.Type)
	default:
		s.oneOf(sp.field("type"), "service type", string(spec.Type), "ClusterIP", "NodePort")
	}
	headless := spec.ClusterIP == corev1.ClusterIPNone
	switch ip := spec.ClusterIP; {
	case ip == "" || headless:
	default:
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
			s.at(sp.field("clusterIP"), "invalid cluster IP %q: must be an IPv4 address, \"None\" or empty", ip)
		}
	}
	for i, ip := range spec.ClusterIPs {
		if i == 0 && ip == spec.ClusterIP {
			continue
		}
		s.at(sp.field("clusterIPs").index(i), "only one cluster IP is supported (IPv4); set spec.clusterIP")
	}
	if headless && spec.Type == corev1.ServiceTypeNodePort {
		s.at(sp.field("clusterIP"), "a NodePort service may not be headless (clusterIP: None)")
	}
	if len(spec.Ports) == 0 && !headless {
		s.at(sp.field("ports"), "required (at least one port, unless the service is headless)")
	}
	if len(spec.ExternalIPs) > 0 {
		s.at(sp.field("externalIPs"), "not supported")
	}
	if spec.LoadBalancerIP != "" || len(spec.LoadBalancerSourceRanges) > 0 {
		s.at(sp.field("loadBalancerIP"), "not supported: there is no cloud load balancer")
	}
	s.oneOf(sp.field("sessionAffinity"), "session affinity", string(spec.SessionAffinity), "None", "ClientIP")
	if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		if t := *c.ClientIP.TimeoutSeconds; t < 1 || t > 86400 {
			s.at(sp.field("sessionAffinityConfig").field("clientIP").field("timeoutSeconds"), "must be between 1 and 86400, got %d", t)
		}
	}
	switch spec.ExternalTrafficPolicy {
	case "":
	case corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal:
		if spec.Type != corev1.ServiceTypeNodePort {
			s.at(sp.field("externalTrafficPolicy"), "may only be set on NodePort services")
		}
	default:
		s.oneOf(sp.field("externalTrafficPolicy"), "external traffic policy", string(spec.ExternalTrafficPolicy), "Cluster", "Local")
	}
	if p := spec.InternalTrafficPolicy; p != nil && *p != corev1.ServiceInternalTrafficPolicyCluster {
		s.at(sp.field("internalTrafficPolicy"), "only Cluster is supported")
	}
	for _, k := range sortedKeys(spec.Selector) {
		kp := sp.field("selector").key(k)
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			s.at(kp, "invalid label key %q: %s", k, msgs(errs))
		}
		if errs := validation.IsValidLabelValue(spec.Selector[k]); len(errs) > 0 {
			s.at(kp, "invalid label value %q: %s", spec.Selector[k], msgs(errs))
		}
	}
	names := map[string]int{}
	ports := map[string]int{}
	nodePorts := map[int32]int{}
	for i, p := range spec.Ports {
		pp := sp.field("ports").index(i)
		switch {
		case p.Name == "" && len(spec.Ports) > 1:
			s.at(pp.field("name"), "required when the service has more than one port")
		case p.Name != "":
			if errs := validation.IsDNS1123Label(p.Name); len(errs) > 0 {
				s.at(pp.field("name"), "invalid port name %q: %s", p.Name, msgs(errs))
			}
			if j, dup := names[p.Name]; dup {
				s.at(pp.field("name"), "duplicate port name %q (also ports[%d])", p.Name, j)
			} else {
				names[p.Name] = i
			}
		}
		if p.Port < 1 || p.Port > 65535 {
			s.at(pp.field("port"), "must be between 1 and 65535, got %d", p.Port)
		}
		s.oneOf(pp.field("protocol"), "protocol", string(p.Protocol), "TCP", "UDP")
		k := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if j, dup := ports[k]; dup {
			s.at(pp.field("port"), "duplicate port %s (also ports[%d])", k, j)
		} else {
			ports[k] = i
		}
		switch tp := p.TargetPort; {
		case tp.Type == intstr.String:
			if errs := validation.IsValidPortName(tp.StrVal); len(errs) > 0 {
				s.at(pp.field("targetPort"), "invalid named port %q: %s", tp.StrVal, msgs(errs))
			}
		case tp.IntVal < 1 || tp.IntVal > 65535:
			s.at(pp.field("targetPort"), "must be between 1 and 65535, got %d", tp.IntVal)
		}
		if p.NodePort != 0 {
			switch {
			case spec.Type != corev1.ServiceTypeNodePort:
				s.at(pp.field("nodePort"), "may only be set on NodePort services")
			case p.NodePort < 30000 || p.NodePort > 32767:
				s.at(pp.field("nodePort"), "must be in the node port range 30000-32767, got %d", p.NodePort)
			default:
				if j, dup := nodePorts[p.NodePort]; dup && spec.Ports[j].Protocol == p.Protocol {
					s.at(pp.field("nodePort"), "duplicate node port %d (also ports[%d])", p.NodePort, j)
				}
				nodePorts[p.NodePort] = i
			}
		}
		if p.AppProtocol != nil && *p.AppProtocol == "" {
			s.at(pp.field("appProtocol"), "must not be empty when set")
		}
	}
}

func defaultEndpoints(ep *corev1.Endpoints) {
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if ep.Subsets[i].Ports[j].Protocol == "" {
				ep.Subsets[i].Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
}

func (s *sink) validateEndpoints(ep *corev1.Endpoints) {
	for i, sub := range ep.Subsets {
		sp := path{}.field("subsets").index(i)
		for _, list := range []struct {
			name  string
			addrs []corev1.EndpointAddress
		}{{"addresses", sub.Addresses}, {"notReadyAddresses", sub.NotReadyAddresses}} {
			for j, a := range list.addrs {
				s.ipv4(sp.field(list.name).index(j).field("ip"), a.IP)
				if a.Hostname != "" {
					if errs := validation.IsDNS1123Label(a.Hostname); len(errs) > 0 {
						s.at(sp.field(list.name).index(j).field("hostname"), "invalid hostname %q: %s", a.Hostname, msgs(errs))
					}
				}
			}
		}
		names := map[string]int{}
		for j, p := range sub.Ports {
			pp := sp.field("ports").index(j)
			s.endpointPort(pp, p.Name, p.Port, string(p.Protocol), len(sub.Ports), names, j)
		}
	}
}

func defaultEndpointSlice(es *discoveryv1.EndpointSlice) {
	for i := range es.Ports {
		if es.Ports[i].Protocol == nil {
			es.Ports[i].Protocol = ptr(corev1.ProtocolTCP)
		}
	}
}

func (s *sink) validateEndpointSlice(es *discoveryv1.EndpointSlice) {
	if es.AddressType != discoveryv1.AddressTypeIPv4 {
		s.at(path{}.field("addressType"), "unsupported address type %q (must be IPv4)", es.AddressType)
	}
	if es.Labels[discoveryv1.LabelServiceName] == "" {
		s.at(path{}.field("metadata").field("labels"), "the label %s naming the Service is required", discoveryv1.LabelServiceName)
	}
	for i, e := range es.Endpoints {
		ep := path{}.field("endpoints").index(i)
		if len(e.Addresses) != 1 {
			s.at(ep.field("addresses"), "must have exactly one address, got %d", len(e.Addresses))
		}
		for j, a := range e.Addresses {
			s.ipv4(ep.field("addresses").index(j), a)
		}
		if e.Hostname != nil {
			if errs := validation.IsDNS1123Label(*e.Hostname); len(errs) > 0 {
				s.at(ep.field("hostname"), "invalid hostname %q: %s", *e.Hostname, msgs(errs))
			}
		}
	}
	names := map[string]int{}
	for j, p := range es.Ports {
		pp := path{}.field("ports").index(j)
		var name, proto string
		var port int32
		if p.Name != nil {
			name = *p.Name
		}
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		if p.Port != nil {
			port = *p.Port
		}
		s.endpointPort(pp, name, port, proto, len(es.Ports), names, j)
	}
}

func (s *sink) endpointPort(pp path, name string, port int32, proto string, n int, names map[string]int, j int) {
	switch {
	case name == "" && n > 1:
		s.at(pp.field("name"), "required when there is more than one port")
	case name != "":
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			s.at(pp.field("name"), "invalid port name %q: %s", name, msgs(errs))
		}
		if k, dup := names[name]; dup {
			s.at(pp.field("name"), "duplicate port name %q (also ports[%d])", name, k)
		} else {
			names[name] = j
		}
	}
	if port < 1 || port > 65535 {
		s.at(pp.field("port"), "must be between 1 and 65535, got %d", port)
	}
	s.oneOf(pp.field("protocol"), "protocol", proto, "TCP", "UDP")
}

func (s *sink) ipv4(p path, ip string) {
	if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
		s.at(p, "invalid IPv4 address %q", ip)
	}
}
