// Package dns is agentlet's cluster DNS server: a miekg/dns server on the
// node answering the cluster domain from the NodeSpec's Services and
// forwarding every other name to upstream resolvers through a small cache.
//
// Record building is pure (BuildZone, Zone.Lookup); the Server only swaps
// zones and moves packets.
//
// Records served under <domain>:
//
//	<svc>.<ns>.svc.<domain>             A     ClusterIP, or every ready endpoint IP (headless)
//	<host>.<svc>.<ns>.svc.<domain>      A     that endpoint's IP (headless, endpoints with Hostname)
//	<a-b-c-d>.<svc>.<ns>.svc.<domain>   A     a ready headless endpoint without Hostname (SRV target)
//	_<port>._<proto>.<svc>.<ns>.svc.<domain> SRV named ports: the service name (port = service port),
//	                                          or each ready endpoint (headless, port = target port)
//	<domain>                            SOA
//
// Unknown names inside the domain answer NXDOMAIN, known names (including
// <ns>.svc.<domain>, svc.<domain> and every other empty non-terminal) with
// another type answer NODATA; both carry the SOA in the authority section.
//
// TTL is 5 seconds (kube-dns uses 30, CoreDNS's kubernetes plugin 5): the
// CLI pushes endpoint changes within seconds and a short TTL keeps clients
// from holding dead pod IPs; answers cost microseconds, so the extra queries
// are cheap.
package dns

import (
	"net/netip"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// TTL is the TTL of every cluster record, in seconds.
const TTL = 5

// negativeTTL is the SOA minimum: how long resolvers may cache NXDOMAIN and
// NODATA for cluster names.
const negativeTTL = 5

// Zone is an immutable snapshot of the cluster domain's records. The RRs it
// returns are shared between queries and must not be modified.
type Zone struct {
	domain string // lower-case, fully qualified ("cluster.local.")
	soa    *dns.SOA
	names  map[string]*rrset // owner name (lower-case FQDN) -> records; empty for non-terminals
}

// rrset is the records of one owner name.
type rrset struct {
	a   []dns.RR
	srv []dns.RR
}

// BuildZone builds the records of domain from services. Services and
// endpoints whose names are not valid DNS labels, and addresses that are not
// IPv4, are skipped.
func BuildZone(domain string, services []nodeapi.ServiceSpec) *Zone {
	domain = dns.CanonicalName(strings.TrimSpace(domain))
	if domain == "." || domain == "" {
		domain = "cluster.local."
	}
	z := &Zone{domain: domain, names: make(map[string]*rrset, 4*len(services)+2)}
	z.soa = &dns.SOA{
		Hdr:     dns.RR_Header{Name: domain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: TTL},
		Ns:      "ns.dns." + domain,
		Mbox:    "hostmaster." + domain,
		Serial:  1,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  negativeTTL,
	}
	z.ensure(domain)
	z.ensure("svc." + domain)

	// Sorted so the answer order does not depend on the spec's order.
	svcs := make([]*nodeapi.ServiceSpec, 0, len(services))
	for i := range services {
		svcs = append(svcs, &services[i])
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Key() < svcs[j].Key() })
	for _, s := range svcs {
		z.addService(s)
	}
	return z
}

// Domain returns the zone's domain, lower-case and fully qualified.
func (z *Zone) Domain() string { return z.domain }

// SOA returns the zone's SOA record (for the authority section of negative
// answers).
func (z *Zone) SOA() dns.RR { return z.soa }

// Contains says whether name is the zone's domain or below it.
func (z *Zone) Contains(name string) bool {
	return dns.IsSubDomain(z.domain, dns.CanonicalName(name))
}

// Lookup answers name and qtype from the zone: the answer records and
// RcodeSuccess (an empty answer is NODATA), RcodeNameError for unknown
// names, RcodeRefused for names outside the zone.
func (z *Zone) Lookup(name string, qtype uint16) (answers []dns.RR, rcode int) {
	name = dns.CanonicalName(name)
	if !dns.IsSubDomain(z.domain, name) {
		return nil, dns.RcodeRefused
	}
	set, ok := z.names[name]
	if !ok {
		return nil, dns.RcodeNameError
	}
	switch qtype {
	case dns.TypeA:
		return set.a, dns.RcodeSuccess
	case dns.TypeSRV:
		return set.srv, dns.RcodeSuccess
	case dns.TypeSOA:
		if name == z.domain {
			return []dns.RR{z.soa}, dns.RcodeSuccess
		}
	case dns.TypeANY:
		return append(append([]dns.RR(nil), set.a...), set.srv...), dns.RcodeSuccess
	}
	return nil, dns.RcodeSuccess
}

