package nodeapi

// Services and pod networking: what a node needs to route to other nodes'
// pods (host-gw), to load-balance Service virtual IPs and NodePorts with its
// own iptables chains, and to answer cluster DNS. The CLI computes all of it
// (ClusterIP/NodePort allocation, endpoints from ready pods across hosts);
// agentlet renders rules and records with pure functions and keeps them
// converged.

// Service types.
const (
	ServiceClusterIP = "ClusterIP"
	ServiceNodePort  = "NodePort"
)

// Peer is another node of the cluster: traffic to its pod CIDR is routed via
// its address (host-gw; nodes must share an L2 segment).
type Peer struct {
	Name    string `json:"name"`
	Address string `json:"address"` // the node's cluster-facing IPv4 address
	PodCIDR string `json:"podCIDR"`
}

// ServiceSpec is one Service as every node needs it.
type ServiceSpec struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Type      string `json:"type"` // ClusterIP or NodePort
	// ClusterIP is the virtual IP; "None" for headless Services (DNS only, no rules).
	ClusterIP string        `json:"clusterIP"`
	Ports     []ServicePort `json:"ports,omitempty"`
	// SessionAffinityTimeout > 0 means sessionAffinity ClientIP with that timeout (seconds).
	SessionAffinityTimeout int32 `json:"sessionAffinityTimeout,omitempty"`
	// ExternalTrafficPolicyLocal: NodePort traffic only goes to endpoints on the
	// receiving node, and keeps the client's source IP.
	ExternalTrafficPolicyLocal bool       `json:"externalTrafficPolicyLocal,omitempty"`
	Endpoints                  []Endpoint `json:"endpoints,omitempty"`
}

// Key is namespace/name.
func (s *ServiceSpec) Key() string { return s.Namespace + "/" + s.Name }

// ServicePort is one port of a Service.
type ServicePort struct {
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol"` // TCP or UDP
	Port     int32  `json:"port"`
	NodePort int32  `json:"nodePort,omitempty"`
}

// Endpoint is one backend of a Service: a pod IP with the target port per
// service port name (named targetPorts differ per pod, so they are resolved
// per endpoint by the CLI).
type Endpoint struct {
	IP       string `json:"ip"`
	NodeName string `json:"nodeName"`
	// Ready endpoints receive traffic; agentlet also drops endpoints on its
	// own node whose pod it sees unready, before the next reconcile.
	Ready bool `json:"ready"`
	// PodUID lets agentlet match local endpoints to its own pods.
	PodUID string `json:"podUID,omitempty"`
	// Hostname and Subdomain give the pod its DNS name
	// <hostname>.<service>.<ns>.svc.<domain> (StatefulSets, headless).
	Hostname string `json:"hostname,omitempty"`
	// Ports maps the service port name ("" for an unnamed single port) to the
	// pod's target port.
	Ports map[string]int32 `json:"ports"`
}

// ClusterDNS tells agentlet where to serve cluster DNS.
type ClusterDNS struct {
	// Address is the node's cluster-facing address the DNS server listens on
	// (port 53, UDP and TCP); pods get it as their nameserver.
	Address string `json:"address"`
	// Upstreams are resolvers for names outside the cluster domain; empty
	// means the host's /etc/resolv.conf.
	Upstreams []string `json:"upstreams,omitempty"`
}
