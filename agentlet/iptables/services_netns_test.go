package iptables

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/netfilter"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// inNetnsEnv marks a test process re-executed inside a private network
// namespace; its value is the parent's namespace.
const inNetnsEnv = "IPTABLES_TEST_PRIVATE_NETNS"

// restoreSizes are the service counts BenchmarkRestoreServices loads; a full
// load of 10k services takes minutes on the nft backend.
var restoreSizes = flag.String("restore.sizes", "1000,10000", "comma-separated service counts for BenchmarkRestoreServices")

// inPrivateNetns re-executes the calling test or benchmark under
// `unshare -n` (returning false in the parent) or returns true inside the
// child. The machine's own iptables are never touched.
func inPrivateNetns(tb testing.TB, flag string) bool {
	tb.Helper()
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		tb.Skipf("cannot identify the network namespace: %v", err)
	}
	if parent := os.Getenv(inNetnsEnv); parent != "" {
		if self == parent {
			tb.Fatalf("refusing to touch iptables: still in the parent's network namespace %s", self)
		}
		return true
	}
	if os.Geteuid() != 0 {
		tb.Skip("needs root: runs iptables in a private network namespace (unshare -n)")
	}
	for _, tool := range []string{"unshare", "iptables", "iptables-save", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s not installed", tool)
		}
	}
	args := []string{"-n", "--", os.Args[0], "-test.v", "-test.count=1"}
	if flag == "bench" {
		args = append(args, "-test.run=^$", "-test.bench=^"+tb.Name()+"$", "-test.benchtime=1x", "-test.timeout=60m", "-restore.sizes="+*restoreSizes)
	} else {
		args = append(args, "-test.run=^"+tb.Name()+"$")
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), inNetnsEnv+"="+self)
	out, err := cmd.CombinedOutput()
	tb.Logf("in a private network namespace:\n%s", out)
	if err != nil {
		tb.Fatalf("run in private network namespace: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS")) && !bytes.Contains(out, []byte("ns/op")) {
		tb.Fatal("the child ran nothing")
	}
	return false
}

func svcInput(n int) netfilter.ServiceInput {
	in := netfilter.ServiceInput{
		NodeName:       "h1",
		ClusterPodCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		NodePodCIDR:    netip.MustParsePrefix("10.244.1.0/24"),
		ServiceCIDR:    netip.MustParsePrefix("10.96.0.0/12"),
	}
	for i := range n {
		s := nodeapi.ServiceSpec{Namespace: "bench", Name: fmt.Sprintf("svc-%d", i), Type: nodeapi.ServiceClusterIP,
			ClusterIP: fmt.Sprintf("10.%d.%d.%d", 96+i/65536, i/256%256, i%256),
			Ports:     []nodeapi.ServicePort{{Protocol: "TCP", Port: 80}}}
		switch i % 5 {
		case 0:
			s.Type = nodeapi.ServiceNodePort
			s.Ports[0].NodePort = int32(30000 + i%2768)
			s.ExternalTrafficPolicyLocal = i%10 == 0
		case 1:
			s.SessionAffinityTimeout = 10800
		case 2:
			s.Ports[0].Protocol = "UDP"
		}
		for e := range 5 {
			s.Endpoints = append(s.Endpoints, nodeapi.Endpoint{IP: fmt.Sprintf("10.244.%d.%d", e+1, i%250+2),
				NodeName: fmt.Sprintf("h%d", e+1), Ready: true, Ports: map[string]int32{"": int32(8000 + i%1000)}})
		}
		in.Services = append(in.Services, s)
	}
	return in
}

