package routes

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func rt(dst, via, dev string, ours bool) Route {
	r := Route{Dst: netip.MustParsePrefix(dst), Dev: dev, Ours: ours}
	if via != "" {
		r.Via = netip.MustParseAddr(via)
	}
	return r
}

var (
	connected = []Subnet{
		{Dev: "lo", Prefix: netip.MustParsePrefix("127.0.0.1/8")},
		{Dev: "eth0", Prefix: netip.MustParsePrefix("10.1.0.2/24")},
		{Dev: "eth1", Prefix: netip.MustParsePrefix("10.2.0.2/16")},
	}
	peers = []nodeapi.Peer{
		{Name: "h1", Address: "10.1.0.2", PodCIDR: "10.244.1.0/24"}, // this node
		{Name: "h2", Address: "10.1.0.3", PodCIDR: "10.244.2.0/24"},
		{Name: "h3", Address: "10.2.5.4", PodCIDR: "10.244.3.0/24"},
		{Name: "h4", Address: "10.9.9.9", PodCIDR: "10.244.4.0/24"}, // not on our L2
	}
)

func TestPlan(t *testing.T) {
	tests := []struct {
		name        string
		current     []Route
		peers       []nodeapi.Peer
		wantReplace []Route
		wantDelete  []Route
		wantErrs    []string
	}{
		{
			name:        "fresh",
			current:     []Route{rt("10.1.0.0/24", "", "eth0", false)},
			peers:       peers,
			wantReplace: []Route{rt("10.244.2.0/24", "10.1.0.3", "eth0", true), rt("10.244.3.0/24", "10.2.5.4", "eth1", true)},
			wantErrs:    []string{"host-gw needs h4 (10.9.9.9) on the same L2 segment as this node"},
		},
		{
			name: "converged, stale and moved routes, foreign kept",
			current: []Route{
				rt("10.244.2.0/24", "10.1.0.3", "eth0", true),
				rt("10.244.3.0/24", "10.2.5.99", "eth1", true), // peer moved
				rt("10.244.4.0/24", "10.1.0.7", "eth0", true),  // unreachable peer: kept
				rt("10.244.9.0/24", "10.1.0.9", "eth0", true),  // peer gone
				rt("10.50.0.0/16", "10.1.0.1", "eth0", false),  // foreign
			},
			peers:       peers,
			wantReplace: []Route{rt("10.244.3.0/24", "10.2.5.4", "eth1", true)},
			wantDelete:  []Route{rt("10.244.9.0/24", "10.1.0.9", "eth0", true)},
			wantErrs:    []string{"host-gw needs h4 (10.9.9.9)"},
		},
		{
			name:     "foreign route to a pod CIDR is a conflict",
			current:  []Route{rt("10.244.2.0/24", "10.1.0.50", "eth0", false)},
			peers:    peers[:2],
			wantErrs: []string{"route to peer h2: a route not managed by clusterctl already exists: 10.244.2.0/24 via 10.1.0.50 dev eth0"},
		},
		{
			name:     "bad peer",
			peers:    []nodeapi.Peer{{Name: "hx", Address: "10.1.0.5", PodCIDR: "nope"}},
			wantErrs: []string{`route to peer hx: bad pod CIDR "nope"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := Plan(tt.current, connected, tt.peers, "h1")
			if diff := cmp.Diff(tt.wantReplace, ch.Replace, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("replace (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantDelete, ch.Delete, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("delete (-want +got):\n%s", diff)
			}
			if len(ch.Errors) != len(tt.wantErrs) {
				t.Fatalf("errors = %v, want %d", ch.Errors, len(tt.wantErrs))
			}
			for i, e := range ch.Errors {
				if !strings.Contains(e.Error(), tt.wantErrs[i]) {
					t.Errorf("error %q, want it to contain %q", e, tt.wantErrs[i])
				}
			}
		})
	}
}

func TestApplyFake(t *testing.T) {
	ctx := context.Background()
	f := &Fake{Subnets: connected, Table: []Route{rt("10.50.0.0/16", "10.1.0.1", "eth0", false)}}
	converge := func(ps []nodeapi.Peer) Changes {
		cur, _ := f.Routes(ctx)
		sub, _ := f.Connected(ctx)
		ch := Plan(cur, sub, ps, "h1")
		if err := Apply(ctx, f, ch); err != nil {
			t.Fatal(err)
		}
		return ch
	}
	converge(peers)
	if ch := converge(peers); !ch.Empty() {
		t.Errorf("second pass not idempotent: %+v", ch)
	}
	converge(peers[:2]) // h3 removed; h4 never had a route
	want := []string{"10.50.0.0/16 via 10.1.0.1 dev eth0", "10.244.2.0/24 via 10.1.0.3 dev eth0 proto 108"}
	var got []string
	for _, r := range f.Table {
		got = append(got, r.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	f.DeleteErr, f.ReplaceErr = errors.New("boom"), errors.New("bang")
	err := Apply(ctx, f, Changes{Replace: []Route{rt("10.244.3.0/24", "10.2.5.4", "eth1", true)}, Delete: []Route{rt("10.244.2.0/24", "", "", true)}})
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "bang") {
		t.Errorf("err = %v, want both failures", err)
	}
}

func TestParse(t *testing.T) {
	routes, err := ParseRoutes([]byte(`[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},{"dst":"10.1.0.0/24","dev":"d0","protocol":"kernel","scope":"link","prefsrc":"10.1.0.2","flags":[]},{"dst":"10.244.2.0/24","gateway":"10.1.0.3","dev":"d0","protocol":"108","flags":[]},{"dst":"10.7.7.7","dev":"d0","flags":[]}]`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range routes {
		got = append(got, r.String())
	}
	want := []string{"10.1.0.0/24 dev d0", "10.244.2.0/24 via 10.1.0.3 dev d0 proto 108", "10.7.7.7/32 dev d0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	subs, err := ParseAddrs([]byte(`[{"ifindex":3,"ifname":"d0","addr_info":[{"family":"inet","local":"10.1.0.2","prefixlen":24}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].Dev != "d0" || subs[0].Prefix.String() != "10.1.0.2/24" {
		t.Errorf("subnets = %v", subs)
	}
	if _, err := ParseRoutes([]byte("{")); err == nil {
		t.Error("bad JSON accepted")
	}
}

const inNetnsEnv = "ROUTES_TEST_PRIVATE_NETNS"

// TestExecInPrivateNetns runs the real ip commands in a private network
// namespace (unshare -n) with a veth pair: routes added, idempotent, peer
// removal deletes only our route, a foreign route survives.
func TestExecInPrivateNetns(t *testing.T) {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Skipf("cannot identify the network namespace: %v", err)
	}
	if parent := os.Getenv(inNetnsEnv); parent == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root: changes routes in a private network namespace (unshare -n)")
		}
		for _, tool := range []string{"unshare", "ip"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s not installed", tool)
			}
		}
		cmd := exec.Command("unshare", "-n", "--", os.Args[0], "-test.run=^TestExecInPrivateNetns$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), inNetnsEnv+"="+self)
		out, err := cmd.CombinedOutput()
		t.Logf("in a private network namespace:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("test in private network namespace failed: %v", err)
		}
		return
	} else if parent == self {
		t.Fatalf("refusing to touch routes: still in the parent's network namespace %s", self)
	}
	ctx := context.Background()
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	sh("link", "add", "ccv0", "type", "veth", "peer", "name", "ccv1")
	sh("link", "set", "ccv0", "up")
	sh("link", "set", "ccv1", "up")
	sh("addr", "add", "10.1.0.2/24", "dev", "ccv0")
	sh("route", "add", "10.50.0.0/16", "via", "10.1.0.1")                     // foreign
	sh("route", "add", "10.244.9.0/24", "via", "10.1.0.9", "proto", "static") // foreign, looks like a pod CIDR
	var e Exec
	converge := func(ps []nodeapi.Peer) Changes {
		t.Helper()
		cur, err := e.Routes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := e.Connected(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ch := Plan(cur, sub, ps, "h1")
		if err := Apply(ctx, e, ch); err != nil {
			t.Fatal(err)
		}
		return ch
	}
	ps := []nodeapi.Peer{
		{Name: "h1", Address: "10.1.0.2", PodCIDR: "10.244.1.0/24"},
		{Name: "h2", Address: "10.1.0.3", PodCIDR: "10.244.2.0/24"},
		{Name: "h3", Address: "10.1.0.4", PodCIDR: "10.244.3.0/24"},
		{Name: "h4", Address: "10.1.2.3", PodCIDR: "10.244.4.0/24"},
	}
	ch := converge(ps)
	if len(ch.Replace) != 2 || len(ch.Errors) != 1 || ch.Errors[0].Error() != "host-gw needs h4 (10.1.2.3) on the same L2 segment as this node" {
		t.Fatalf("first pass: %+v", ch)
	}
	if ch := converge(ps); !ch.Empty() {
		t.Errorf("second pass not idempotent: %+v", ch)
	}
	converge(ps[:2]) // h3 and h4 gone
	out, err := exec.Command("ip", "-4", "route", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{"10.244.2.0/24 via 10.1.0.3 dev ccv0 proto 108", "10.50.0.0/16 via 10.1.0.1 dev ccv0", "10.244.9.0/24 via 10.1.0.9 dev ccv0 proto static"} {
		if !strings.Contains(got, want) {
			t.Errorf("route %q missing:\n%s", want, got)
		}
	}
	if strings.Contains(got, "10.244.3.0/24") {
		t.Errorf("route to removed peer h3 left:\n%s", got)
	}
	// Deleting a route that is already gone is not an error.
	if err := e.Delete(ctx, rt("10.244.3.0/24", "10.1.0.4", "ccv0", true)); err != nil {
		t.Errorf("delete missing route: %v", err)
	}
}

func TestSyncer(t *testing.T) {
	f := &Fake{Subnets: connected}
	spec := &nodeapi.NodeSpec{NodeName: "h1", Peers: peers}
	err := Syncer{Host: f}.Sync(context.Background(), spec, nil)
	if err == nil || err.Error() != "host-gw needs h4 (10.9.9.9) on the same L2 segment as this node" {
		t.Errorf("err = %v", err)
	}
	if len(f.Table) != 2 {
		t.Errorf("table = %v", f.Table)
	}
}
