package dns

import (
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func testServices() []nodeapi.ServiceSpec {
	return []nodeapi.ServiceSpec{
		{
			Namespace: "default", Name: "web", Type: nodeapi.ServiceClusterIP, ClusterIP: "10.96.0.10",
			Ports:     []nodeapi.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}, {Protocol: "TCP", Port: 81}},
			Endpoints: []nodeapi.Endpoint{{IP: "10.244.1.5", Ready: true}},
		},
		{
			Namespace: "db", Name: "pg", ClusterIP: "None",
			Ports: []nodeapi.ServicePort{{Name: "pg", Protocol: "TCP", Port: 5432}},
			Endpoints: []nodeapi.Endpoint{
				{IP: "10.244.1.7", Ready: true, Hostname: "pg-0", Ports: map[string]int32{"pg": 15432}},
				{IP: "10.244.2.7", Ready: true, Hostname: "pg-1", Ports: map[string]int32{"pg": 15432}},
				{IP: "10.244.2.9", Ready: false, Hostname: "pg-2"},
			},
		},
		{
			Namespace: "db", Name: "anon", ClusterIP: "None",
			Ports:     []nodeapi.ServicePort{{Name: "dns", Protocol: "UDP", Port: 53}},
			Endpoints: []nodeapi.Endpoint{{IP: "10.244.3.4", Ready: true}},
		},
		{Namespace: "bad_ns", Name: "x", ClusterIP: "10.96.0.11"},
		{Namespace: "default", Name: "v6", ClusterIP: "fd00::1"},
	}
}

// rrs renders records as sorted strings without the TTL-independent noise.
func rrs(in []dns.RR) string {
	var out []string
	for _, rr := range in {
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	sort.Strings(out)
	return strings.Join(out, "|")
}

func TestZoneLookup(t *testing.T) {
	z := BuildZone("Cluster.Local", testServices())
	tests := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		want  string
	}{
		{"service A", "web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			"web.default.svc.cluster.local. 5 IN A 10.96.0.10"},
		{"case-insensitive, not fully qualified", "WEB.Default.SVC.cluster.LOCAL", dns.TypeA, dns.RcodeSuccess,
			"web.default.svc.cluster.local. 5 IN A 10.96.0.10"},
		{"service SRV named port", "_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
			"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."},
		{"service AAAA is NODATA", "web.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, ""},
		{"unnamed port has no SRV", "_81._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeNameError, ""},
		{"headless A: ready endpoints only", "pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			"pg.db.svc.cluster.local. 5 IN A 10.244.1.7|pg.db.svc.cluster.local. 5 IN A 10.244.2.7"},
		{"stateful hostname", "pg-1.pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			"pg-1.pg.db.svc.cluster.local. 5 IN A 10.244.2.7"},
		{"unready hostname", "pg-2.pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, ""},
		{"headless SRV targets hostnames with target ports", "_pg._tcp.pg.db.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
			"_pg._tcp.pg.db.svc.cluster.local. 5 IN SRV 0 100 15432 pg-0.pg.db.svc.cluster.local.|" +
				"_pg._tcp.pg.db.svc.cluster.local. 5 IN SRV 0 100 15432 pg-1.pg.db.svc.cluster.local."},
		{"headless SRV without hostname targets dashed IP", "_dns._udp.anon.db.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
			"_dns._udp.anon.db.svc.cluster.local. 5 IN SRV 0 100 53 10-244-3-4.anon.db.svc.cluster.local."},
		{"dashed IP name", "10-244-3-4.anon.db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			"10-244-3-4.anon.db.svc.cluster.local. 5 IN A 10.244.3.4"},
		{"namespace is NODATA", "db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, ""},
		{"svc is NODATA", "svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, ""},
		{"apex A is NODATA", "cluster.local.", dns.TypeA, dns.RcodeSuccess, ""},
		{"apex SOA", "cluster.local.", dns.TypeSOA, dns.RcodeSuccess,
			"cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"},
		{"SRV non-terminal is NODATA", "_tcp.web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, ""},
		{"unknown service", "nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, ""},
		{"unknown namespace", "web.nope.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, ""},
		{"pod names are not served", "pod.cluster.local.", dns.TypeA, dns.RcodeNameError, ""},
		{"invalid namespace skipped", "x.bad_ns.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, ""},
		{"IPv6 cluster IP: name, no A", "v6.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, ""},
		{"outside the zone", "example.com.", dns.TypeA, dns.RcodeRefused, ""},
		{"suffix that is not a subdomain", "xcluster.local.", dns.TypeA, dns.RcodeRefused, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rcode := z.Lookup(tt.qname, tt.qtype)
			if rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[rcode], dns.RcodeToString[tt.rcode])
			}
			if g := rrs(got); g != tt.want {
				t.Errorf("answers:\n got %q\nwant %q", g, tt.want)
			}
		})
	}
}

func TestBuildZoneDomain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"cluster.local", "cluster.local."},
		{"Example.ORG.", "example.org."},
		{"", "cluster.local."},
	}
	for _, tt := range tests {
		if got := BuildZone(tt.in, nil).Domain(); got != tt.want {
			t.Errorf("BuildZone(%q).Domain() = %q, want %q", tt.in, got, tt.want)
		}
	}
	z := BuildZone("cluster.local", nil)
	if !z.Contains("A.Cluster.Local") || z.Contains("example.com") {
		t.Error("Contains: wrong answer")
	}
}