func ensureJumps(ctx context.Context, t testing.TB, e Exec) {
	t.Helper()
	for _, j := range netfilter.ServiceJumps() {
		ok, err := e.Check(ctx, j.Table, j.Chain, j.Rule)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if err := e.Insert(ctx, j.Table, j.Chain, j.Rule); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func saveAll(ctx context.Context, t testing.TB, e Exec) string {
	t.Helper()
	var all []byte
	for _, tb := range []string{"nat", "filter"} {
		out, err := e.Save(ctx, tb)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out...)
	}
	return string(all)
}

func countChains(save, prefix string) int {
	return strings.Count(save, "\n:"+prefix)
}

// TestServicesApplyInPrivateNetns loads full and incremental payloads with
// the real iptables-restore and checks the kernel's view.
func TestServicesApplyInPrivateNetns(t *testing.T) {
	if !inPrivateNetns(t, "test") {
		return
	}
	ctx := context.Background()
	var e Exec
	// A foreign rule and chain that must survive.
	if _, err := run(ctx, nil, "iptables", "-t", "nat", "-N", "FOREIGN"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(ctx, nil, "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "1", "-j", "FOREIGN"); err != nil {
		t.Fatal(err)
	}
	in := svcInput(20)
	for _, p := range netfilter.FullPayloads(netfilter.BuildServices(in), nil, 7) { // small chunks
		if err := e.Restore(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	ensureJumps(ctx, t, e)
	ensureJumps(ctx, t, e) // idempotent
	save := saveAll(ctx, t, e)
	if n := strings.Count(save, "-j CLUSTERCTL-SERVICES"); n != 4 {
		t.Errorf("%d jumps to CLUSTERCTL-SERVICES, want 4 (nat PREROUTING+OUTPUT, filter FORWARD+OUTPUT)", n)
	}
	if got := countChains(save, "CLUSTERCTL-SVC-"); got != 20 {
		t.Errorf("%d SVC chains, want 20", got)
	}
	if got := countChains(save, "CLUSTERCTL-SEP-"); got != 100 {
		t.Errorf("%d SEP chains, want 100", got)
	}
	// Remove one service: the diff deletes its chains.
	prev := netfilter.BuildServices(in)
	in.Services = in.Services[1:]
	if err := e.Restore(ctx, netfilter.Diff(prev, netfilter.BuildServices(in))); err != nil {
		t.Fatal(err)
	}
	save = saveAll(ctx, t, e)
	if got := countChains(save, "CLUSTERCTL-SVC-"); got != 19 {
		t.Errorf("after diff: %d SVC chains, want 19", got)
	}
	if got := countChains(save, "CLUSTERCTL-XLB-"); got != 1 {
		t.Errorf("after diff: %d XLB chains, want 1", got)
	}
	// A full render over the current state (stale detection from save) is
	// equivalent; then a full render after losing all services.
	tables, err := netfilter.ParseSave([]byte(save))
	if err != nil {
		t.Fatal(err)
	}
	in.Services = nil
	for _, p := range netfilter.FullPayloads(netfilter.BuildServices(in), tables, 7) {
		if err := e.Restore(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	save = saveAll(ctx, t, e)
	if got := countChains(save, "CLUSTERCTL-SVC-") + countChains(save, "CLUSTERCTL-SEP-"); got != 0 {
		t.Errorf("stale chains left: %d\n%s", got, save)
	}
	if !strings.Contains(save, ":FOREIGN") || !strings.Contains(save, "-j FOREIGN") {
		t.Errorf("foreign chain or rule removed:\n%s", save)
	}
}

// BenchmarkRestoreServices measures the real iptables-restore --noflush of a
// full payload and of a one-service change (render + diff + restore), at 1k
// and 10k services x 5 endpoints, in a private network namespace.
func BenchmarkRestoreServices(b *testing.B) {
	if !inPrivateNetns(b, "bench") {
		return
	}
	ctx := context.Background()
	var e Exec
	for _, size := range strings.Split(*restoreSizes, ",") {
		n, err := strconv.Atoi(size)
		if err != nil {
			b.Fatalf("bad -restore.sizes: %v", err)
		}
		in := svcInput(n)
		full := netfilter.FullPayloads(netfilter.BuildServices(in), nil, 0)
		b.Run(fmt.Sprintf("full-chunked-%d", n), func(b *testing.B) {
			size := 0
			for b.Loop() {
				for _, p := range full {
					size += len(p)
					if err := e.Restore(ctx, p); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(size/b.N), "payload-bytes")
			b.ReportMetric(float64(len(full)), "payloads")
		})
		// The full payload is loaded now: change one Service at a time.
		b.Run(fmt.Sprintf("one-change-%d", n), func(b *testing.B) {
			cache := netfilter.NewServiceCache()
			prev := cache.Build(in)
			var size int
			var restore time.Duration
			const changes = 5 // per iteration; ns/op covers all five
			for b.Loop() {
				for range changes {
					ep := &in.Services[n/2].Endpoints[0]
					ep.Ready = !ep.Ready
					next := cache.Build(in)
					d := netfilter.Diff(prev, next)
					size = len(d)
					t0 := time.Now()
					if err := e.Restore(ctx, d); err != nil {
						b.Fatal(err)
					}
					restore += time.Since(t0)
					prev = next
				}
			}
			b.ReportMetric(float64(size), "payload-bytes")
			b.ReportMetric(float64(restore.Microseconds())/1000/float64(b.N*changes), "restore-ms/change")
		})
	}
}
