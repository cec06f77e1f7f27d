package playbooks

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func TestCheckL2(t *testing.T) {
	addrs := []InterfaceAddress{
		{Interface: "eth0", Prefix: netip.MustParsePrefix("10.250.0.11/24")},
		{Interface: "wg0", Prefix: netip.MustParsePrefix("192.168.9.1/32")},
	}
	peers := []nodeapi.Peer{
		{Name: "h2", Address: "10.250.0.12", PodCIDR: "10.244.1.0/24"},
		{Name: "far", Address: "10.99.0.5", PodCIDR: "10.244.2.0/24"},
		{Name: "p2p", Address: "192.168.9.1", PodCIDR: "10.244.3.0/24"}, // a /32 is no segment
		{Name: "named", Address: "host.example", PodCIDR: "10.244.4.0/24"},
	}
	got := CheckL2("h1", addrs, peers)
	if len(got) != 2 {
		t.Fatalf("CheckL2 = %q, want warnings for far and p2p", got)
	}
	for i, name := range []string{"far", "p2p"} {
		for _, want := range []string{"peer " + name, "not on a subnet of h1 (eth0 10.250.0.0/24, wg0 192.168.9.1/32)", "one L2 segment"} {
			if !strings.Contains(got[i], want) {
				t.Errorf("warning %d = %q, want it to contain %q", i, got[i], want)
			}
		}
	}
	if got := CheckL2("h1", nil, peers); got != nil {
		t.Errorf("CheckL2 without addresses = %q, want nothing", got)
	}
}

func TestParseFactsAddressesAndStatus(t *testing.T) {
	out := "kernel=6.1\ninit=labinit\naddr=eth0 10.250.0.11/24\naddr=bad nonsense\n" +
		"agentlet_status=eyJhcGlWZXJzaW9uIjoibm9kZWFwaS5jbHVzdGVyY3RsLmRldi92MWFscGhhMSIsInNwZWNHZW5lcmF0aW9uIjozfQ==\n"
	f, err := ParseFacts([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Addresses) != 1 || f.Addresses[0].Interface != "eth0" || f.Addresses[0].Prefix.String() != "10.250.0.11/24" {
		t.Errorf("Addresses = %+v", f.Addresses)
	}
	if f.AgentletStatus == nil || f.AgentletStatus.SpecGeneration != 3 {
		t.Errorf("AgentletStatus = %+v, want spec generation 3", f.AgentletStatus)
	}
}
