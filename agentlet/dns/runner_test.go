package dns

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func TestRunner(t *testing.T) {
	up := startUpstream(t)
	r := &Runner{Port: -1, Server: Config{ResolvConf: filepath.Join(t.TempDir(), "missing")}}
	t.Cleanup(func() { r.Close() })
	svc := func(ip string) []nodeapi.ServiceSpec {
		return []nodeapi.ServiceSpec{{Namespace: "default", Name: "web", ClusterIP: ip}}
	}
	spec := func(gen int64, addr string, services []nodeapi.ServiceSpec, upstreams ...string) *nodeapi.NodeSpec {
		s := &nodeapi.NodeSpec{Generation: gen, Services: services}
		s.Cluster.Domain = "cluster.local"
		if addr != "" {
			s.DNS = &nodeapi.ClusterDNS{Address: addr, Upstreams: upstreams}
		}
		return s
	}
	steps := []struct {
		name    string
		spec    *nodeapi.NodeSpec
		wantErr bool
		running bool
		host    string // served host, when running
		webA    string // answer for web.default, when running
		fwd     int    // rcode for example.com., when running
	}{
		{"no spec: nothing", nil, false, false, "", "", 0},
		{"no DNS: nothing", spec(1, "", svc("10.96.0.1")), false, false, "", "", 0},
		{"start", spec(2, "127.0.0.1", svc("10.96.0.1"), up.addr), false, true, "127.0.0.1",
			"web.default.svc.cluster.local. 5 IN A 10.96.0.1", dns.RcodeSuccess},
		{"unreadable spec keeps it", nil, false, true, "127.0.0.1",
			"web.default.svc.cluster.local. 5 IN A 10.96.0.1", dns.RcodeSuccess},
		{"new zone", spec(3, "127.0.0.1", svc("10.96.0.2"), up.addr), false, true, "127.0.0.1",
			"web.default.svc.cluster.local. 5 IN A 10.96.0.2", dns.RcodeSuccess},
		{"new address: restarted", spec(4, "127.0.0.2", svc("10.96.0.2"), up.addr), false, true, "127.0.0.2",
			"web.default.svc.cluster.local. 5 IN A 10.96.0.2", dns.RcodeSuccess},
		{"upstreams from a missing resolv.conf: error, zone still served", spec(5, "127.0.0.2", svc("10.96.0.3")), true, true, "127.0.0.2",
			"web.default.svc.cluster.local. 5 IN A 10.96.0.3", dns.RcodeSuccess},
		{"DNS dropped: stopped", spec(6, "", nil), false, false, "", "", 0},
		{"cannot listen", spec(7, "192.0.2.1", nil), true, false, "", "", 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := r.Apply(st.spec)
			if (err != nil) != st.wantErr {
				t.Fatalf("Apply: %v, want error: %v", err, st.wantErr)
			}
			addr := r.Addr()
			if (addr != "") != st.running {
				t.Fatalf("running = %v, want %v", addr != "", st.running)
			}
			if !st.running {
				return
			}
			if r.addr[:len(st.host)] != st.host {
				t.Errorf("serving on %s, want %s", r.addr, st.host)
			}
			if got := rrs(query(t, "udp", addr, "web.default.svc.cluster.local.", dns.TypeA, false).Answer); got != st.webA {
				t.Errorf("web: got %q, want %q", got, st.webA)
			}
			if got := query(t, "udp", addr, "example.com.", dns.TypeA, false).Rcode; got != st.fwd {
				t.Errorf("example.com: rcode %s, want %s", dns.RcodeToString[got], dns.RcodeToString[st.fwd])
			}
		})
	}
}

func TestRunnerRereadsChangedResolvConf(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	write := func(ns string) {
		t.Helper()
		tmp := resolv + ".tmp" // replaced like resolvconf and DHCP clients do
		if err := os.WriteFile(tmp, []byte("nameserver "+ns+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, resolv); err != nil {
			t.Fatal(err)
		}
	}
	r := &Runner{Port: -1, Server: Config{ResolvConf: resolv}}
	t.Cleanup(func() { r.Close() })
	spec := &nodeapi.NodeSpec{Generation: 1, DNS: &nodeapi.ClusterDNS{Address: "127.0.0.1"}}
	spec.Cluster.Domain = "cluster.local"
	for _, ns := range []string{"192.0.2.10", "192.0.2.11"} {
		write(ns)
		if err := r.Apply(spec); err != nil {
			t.Fatal(err)
		}
		if got := *r.srv.upstreams.Load(); len(got) != 1 || got[0] != ns+":53" {
			t.Errorf("upstreams = %v, want [%s:53] from the current resolv.conf", got, ns)
		}
	}
}
