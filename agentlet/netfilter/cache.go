package netfilter

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// ServiceCache remembers the rules rendered per Service, so that building
// the rules again after a small change renders only the Services that
// changed. It is not safe for concurrent use. A nil *ServiceCache renders
// everything.
type ServiceCache struct {
	ctx     cacheContext
	entries map[string]cacheEntry
}

// cacheContext is the part of the input every Service's rules depend on.
type cacheContext struct {
	node                  string
	terse                 bool
	cluster, nodePod, svc netip.Prefix
}

type cacheEntry struct {
	spec  nodeapi.ServiceSpec // deep copy
	ready []bool              // effective readiness per endpoint (fast path)
	piece *servicePiece
}

// NewServiceCache returns an empty cache.
func NewServiceCache() *ServiceCache { return &ServiceCache{} }

// Build is BuildServices reusing the cached rules of unchanged Services.
// Services no longer in the input are forgotten.
func (c *ServiceCache) Build(in ServiceInput) *ServiceRules {
	r := buildServices(in, c)
	for k := range c.entries {
		if _, ok := r.pieces[k]; !ok {
			delete(c.entries, k)
		}
	}
	return r
}

// reset empties the cache when the context of every Service changed.
func (c *ServiceCache) reset(in ServiceInput) {
	ctx := cacheContext{in.NodeName, in.terse, in.ClusterPodCIDR, in.NodePodCIDR, in.ServiceCIDR}
	if c.entries == nil || c.ctx != ctx {
		c.ctx, c.entries = ctx, map[string]cacheEntry{}
	}
}

func effectiveReady(in *ServiceInput, s *nodeapi.ServiceSpec) []bool {
	out := make([]bool, len(s.Endpoints))
	for i, ep := range s.Endpoints {
		out[i] = ep.Ready && !(ep.NodeName == in.NodeName && in.Unready[ep.PodUID])
	}
	return out
}

// piece returns the rules of s, from the cache when s is unchanged.
func (c *ServiceCache) piece(in *ServiceInput, key string, s *nodeapi.ServiceSpec) *servicePiece {
	if c == nil {
		return renderService(in, s)
	}
	ready := effectiveReady(in, s)
	if e, ok := c.entries[key]; ok && slices.Equal(e.ready, ready) && serviceEqual(&e.spec, s) {
		return e.piece
	}
	p := renderService(in, s)
	c.entries[key] = cacheEntry{spec: cloneService(s), ready: ready, piece: p}
	return p
}

func cloneService(s *nodeapi.ServiceSpec) nodeapi.ServiceSpec {
	c := *s
	c.Ports = slices.Clone(s.Ports)
	c.Endpoints = slices.Clone(s.Endpoints)
	for i := range c.Endpoints {
		c.Endpoints[i].Ports = maps.Clone(s.Endpoints[i].Ports)
	}
	return c
}

func serviceEqual(a, b *nodeapi.ServiceSpec) bool {
	if a.Namespace != b.Namespace || a.Name != b.Name || a.Type != b.Type || a.ClusterIP != b.ClusterIP ||
		a.SessionAffinityTimeout != b.SessionAffinityTimeout || a.ExternalTrafficPolicyLocal != b.ExternalTrafficPolicyLocal ||
		!slices.Equal(a.Ports, b.Ports) || len(a.Endpoints) != len(b.Endpoints) {
		return false
	}
	for i := range a.Endpoints {
		x, y := &a.Endpoints[i], &b.Endpoints[i]
		if x.IP != y.IP || x.NodeName != y.NodeName || x.Ready != y.Ready || x.PodUID != y.PodUID || !maps.Equal(x.Ports, y.Ports) {
			return false
		}
	}
	return true
}
