package dns

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeUpstream is a resolver on loopback that counts the queries it gets.
type fakeUpstream struct {
	addr string
	hits sync.Map // "name/type/net" -> *atomic.Int64
}

func (f *fakeUpstream) count(name string, qtype uint16, network string) int64 {
	v, ok := f.hits.Load(fmt.Sprintf("%s/%d/%s", name, qtype, network))
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func startUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{}
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 30},
		Ns: "ns.example.", Mbox: "h.example.", Minttl: 30}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		q := r.Question[0]
		network := w.RemoteAddr().Network()
		v, _ := f.hits.LoadOrStore(fmt.Sprintf("%s/%d/%s", q.Name, q.Qtype, network), new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		switch q.Name {
		case "example.com.":
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(1, 2, 3, 4)})
		case "big.example.":
			for i := range 100 {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A: net.IPv4(10, 0, byte(i/250), byte(i%250))})
			}
		case "fail.example.":
			m.Rcode = dns.RcodeServerFailure
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{soa}
		}
		if network == "udp" {
			m.Truncate(dns.MinMsgSize) // forces the TCP retry for big answers
		}
		w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = pc.LocalAddr().String()
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	var started sync.WaitGroup
	started.Add(2)
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: h, NotifyStartedFunc: started.Done},
		{Listener: l, Handler: h, NotifyStartedFunc: started.Done},
	} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	started.Wait()
	return f
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func startServer(t *testing.T, cfg Config, upstreams ...string) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s := NewServer(cfg)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := s.SetUpstreams(upstreams); err != nil {
		t.Fatalf("SetUpstreams: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	s.SetZone(BuildZone("cluster.local", testServices()))
	return s
}

func query(t *testing.T, network, addr, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, false)
	}
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

