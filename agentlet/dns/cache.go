package dns

import (
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Cache TTL caps, in seconds: upstream answers are kept at most this long
// whatever their TTL says.
const (
	maxCacheTTL    = 300
	maxNegativeTTL = 60
)

type cacheKey struct {
	name          string // lower-case
	qtype, qclass uint16
}

type cacheEntry struct {
	msg     *dns.Msg // never modified once stored
	stored  time.Time
	expires time.Time
}

// cache is a bounded TTL cache of upstream answers. When full, it drops the
// expired entries, else an arbitrary one (Go's map order): no LRU
// bookkeeping on the hot path.
type cache struct {
	mu      sync.Mutex
	size    int
	entries map[cacheKey]cacheEntry
}

func newCache(size int) *cache {
	return &cache{size: size, entries: make(map[cacheKey]cacheEntry)}
}

// get returns a copy of the cached answer with its TTLs decreased by its
// age, or nil.
func (c *cache) get(k cacheKey, now time.Time) *dns.Msg {
	if c.size <= 0 {
		return nil
	}
	c.mu.Lock()
	e, ok := c.entries[k]
	if ok && !now.Before(e.expires) {
		delete(c.entries, k)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			h.Ttl = max(h.Ttl, age) - age
		}
	}
	return m
}

// put caches m (an upstream answer) for its TTL: the smallest answer TTL for
// data, the SOA's (RFC 2308) for NXDOMAIN and NODATA; other answers, and
// answers without a TTL, are not cached.
func (c *cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	if c.size <= 0 {
		return
	}
	ttl, ok := cacheTTL(m)
	if !ok || ttl == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.entries[k]; !exists && len(c.entries) >= c.size {
		c.evict(now)
	}
	c.entries[k] = cacheEntry{msg: m, stored: now, expires: now.Add(time.Duration(ttl) * time.Second)}
}

// evict makes room for one entry; c.mu is held.
func (c *cache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.size {
			return
		}
		delete(c.entries, k)
	}
}

func (c *cache) flush() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// cacheTTL returns how long m may be cached, in seconds.
func cacheTTL(m *dns.Msg) (uint32, bool) {
	if m.Truncated {
		return 0, false
	}
	switch {
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		ttl := uint32(maxCacheTTL)
		for _, rr := range m.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
		return ttl, true
	case m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError:
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				return min(soa.Hdr.Ttl, soa.Minttl, maxNegativeTTL), true
			}
		}
	}
	return 0, false
}
