package plan

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// AllocatePodCIDRs gives every host a /maskSize subnet of the cluster pod
// CIDR and returns the allocation of exactly the hosts listed.
//
// A host keeps its existing allocation when it is valid: inside cluster,
// of the right size, a network address, and not already kept by a host
// earlier in hosts. Every other host gets the lowest free subnet, in host
// order. Nothing is released here: valid allocations of hosts that are not
// listed stay reserved (they are simply not returned); release one by
// dropping it from existing. The result is deterministic and re-running with
// it as existing returns it unchanged. existing is not modified.
func AllocatePodCIDRs(cluster netip.Prefix, maskSize int, hosts []string, existing map[string]netip.Prefix) (map[string]netip.Prefix, error) {
	if !cluster.IsValid() || cluster != cluster.Masked() {
		return nil, fmt.Errorf("allocate pod CIDRs: invalid cluster pod CIDR %s", cluster)
	}
	if maskSize < cluster.Bits() || maskSize > cluster.Addr().BitLen() {
		return nil, fmt.Errorf("allocate pod CIDRs: node mask size %d is outside /%d to /%d of cluster pod CIDR %s",
			maskSize, cluster.Bits(), cluster.Addr().BitLen(), cluster)
	}
	listed := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		if listed[h] {
			return nil, fmt.Errorf("allocate pod CIDRs: duplicate host %q", h)
		}
		listed[h] = true
	}
	valid := func(p netip.Prefix) bool {
		return p.IsValid() && p.Bits() == maskSize && p == p.Masked() && cluster.Contains(p.Addr())
	}

	out := make(map[string]netip.Prefix, len(hosts))
	used := make(map[netip.Prefix]bool)
	for _, h := range hosts {
		if p, ok := existing[h]; ok && valid(p) && !used[p] {
			out[h], used[p] = p, true
		}
	}
	for _, h := range slices.Sorted(maps.Keys(existing)) {
		if p := existing[h]; !listed[h] && valid(p) {
			used[p] = true
		}
	}

	// Walk the subnets upwards from the start of the cluster CIDR, skipping
	// the ones in use; taken is sorted, so one pass suffices.
	taken := slices.SortedFunc(maps.Keys(used), func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	next, more := netip.PrefixFrom(cluster.Addr(), maskSize), true
	inUse := len(taken)
	for _, h := range hosts {
		if _, ok := out[h]; ok {
			continue
		}
		for more && len(taken) > 0 && taken[0].Addr().Compare(next.Addr()) <= 0 {
			if taken[0] == next {
				next, more = after(next, cluster)
			}
			taken = taken[1:]
		}
		if !more {
			return nil, fmt.Errorf("allocate pod CIDR for host %s: cluster pod CIDR %s has no free /%d left (%d in use)",
				h, cluster, maskSize, inUse)
		}
		out[h] = next
		inUse++
		next, more = after(next, cluster)
	}
	return out, nil
}

// after returns the subnet of the same size following p, and whether it is
// still inside cluster.
func after(p, cluster netip.Prefix) (netip.Prefix, bool) {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	n := last.Next()
	if !n.IsValid() || !cluster.Contains(n) {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(n, p.Bits()), true
}
