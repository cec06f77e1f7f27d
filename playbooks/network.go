package playbooks

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// CheckL2 explains which peers host-gw routing cannot reach from host: a
// route to a peer's pod CIDR via the peer's address only works when that
// address is on a subnet the host is directly connected to (one L2
// segment). Peers without an address are skipped. Hosts on different
// networks need an overlay, which clusterctl does not have yet.
func CheckL2(host string, addrs []InterfaceAddress, peers []nodeapi.Peer) []string {
	if len(addrs) == 0 {
		return nil // facts without addresses (an old host without ip): nothing to check
	}
	var warnings []string
	for _, p := range peers {
		a, err := netip.ParseAddr(p.Address)
		if err != nil {
			continue
		}
		if onLink(addrs, a) {
			continue
		}
		var subnets []string
		for _, ia := range addrs {
			subnets = append(subnets, ia.Interface+" "+ia.Prefix.Masked().String())
		}
		warnings = append(warnings, fmt.Sprintf("host-gw routing needs every node on one L2 segment: peer %s (%s) is not on a subnet of %s (%s), "+
			"so pods on %s cannot reach pods on %s", p.Name, p.Address, host, strings.Join(subnets, ", "), host, p.Name))
	}
	return warnings
}

func onLink(addrs []InterfaceAddress, a netip.Addr) bool {
	for _, ia := range addrs {
		if ia.Prefix.Bits() < 32 && ia.Prefix.Masked().Contains(a) {
			return true
		}
	}
	return false
}
