package plan

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// names returns h1..hn.
func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%d", i+1)
	}
	return out
}

// sequential returns h1..hn allocated to consecutive /24s of 10.244.0.0/16.
func sequential(n int) map[string]netip.Prefix {
	out := make(map[string]netip.Prefix, n)
	for i := range n {
		out[fmt.Sprintf("h%d", i+1)] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24)
	}
	return out
}

func TestAllocatePodCIDRs(t *testing.T) {
	cluster := pfx("10.244.0.0/16")
	tests := []struct {
		name     string
		cluster  netip.Prefix
		mask     int
		hosts    []string
		existing map[string]netip.Prefix
		want     map[string]netip.Prefix
		wantErr  string
	}{
		{
			name:  "no hosts",
			hosts: nil,
			want:  map[string]netip.Prefix{},
		},
		{
			name:  "fresh hosts get the lowest subnets in host order",
			hosts: []string{"b", "a", "c"},
			want:  map[string]netip.Prefix{"b": pfx("10.244.0.0/24"), "a": pfx("10.244.1.0/24"), "c": pfx("10.244.2.0/24")},
		},
		{
			name:     "existing allocations are kept",
			hosts:    []string{"h1", "h2", "h3"},
			existing: map[string]netip.Prefix{"h2": pfx("10.244.5.0/24")},
			want:     map[string]netip.Prefix{"h1": pfx("10.244.0.0/24"), "h2": pfx("10.244.5.0/24"), "h3": pfx("10.244.1.0/24")},
		},
		{
			name:     "holes are filled lowest first",
			hosts:    []string{"h1", "h2", "h3", "h4"},
			existing: map[string]netip.Prefix{"h1": pfx("10.244.0.0/24"), "h3": pfx("10.244.2.0/24")},
			want: map[string]netip.Prefix{"h1": pfx("10.244.0.0/24"), "h2": pfx("10.244.1.0/24"),
				"h3": pfx("10.244.2.0/24"), "h4": pfx("10.244.3.0/24")},
		},
		{
			name:  "invalid existing allocations are replaced",
			hosts: []string{"outside", "wrong-size", "not-network", "ipv6", "zero"},
			existing: map[string]netip.Prefix{
				"outside":     pfx("10.245.0.0/24"),
				"wrong-size":  pfx("10.244.0.0/25"),
				"not-network": pfx("10.244.7.1/24"),
				"ipv6":        pfx("fd00::/120"),
				"zero":        {},
			},
			want: map[string]netip.Prefix{"outside": pfx("10.244.0.0/24"), "wrong-size": pfx("10.244.1.0/24"),
				"not-network": pfx("10.244.2.0/24"), "ipv6": pfx("10.244.3.0/24"), "zero": pfx("10.244.4.0/24")},
		},
		{
			name:     "a duplicated allocation stays with the first host in host order",
			hosts:    []string{"h2", "h1"},
			existing: map[string]netip.Prefix{"h1": pfx("10.244.0.0/24"), "h2": pfx("10.244.0.0/24")},
			want:     map[string]netip.Prefix{"h2": pfx("10.244.0.0/24"), "h1": pfx("10.244.1.0/24")},
		},
		{
			name:     "allocations of unlisted hosts stay reserved and are not returned",
			hosts:    []string{"h1", "h2"},
			existing: map[string]netip.Prefix{"gone": pfx("10.244.0.0/24"), "h2": pfx("10.244.2.0/24")},
			want:     map[string]netip.Prefix{"h1": pfx("10.244.1.0/24"), "h2": pfx("10.244.2.0/24")},
		},
		{
			name:     "a listed host wins over an unlisted one holding the same subnet",
			hosts:    []string{"h1", "h2"},
			existing: map[string]netip.Prefix{"gone": pfx("10.244.0.0/24"), "h1": pfx("10.244.0.0/24")},
			want:     map[string]netip.Prefix{"h1": pfx("10.244.0.0/24"), "h2": pfx("10.244.1.0/24")},
		},
		{
			name:     "invalid allocations of unlisted hosts reserve nothing",
			hosts:    []string{"h1"},
			existing: map[string]netip.Prefix{"gone": pfx("10.244.0.0/25")},
			want:     map[string]netip.Prefix{"h1": pfx("10.244.0.0/24")},
		},
		{
			name:  "a full /16 of /24s",
			hosts: names(256),
			want:  sequential(256),
		},
		{
			name:    "exhausted",
			hosts:   names(257),
			wantErr: "allocate pod CIDR for host h257: cluster pod CIDR 10.244.0.0/16 has no free /24 left (256 in use)",
		},
		{
			name:     "exhausted by reserved allocations",
			cluster:  pfx("10.244.0.0/23"),
			hosts:    []string{"h1"},
			existing: map[string]netip.Prefix{"a": pfx("10.244.0.0/24"), "b": pfx("10.244.1.0/24")},
			wantErr:  "allocate pod CIDR for host h1: cluster pod CIDR 10.244.0.0/23 has no free /24 left (2 in use)",
		},
		{
			name:    "the last subnet of the address space",
			cluster: pfx("255.255.255.0/24"),
			mask:    25,
			hosts:   []string{"h1", "h2"},
			want:    map[string]netip.Prefix{"h1": pfx("255.255.255.0/25"), "h2": pfx("255.255.255.128/25")},
		},
		{
			name:    "past the end of the address space",
			cluster: pfx("255.255.255.0/24"),
			mask:    25,
			hosts:   []string{"h1", "h2", "h3"},
			wantErr: "allocate pod CIDR for host h3: cluster pod CIDR 255.255.255.0/24 has no free /25 left (2 in use)",
		},
		{
			name:    "node mask equal to the cluster mask",
			cluster: pfx("10.244.0.0/24"),
			mask:    24,
			hosts:   []string{"h1"},
			want:    map[string]netip.Prefix{"h1": pfx("10.244.0.0/24")},
		},
		{
			name:    "IPv6",
			cluster: pfx("fd00:10:244::/48"),
			mask:    64,
			hosts:   []string{"h1", "h2"},
			want:    map[string]netip.Prefix{"h1": pfx("fd00:10:244::/64"), "h2": pfx("fd00:10:244:1::/64")},
		},
		{
			name:    "invalid cluster",
			cluster: pfx("10.244.1.0/16"),
			hosts:   []string{"h1"},
			wantErr: "allocate pod CIDRs: invalid cluster pod CIDR 10.244.1.0/16",
		},
		{
			name:    "mask shorter than the cluster",
			mask:    8,
			hosts:   []string{"h1"},
			wantErr: "allocate pod CIDRs: node mask size 8 is outside /16 to /32 of cluster pod CIDR 10.244.0.0/16",
		},
		{
			name:    "mask longer than the address",
			mask:    33,
			hosts:   []string{"h1"},
			wantErr: "allocate pod CIDRs: node mask size 33 is outside /16 to /32 of cluster pod CIDR 10.244.0.0/16",
		},
		{
			name:    "duplicate host",
			hosts:   []string{"h1", "h2", "h1"},
			wantErr: `allocate pod CIDRs: duplicate host "h1"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mask := tt.cluster, tt.mask
			if !c.IsValid() {
				c = cluster
			}
			if mask == 0 {
				mask = 24
			}
			before := maps.Clone(tt.existing)
			got, err := AllocatePodCIDRs(c, mask, tt.hosts, tt.existing)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("allocation mismatch (-want +got):\n%s", diff)
			}
			if !maps.Equal(before, tt.existing) {
				t.Errorf("existing was modified: %v, was %v", tt.existing, before)
			}
		})
	}
}

// TestAllocatePodCIDRsProperties checks random inputs against a brute-force
// oracle: listed hosts keep their valid allocations (first in host order
// wins), valid allocations of unlisted hosts stay reserved, and the others get
// the lowest free subnets in host order; no overlaps, everything inside; a
// re-run with the result changes nothing.
func TestAllocatePodCIDRsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		bits := 16 + rng.IntN(9)         // /16../24
		mask := bits + rng.IntN(31-bits) // up to /30
		if mask-bits > 6 {
			mask = bits + rng.IntN(7) // keep the oracle small: at most 64 subnets
		}
		base := netip.AddrFrom4([4]byte{10, byte(rng.IntN(256)), byte(rng.IntN(256)), 0})
		cluster := netip.PrefixFrom(base, bits).Masked()
		subnets := enumerate(cluster, mask)

		pool := names(80)
		rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		hosts := slices.Clone(pool[:rng.IntN(len(subnets)+3)])
		existing := make(map[string]netip.Prefix)
		for range rng.IntN(len(subnets) + 2) {
			name := pool[rng.IntN(len(pool))]
			switch rng.IntN(6) {
			case 0: // outside the cluster
				existing[name] = netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(rng.IntN(256)), 0}), mask).Masked()
			case 1: // wrong size
				existing[name] = netip.PrefixFrom(subnets[rng.IntN(len(subnets))].Addr(), max(mask-1, 1))
			default:
				existing[name] = subnets[rng.IntN(len(subnets))]
			}
		}

		want, wantErr := oracle(cluster, mask, hosts, existing)
		got, err := AllocatePodCIDRs(cluster, mask, hosts, existing)
		if (err != nil) != wantErr {
			t.Fatalf("iteration %d: %s /%d hosts=%v existing=%v: error = %v, want error: %v",
				iter, cluster, mask, hosts, existing, err, wantErr)
		}
		if err != nil {
			continue
		}
		if !maps.Equal(got, want) {
			t.Fatalf("iteration %d: %s /%d hosts=%v existing=%v:\n got %v\nwant %v", iter, cluster, mask, hosts, existing, got, want)
		}
		seen := make(map[netip.Prefix]string)
		for h, p := range got {
			if !slices.Contains(hosts, h) {
				t.Fatalf("iteration %d: unlisted host %s returned", iter, h)
			}
			if p.Bits() != mask || !cluster.Contains(p.Addr()) || p != p.Masked() {
				t.Fatalf("iteration %d: %s got %s, not a /%d inside %s", iter, h, p, mask, cluster)
			}
			for q, other := range seen {
				if p.Overlaps(q) {
					t.Fatalf("iteration %d: %s (%s) overlaps %s (%s)", iter, h, p, other, q)
				}
			}
			seen[p] = h
		}
		if len(got) != len(hosts) {
			t.Fatalf("iteration %d: %d allocations for %d hosts", iter, len(got), len(hosts))
		}
		// Stable: re-running with its own output (plus the reserved
		// allocations of unlisted hosts) changes nothing.
		again := maps.Clone(got)
		for h, p := range existing {
			if _, listed := got[h]; !listed {
				again[h] = p
			}
		}
		for _, in := range []map[string]netip.Prefix{got, again} {
			rerun, err := AllocatePodCIDRs(cluster, mask, hosts, in)
			if err != nil || !maps.Equal(rerun, got) {
				t.Fatalf("iteration %d: re-run gave %v, %v; want %v", iter, rerun, err, got)
			}
		}
	}
}

// enumerate lists every /mask subnet of cluster in address order.
func enumerate(cluster netip.Prefix, mask int) []netip.Prefix {
	var out []netip.Prefix
	for p, ok := netip.PrefixFrom(cluster.Addr(), mask), true; ok; p, ok = after(p, cluster) {
		out = append(out, p)
	}
	return out
}

// oracle is a straightforward, slow restatement of AllocatePodCIDRs' contract.
func oracle(cluster netip.Prefix, mask int, hosts []string, existing map[string]netip.Prefix) (map[string]netip.Prefix, bool) {
	subnets := enumerate(cluster, mask)
	valid := func(p netip.Prefix) bool { return slices.Contains(subnets, p) }
	out := make(map[string]netip.Prefix)
	used := make(map[netip.Prefix]bool)
	for _, h := range hosts {
		if p, ok := existing[h]; ok && valid(p) && !used[p] {
			out[h], used[p] = p, true
		}
	}
	for h, p := range existing {
		if !slices.Contains(hosts, h) && valid(p) {
			used[p] = true
		}
	}
	for _, h := range hosts {
		if _, ok := out[h]; ok {
			continue
		}
		i := slices.IndexFunc(subnets, func(p netip.Prefix) bool { return !used[p] })
		if i < 0 {
			return nil, true
		}
		out[h], used[subnets[i]] = subnets[i], true
	}
	return out, false
}