// ensure returns the rrset of name, creating it and every empty
// non-terminal between it and the domain.
func (z *Zone) ensure(name string) *rrset {
	set, ok := z.names[name]
	if ok {
		return set
	}
	set = &rrset{}
	z.names[name] = set
	for p := name; p != z.domain; {
		i, end := dns.NextLabel(p, 0)
		if end {
			break
		}
		p = p[i:]
		if _, ok := z.names[p]; ok {
			break
		}
		z.names[p] = &rrset{}
	}
	return set
}

func (z *Zone) addService(s *nodeapi.ServiceSpec) {
	if !isLabel(s.Name) || !isLabel(s.Namespace) {
		return
	}
	name := strings.ToLower(s.Name + "." + s.Namespace + ".svc." + z.domain)
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 255 {
		return
	}
	set := z.ensure(name)
	if s.ClusterIP != "None" {
		ip, err := netip.ParseAddr(s.ClusterIP)
		if err != nil || !ip.Is4() {
			return
		}
		set.a = append(set.a, aRecord(name, ip))
		for _, p := range s.Ports {
			if srvName, ok := srvOwner(p, name); ok {
				ss := z.ensure(srvName)
				ss.srv = append(ss.srv, srvRecord(srvName, name, p.Port))
			}
		}
		return
	}

	// Headless: the ready endpoints, each under its own name.
	type target struct {
		name string
		ep   *nodeapi.Endpoint
	}
	var targets []target
	seen := map[string]bool{}
	for i := range s.Endpoints {
		ep := &s.Endpoints[i]
		ip, err := netip.ParseAddr(ep.IP)
		if !ep.Ready || err != nil || !ip.Is4() {
			continue
		}
		if !seen[ip.String()] {
			seen[ip.String()] = true
			set.a = append(set.a, aRecord(name, ip))
		}
		host := strings.ToLower(ep.Hostname)
		if host == "" || !isLabel(host) {
			host = strings.ReplaceAll(ip.String(), ".", "-")
		}
		owner := host + "." + name
		if len(owner) > 255 {
			continue
		}
		hs := z.ensure(owner)
		if len(hs.a) == 0 {
			hs.a = append(hs.a, aRecord(owner, ip))
		}
		targets = append(targets, target{owner, ep})
	}
	for _, p := range s.Ports {
		srvName, ok := srvOwner(p, name)
		if !ok {
			continue
		}
		var recs []dns.RR
		for _, t := range targets {
			port, ok := t.ep.Ports[p.Name]
			if !ok || port <= 0 {
				port = p.Port
			}
			recs = append(recs, srvRecord(srvName, t.name, port))
		}
		if len(recs) > 0 {
			set := z.ensure(srvName)
			set.srv = append(set.srv, recs...)
		}
	}
}

// srvOwner returns _<port>._<proto>.<service name> for a named port.
func srvOwner(p nodeapi.ServicePort, service string) (string, bool) {
	if p.Name == "" || !isLabel(p.Name) {
		return "", false
	}
	proto := strings.ToLower(p.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	name := "_" + strings.ToLower(p.Name) + "._" + proto + "." + service
	return name, len(name) <= 255
}

func aRecord(name string, ip netip.Addr) dns.RR {
	return &dns.A{
		Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: TTL},
		A:   ip.AsSlice(),
	}
}

func srvRecord(name, target string, port int32) dns.RR {
	return &dns.SRV{
		Hdr:      dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: TTL},
		Priority: 0,
		Weight:   100,
		Port:     uint16(port),
		Target:   target,
	}
}

// isLabel reports whether s is one DNS label of letters, digits and '-'
// (RFC 1123), at most 63 bytes.
func isLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}
