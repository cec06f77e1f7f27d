package dns

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestCacheTTL(t *testing.T) {
	a := func(ttl uint32) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.IPv4(1, 1, 1, 1)}
	}
	soa := func(ttl, minttl uint32) dns.RR {
		return &dns.SOA{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl}, Minttl: minttl}
	}
	tests := []struct {
		name string
		msg  dns.Msg
		ttl  uint32
		ok   bool
	}{
		{"smallest answer TTL", dns.Msg{Answer: []dns.RR{a(60), a(30)}}, 30, true},
		{"capped", dns.Msg{Answer: []dns.RR{a(86400)}}, maxCacheTTL, true},
		{"NXDOMAIN: SOA minimum", dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}, Ns: []dns.RR{soa(900, 20)}}, 20, true},
		{"NODATA: SOA TTL", dns.Msg{Ns: []dns.RR{soa(10, 20)}}, 10, true},
		{"negative capped", dns.Msg{Ns: []dns.RR{soa(3600, 3600)}}, maxNegativeTTL, true},
		{"negative without SOA", dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}}, 0, false},
		{"SERVFAIL", dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}, Ns: []dns.RR{soa(10, 10)}}, 0, false},
		{"truncated", dns.Msg{MsgHdr: dns.MsgHdr{Truncated: true}, Answer: []dns.RR{a(60)}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ttl, ok := cacheTTL(&tt.msg)
			if ttl != tt.ttl || ok != tt.ok {
				t.Errorf("cacheTTL = %d, %v; want %d, %v", ttl, ok, tt.ttl, tt.ok)
			}
		})
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(10)
	now := time.Now()
	m := &dns.Msg{Answer: []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(1, 1, 1, 1)}}}
	for i := range 100 {
		c.put(cacheKey{name: fmt.Sprint(i), qtype: dns.TypeA}, m, now)
	}
	if n := c.len(); n != 10 {
		t.Errorf("%d entries, want the bound 10", n)
	}
	k := cacheKey{name: "x", qtype: dns.TypeA}
	c.put(k, m, now)
	if c.get(k, now.Add(59*time.Second)) == nil {
		t.Error("entry gone before its TTL")
	}
	if c.get(k, now.Add(60*time.Second)) != nil {
		t.Error("entry served after its TTL")
	}
	off := newCache(-1)
	off.put(k, m, now)
	if off.get(k, now) != nil {
		t.Error("disabled cache served an entry")
	}
}
