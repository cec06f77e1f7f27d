package routes

import (
	"context"
	"errors"
	"fmt"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Host is the route edge Sync needs: Exec or Fake.
type Host interface {
	Edge
	Routes(ctx context.Context) ([]Route, error)
	Connected(ctx context.Context) ([]Subnet, error)
}

// Syncer converges the host-gw routes of a node spec.
type Syncer struct {
	Host Host
}

// Sync reads the routes and addresses, plans and applies. The error joins
// the peers host-gw cannot reach and the changes that failed; every other
// change is still made. The unready pods do not matter to routes (the
// parameter matches agentlet's NetSyncer).
func (s Syncer) Sync(ctx context.Context, spec *nodeapi.NodeSpec, _ map[string]bool) error {
	cur, err := s.Host.Routes(ctx)
	if err != nil {
		return fmt.Errorf("sync routes: %w", err)
	}
	sub, err := s.Host.Connected(ctx)
	if err != nil {
		return fmt.Errorf("sync routes: %w", err)
	}
	ch := Plan(cur, sub, spec.Peers, spec.NodeName)
	errs := ch.Errors
	if err := Apply(ctx, s.Host, ch); err != nil {
		errs = append(errs, fmt.Errorf("sync routes: %w", err))
	}
	return errors.Join(errs...)
}
