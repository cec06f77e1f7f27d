// Package routes keeps agentlet's host-gw routes: one route per peer node's
// pod CIDR via the peer's address, on the device whose directly connected
// subnet holds that address. Plan is pure; Exec runs iproute2 and Fake
// stands in for it in tests.
//
// Ownership: our routes carry the routing protocol number Proto, so foreign
// routes are never changed or deleted; a foreign route to a peer's pod CIDR
// is reported as a conflict instead of being replaced.
package routes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// Proto is the rtnetlink protocol number that marks our routes (0x6c).
const Proto = 108

// Route is an IPv4 route in the main table.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr // invalid for device routes
	Dev string
	// Ours reports whether the route carries Proto.
	Ours bool
}

func (r Route) String() string {
	s := r.Dst.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Ours {
		s += " proto " + strconv.Itoa(Proto)
	}
	return s
}

// Subnet is a directly connected IPv4 subnet: an address of this node.
type Subnet struct {
	Dev    string
	Prefix netip.Prefix // e.g. 10.1.0.2/24 (address and length)
}

// Changes is what Plan decided: routes to replace (add or change) and ours
// to delete, plus one error per peer that host-gw cannot reach.
type Changes struct {
	Replace []Route
	Delete  []Route
	Errors  []error
}

// Empty reports whether there is nothing to do.
func (c Changes) Empty() bool { return len(c.Replace) == 0 && len(c.Delete) == 0 }

// Plan compares the current routes (all of the main table; only those with
// Ours set are ever deleted) with the routes the peers need. Peers named
// nodeName are this node and skipped. A peer whose address is on no directly
// connected subnet gets an error and its existing route, if any, is kept.
func Plan(current []Route, connected []Subnet, peers []nodeapi.Peer, nodeName string) Changes {
	var ch Changes
	want := map[netip.Prefix]Route{}
	keep := map[netip.Prefix]bool{}
	foreign := map[netip.Prefix]Route{}
	ours := map[netip.Prefix]Route{}
	for _, r := range current {
		if r.Ours {
			ours[r.Dst] = r
		} else {
			foreign[r.Dst] = r
		}
	}
	for _, p := range peers {
		if p.Name == nodeName {
			continue
		}
		cidr, err := netip.ParsePrefix(p.PodCIDR)
		if err != nil || !cidr.Addr().Is4() {
			ch.Errors = append(ch.Errors, fmt.Errorf("route to peer %s: bad pod CIDR %q", p.Name, p.PodCIDR))
			continue
		}
		cidr = cidr.Masked()
		addr, err := netip.ParseAddr(p.Address)
		if err != nil || !addr.Is4() {
			ch.Errors = append(ch.Errors, fmt.Errorf("route to peer %s: bad address %q", p.Name, p.Address))
			keep[cidr] = true
			continue
		}
		dev, ok := deviceFor(connected, addr)
		if !ok {
			ch.Errors = append(ch.Errors, fmt.Errorf("host-gw needs %s (%s) on the same L2 segment as this node", p.Name, addr))
			keep[cidr] = true
			continue
		}
		if f, ok := foreign[cidr]; ok {
			ch.Errors = append(ch.Errors, fmt.Errorf("route to peer %s: a route not managed by clusterctl already exists: %s", p.Name, f))
			continue
		}
		want[cidr] = Route{Dst: cidr, Via: addr, Dev: dev, Ours: true}
	}
	for dst, r := range want {
		if cur, ok := ours[dst]; !ok || cur != r {
			ch.Replace = append(ch.Replace, r)
		}
	}
	for dst, r := range ours {
		if _, ok := want[dst]; !ok && !keep[dst] {
			ch.Delete = append(ch.Delete, r)
		}
	}
	byDst := func(a, b Route) int { return cmp.Compare(a.Dst.String(), b.Dst.String()) }
	slices.SortFunc(ch.Replace, byDst)
	slices.SortFunc(ch.Delete, byDst)
	return ch
}

// deviceFor returns the device of the longest connected subnet holding addr.
func deviceFor(connected []Subnet, addr netip.Addr) (string, bool) {
	best, bits := "", -1
	for _, s := range connected {
		if s.Prefix.Masked().Contains(addr) && s.Prefix.Bits() > bits && s.Prefix.Bits() < 32 {
			best, bits = s.Dev, s.Prefix.Bits()
		}
	}
	return best, bits >= 0
}

// Edge is what Apply needs from the host.
type Edge interface {
	Replace(ctx context.Context, r Route) error
	Delete(ctx context.Context, r Route) error
}

// Apply carries out the changes: deletions first, then replacements. It
// tries every change and returns all failures joined.
func Apply(ctx context.Context, e Edge, ch Changes) error {
	var errs []error
	for _, r := range ch.Delete {
		if err := e.Delete(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range ch.Replace {
		if err := e.Replace(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
