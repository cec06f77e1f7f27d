package iptables

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/netfilter"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// Runner is what ServiceSyncer needs from the iptables tools: Exec or Fake.
type Runner interface {
	Restore(ctx context.Context, payload []byte) error
	Save(ctx context.Context, table string) ([]byte, error)
	Check(ctx context.Context, table, chain string, rule []string) (bool, error)
	Insert(ctx context.Context, table, chain string, rule []string) error
}

// DefaultResync is how often ServiceSyncer reloads every service chain and
// re-ensures the jumps even when nothing changed.
const DefaultResync = 5 * time.Minute

// ServiceSyncer keeps the node's service rules converged: each Sync renders
// the rules (reusing those of unchanged Services), and loads only the
// chains that changed since the last successful load. Every Resync, and
// after any failure, it loads everything over the current iptables-save
// (deleting stale service chains) in chunks (see netfilter.FullPayloads)
// and ensures the jumps. Not safe for
// concurrent use.
type ServiceSyncer struct {
	IPT    Runner
	Resync time.Duration // DefaultResync when zero
	// Chunk is the number of chains per payload of a full load
	// (netfilter.FullChunk when zero).
	Chunk int
	Now   func() time.Time

	cache    *netfilter.ServiceCache
	applied  *netfilter.ServiceRules // nil: next Sync is a full one
	lastFull time.Time
}

// Sync converges the service rules to spec. unready holds UIDs of this
// node's pods seen unready (their endpoints are left out at once).
func (s *ServiceSyncer) Sync(ctx context.Context, spec *nodeapi.NodeSpec, unready map[string]bool) error {
	in, err := netfilter.ServiceInputFromSpec(spec, unready)
	if err != nil {
		return fmt.Errorf("sync service rules: %w", err)
	}
	if s.cache == nil {
		s.cache = netfilter.NewServiceCache()
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	resync := s.Resync
	if resync <= 0 {
		resync = DefaultResync
	}
	next := s.cache.Build(in)
	if s.applied != nil && now().Sub(s.lastFull) < resync {
		if !netfilter.Changed(s.applied, next) {
			return nil
		}
		if err := s.IPT.Restore(ctx, netfilter.Diff(s.applied, next)); err != nil {
			s.applied = nil
			return fmt.Errorf("sync service rules: %w", err)
		}
		s.applied = next
		return nil
	}
	var current []netfilter.Table
	for _, table := range []string{netfilter.TableNAT, netfilter.TableFilter} {
		out, err := s.IPT.Save(ctx, table)
		if err != nil {
			return fmt.Errorf("sync service rules: %w", err)
		}
		tables, err := netfilter.ParseSave(out)
		if err != nil {
			return fmt.Errorf("sync service rules: %w", err)
		}
		current = append(current, tables...)
	}
	s.applied = nil
	for _, payload := range netfilter.FullPayloads(next, current, s.Chunk) {
		if err := s.IPT.Restore(ctx, payload); err != nil {
			return fmt.Errorf("sync service rules: %w", err)
		}
	}
	for _, j := range netfilter.ServiceJumps() {
		ok, err := s.IPT.Check(ctx, j.Table, j.Chain, j.Rule)
		if err == nil && !ok {
			err = s.IPT.Insert(ctx, j.Table, j.Chain, j.Rule)
		}
		if err != nil {
			return fmt.Errorf("ensure jump from %s/%s: %w", j.Table, j.Chain, err)
		}
	}
	s.applied, s.lastFull = next, now()
	return nil
}
