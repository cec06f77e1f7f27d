package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Defaults of Config.
const (
	DefaultResolvConf = "/etc/resolv.conf"
	DefaultTimeout    = 2 * time.Second
	DefaultCacheSize  = 10000
	// forwardBudget bounds one forwarded query over every upstream and
	// retry, so a client never waits longer than this for a SERVFAIL.
	forwardBudget = 5 * time.Second
	// advertisedUDPSize is the EDNS buffer size the server offers clients
	// and upstreams (the DNS flag day 2020 value).
	advertisedUDPSize = 1232
)

// Config is a Server's configuration.
type Config struct {
	// Addr is host:port to serve on, UDP and TCP; port 0 picks a free port
	// (the same for both).
	Addr string
	// ResolvConf is read by SetUpstreams without upstreams
	// (DefaultResolvConf when "").
	ResolvConf string
	// Timeout bounds one attempt at one upstream (DefaultTimeout when 0).
	Timeout time.Duration
	// CacheSize bounds the forwarding cache, in entries (DefaultCacheSize
	// when 0, no cache when negative).
	CacheSize int
}

// Server is the node's DNS server: it answers the zone's names itself and
// forwards the rest. Start it once, swap zones and upstreams (SetZone,
// SetUpstreams) before or while it runs, Shutdown once. Until SetUpstreams
// succeeds, forwarded names answer SERVFAIL.
type Server struct {
	cfg       Config
	zone      atomic.Pointer[Zone]
	upstreams atomic.Pointer[[]string]
	cache     *cache
	udpClient *dns.Client
	tcpClient *dns.Client

	udp, tcp *dns.Server
	addr     string
}

// NewServer returns a server for cfg serving an empty cluster.local zone
// until SetZone; it does not listen until Start.
func NewServer(cfg Config) *Server {
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	s := &Server{
		cfg:       cfg,
		cache:     newCache(cfg.CacheSize),
		udpClient: &dns.Client{Net: "udp", Timeout: cfg.Timeout, UDPSize: advertisedUDPSize},
		tcpClient: &dns.Client{Net: "tcp", Timeout: cfg.Timeout},
	}
	s.zone.Store(BuildZone("", nil))
	s.upstreams.Store(new([]string))
	return s
}

// SetZone swaps the zone served; queries in flight finish with the old one.
func (s *Server) SetZone(z *Zone) { s.zone.Store(z) }

// SetUpstreams sets the forwarding resolvers (host or host:port); empty
// reads the nameservers of the configured resolv.conf. The server's own
// address is never used as an upstream (a host resolv.conf pointing at it
// would loop). On error the previous upstreams stay.
func (s *Server) SetUpstreams(upstreams []string) error {
	if len(upstreams) == 0 {
		cc, err := dns.ClientConfigFromFile(s.cfg.ResolvConf)
		if err != nil {
			return fmt.Errorf("read upstreams: %w", err)
		}
		for _, ns := range cc.Servers {
			upstreams = append(upstreams, net.JoinHostPort(ns, cc.Port))
		}
	}
	var out []string
	for _, u := range upstreams {
		u = strings.TrimSpace(u)
		if _, _, err := net.SplitHostPort(u); err != nil {
			u = net.JoinHostPort(strings.Trim(u, "[]"), "53")
		}
		if u == s.addr || u == s.cfg.Addr {
			continue
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return errors.New("set upstreams: no usable nameserver")
	}
	s.upstreams.Store(&out)
	s.cache.flush()
	return nil
}

// Start listens on UDP and TCP and serves in the background; it returns
// once both listeners are up.
func (s *Server) Start() error {
	pc, err := net.ListenPacket("udp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on udp %s: %w", s.cfg.Addr, err)
	}
	s.addr = pc.LocalAddr().String()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("listen on tcp %s: %w", s.addr, err)
	}
	var started sync.WaitGroup
	started.Add(2)
	h := dns.HandlerFunc(s.serveDNS)
	s.udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: started.Done}
	s.tcp = &dns.Server{Listener: l, Handler: h, NotifyStartedFunc: started.Done,
		ReadTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		go srv.ActivateAndServe() //nolint:errcheck // ends with Shutdown
	}
	started.Wait()
	return nil
}

// Addr returns the address served on (host:port, the same for UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// Shutdown stops both listeners and waits for queries in flight until ctx
// is done.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if srv == nil {
			continue
		}
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down dns server: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := s.answer(req, w.RemoteAddr().Network() == "tcp")
	_ = w.WriteMsg(resp) // the client went away: nothing to do
}

// answer builds the response to req; udp responses are truncated to the
// client's buffer size.
func (s *Server) answer(req *dns.Msg, tcp bool) *dns.Msg {
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeNotImplemented)
		if len(req.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
		}
		return m
	}
	q := req.Question[0]
	var resp *dns.Msg
	if z := s.zone.Load(); q.Qclass == dns.ClassINET && z.Contains(q.Name) {
		resp = zoneReply(z, req)
	} else {
		resp = s.forward(req)
	}
	clientOPT := req.IsEdns0()
	if clientOPT != nil {
		resp.SetEdns0(advertisedUDPSize, false)
	}
	if !tcp {
		size := dns.MinMsgSize
		if clientOPT != nil {
			size = max(int(clientOPT.UDPSize()), dns.MinMsgSize)
		}
		resp.Truncate(size)
	}
	return resp
}

// zoneReply answers req from z, authoritatively.
func zoneReply(z *Zone, req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	m.Compress = true
	answers, rcode := z.Lookup(q.Name, q.Qtype)
	m.Rcode = rcode
	m.Answer = answers
	if len(answers) == 0 {
		m.Ns = []dns.RR{z.SOA()}
	}
	if q.Qtype == dns.TypeSRV {
		for _, rr := range answers {
			if a, _ := z.Lookup(rr.(*dns.SRV).Target, dns.TypeA); len(a) > 0 {
				m.Extra = append(m.Extra, a...)
			}
		}
	}
	return m
}

// forward answers req from the cache or the upstreams; SERVFAIL when none
// answers within forwardBudget.
func (s *Server) forward(req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	key := cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass}
	now := time.Now()
	if m := s.cache.get(key, now); m != nil {
		m.Id = req.Id
		m.Question = req.Question
		return m
	}
	up := new(dns.Msg)
	up.Id = dns.Id()
	up.RecursionDesired = true
	up.CheckingDisabled = req.CheckingDisabled
	up.Question = []dns.Question{q}
	up.SetEdns0(advertisedUDPSize, false)

	ctx, cancel := context.WithTimeout(context.Background(), forwardBudget)
	defer cancel()
	for _, u := range *s.upstreams.Load() {
		r, _, err := s.udpClient.ExchangeContext(ctx, up, u)
		if err == nil && r.Truncated {
			r, _, err = s.tcpClient.ExchangeContext(ctx, up, u)
		}
		if err != nil || r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
			if ctx.Err() != nil {
				break
			}
			continue
		}
		stripOPT(r)
		s.cache.put(key, r, now)
		r = r.Copy()
		r.Id = req.Id
		r.Question = req.Question
		r.Compress = true
		return r
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

// stripOPT removes the upstream's OPT record: the server adds its own when
// the client asked with EDNS.
func stripOPT(m *dns.Msg) {
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
}