func TestServerZone(t *testing.T) {
	s := startServer(t, Config{}, deadAddr(t))
	tests := []struct {
		name    string
		network string
		qname   string
		qtype   uint16
		rcode   int
		answer  string
		soa     bool // SOA in the authority section
		extra   int
	}{
		{"A", "udp", "web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			"web.default.svc.cluster.local. 5 IN A 10.96.0.10", false, 0},
		{"A over TCP", "tcp", "web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			"web.default.svc.cluster.local. 5 IN A 10.96.0.10", false, 0},
		{"mixed case", "udp", "Web.Default.Svc.Cluster.Local.", dns.TypeA, dns.RcodeSuccess,
			"web.default.svc.cluster.local. 5 IN A 10.96.0.10", false, 0},
		{"SRV with target addresses", "udp", "_pg._tcp.pg.db.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
			"_pg._tcp.pg.db.svc.cluster.local. 5 IN SRV 0 100 15432 pg-0.pg.db.svc.cluster.local.|" +
				"_pg._tcp.pg.db.svc.cluster.local. 5 IN SRV 0 100 15432 pg-1.pg.db.svc.cluster.local.", false, 2},
		{"headless", "udp", "pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			"pg.db.svc.cluster.local. 5 IN A 10.244.1.7|pg.db.svc.cluster.local. 5 IN A 10.244.2.7", false, 0},
		{"stateful", "udp", "pg-0.pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			"pg-0.pg.db.svc.cluster.local. 5 IN A 10.244.1.7", false, 0},
		{"NXDOMAIN", "udp", "nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, "", true, 0},
		{"NODATA namespace", "udp", "db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "", true, 0},
		{"NODATA AAAA", "udp", "web.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, "", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := query(t, tt.network, s.Addr(), tt.qname, tt.qtype, false)
			if r.Rcode != tt.rcode || !r.Authoritative {
				t.Errorf("rcode = %s, aa = %v; want %s, aa", dns.RcodeToString[r.Rcode], r.Authoritative, dns.RcodeToString[tt.rcode])
			}
			if got := rrs(r.Answer); got != tt.answer {
				t.Errorf("answer:\n got %q\nwant %q", got, tt.answer)
			}
			if gotSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA; gotSOA != tt.soa {
				t.Errorf("authority = %v, want SOA: %v", r.Ns, tt.soa)
			}
			if len(r.Extra) != tt.extra {
				t.Errorf("extra = %v, want %d records", r.Extra, tt.extra)
			}
			if r.Question[0].Name != tt.qname {
				t.Errorf("question = %q, want it echoed as %q", r.Question[0].Name, tt.qname)
			}
		})
	}
}

func TestServerSwapsZone(t *testing.T) {
	s := startServer(t, Config{}, deadAddr(t))
	s.SetZone(BuildZone("cluster.local", nil))
	if r := query(t, "udp", s.Addr(), "web.default.svc.cluster.local.", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("after swap to an empty zone: rcode = %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}

func TestServerForwards(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, Config{}, up.addr)
	tests := []struct {
		name    string
		network string
		qname   string
		edns    bool
		rcode   int
		answers int
		tc      bool
		udpHits int64 // upstream UDP queries after this step
		tcpHits int64
	}{
		{"forwarded", "udp", "example.com.", false, dns.RcodeSuccess, 1, false, 1, 0},
		{"cached", "udp", "example.com.", false, dns.RcodeSuccess, 1, false, 1, 0},
		{"cached, other case", "udp", "EXAMPLE.com.", false, dns.RcodeSuccess, 1, false, 1, 0},
		{"negative answer", "udp", "nx.example.", false, dns.RcodeNameError, 0, false, 1, 0},
		{"negative answer cached", "udp", "nx.example.", false, dns.RcodeNameError, 0, false, 1, 0},
		{"upstream truncated: retried over TCP", "udp", "big.example.", true, dns.RcodeSuccess, 100, false, 1, 1},
		{"too big for a plain UDP client: TC", "udp", "big.example.", false, dns.RcodeSuccess, -1, true, 1, 1},
		{"TCP client gets it all from the cache", "tcp", "big.example.", false, dns.RcodeSuccess, 100, false, 1, 1},
		{"upstream SERVFAIL is not cached", "udp", "fail.example.", false, dns.RcodeServerFailure, 0, false, 1, 0},
		{"and asked again", "udp", "fail.example.", false, dns.RcodeServerFailure, 0, false, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := query(t, tt.network, s.Addr(), tt.qname, dns.TypeA, tt.edns)
			if r.Rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			if tt.answers >= 0 && len(r.Answer) != tt.answers {
				t.Errorf("%d answers, want %d", len(r.Answer), tt.answers)
			}
			if r.Truncated != tt.tc {
				t.Errorf("TC = %v, want %v", r.Truncated, tt.tc)
			}
			if (r.IsEdns0() != nil) != tt.edns {
				t.Errorf("OPT in answer: %v, want %v", r.IsEdns0() != nil, tt.edns)
			}
			name := dns.CanonicalName(tt.qname)
			if got := up.count(name, dns.TypeA, "udp"); got != tt.udpHits {
				t.Errorf("upstream UDP queries = %d, want %d", got, tt.udpHits)
			}
			if got := up.count(name, dns.TypeA, "tcp"); got != tt.tcpHits {
				t.Errorf("upstream TCP queries = %d, want %d", got, tt.tcpHits)
			}
		})
	}
}

func TestServerCacheTTL(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, Config{}, up.addr)
	query(t, "udp", s.Addr(), "example.com.", dns.TypeA, false)
	// Age the entry instead of sleeping.
	s.cache.mu.Lock()
	for k, e := range s.cache.entries {
		e.stored = e.stored.Add(-20 * time.Second)
		s.cache.entries[k] = e
	}
	s.cache.mu.Unlock()
	r := query(t, "udp", s.Addr(), "example.com.", dns.TypeA, false)
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl > 40 || r.Answer[0].Header().Ttl < 39 {
		t.Errorf("cached answer %v, want TTL 40 (60 - 20 seconds)", r.Answer)
	}
	if got := up.count("example.com.", dns.TypeA, "udp"); got != 1 {
		t.Errorf("upstream queries = %d, want 1", got)
	}
}

func TestServerUpstreamDown(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, Config{}, deadAddr(t), up.addr)
	if r := query(t, "udp", s.Addr(), "example.com.", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("first upstream down, second up: rcode = %s, want NOERROR", dns.RcodeToString[r.Rcode])
	}

	s = startServer(t, Config{}, deadAddr(t))
	start := time.Now()
	r := query(t, "udp", s.Addr(), "example.com.", dns.TypeA, false)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode = %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("SERVFAIL took %v, want it at once (connection refused)", d)
	}
}

func TestServerUpstreamTimeout(t *testing.T) {
	// A UDP socket that never answers: the attempt times out.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := startServer(t, Config{Timeout: 200 * time.Millisecond}, pc.LocalAddr().String())
	start := time.Now()
	r := query(t, "udp", s.Addr(), "example.com.", dns.TypeA, false)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode = %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("SERVFAIL took %v, want about the 200ms timeout", d)
	}
}

func TestSetUpstreams(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("search example\nnameserver 127.0.0.53\nnameserver ::1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{Addr: "127.0.0.1:5353", ResolvConf: conf})
	tests := []struct {
		name    string
		conf    string
		in      []string
		want    []string
		wantErr bool
	}{
		{"explicit, default port", conf, []string{"10.0.0.2", "10.0.0.3:5300", "[fd00::1]"},
			[]string{"10.0.0.2:53", "10.0.0.3:5300", "[fd00::1]:53"}, false},
		{"resolv.conf", conf, nil, []string{"127.0.0.53:53", "[::1]:53"}, false},
		{"own address skipped", conf, []string{"127.0.0.1:5353", "10.0.0.2"}, []string{"10.0.0.2:53"}, false},
		{"only own address", conf, []string{"127.0.0.1:5353"}, []string{"10.0.0.2:53"}, true},
		{"missing resolv.conf", filepath.Join(dir, "nope"), nil, []string{"10.0.0.2:53"}, true},
		{"resolv.conf without nameservers", empty, nil, []string{"10.0.0.2:53"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.cfg.ResolvConf = tt.conf
			err := s.SetUpstreams(tt.in)
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want error: %v", err, tt.wantErr)
			}
			if got := *s.upstreams.Load(); !slices.Equal(got, tt.want) {
				t.Errorf("upstreams = %q, want %q", got, tt.want)
			}
		})
	}
}
