package agentlet

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/clusterctl/clusterctl/agentlet/iptables"
	"github.com/clusterctl/clusterctl/agentlet/netfilter"
)

// inNetnsEnv marks a test process re-executed inside a private network
// namespace; its value is the parent's namespace, which the child must not be in.
const inNetnsEnv = "AGENTLET_TEST_PRIVATE_NETNS"

// inPrivateNetns makes the calling test run inside a fresh network
// namespace: the first call re-executes the test binary under `unshare -n`
// for just this test and returns false (the caller returns; the child's
// result is this test's result); inside the child it returns true. The real
// machine's iptables are never touched: the namespace dies with the child.
func inPrivateNetns(t *testing.T) bool {
	t.Helper()
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Skipf("cannot identify the network namespace: %v", err)
	}
	if parent := os.Getenv(inNetnsEnv); parent != "" {
		if self == parent {
			t.Fatalf("refusing to touch iptables: still in the parent's network namespace %s", self)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs iptables in a private network namespace (unshare -n)")
	}
	for _, tool := range []string{"unshare", "iptables", "iptables-save", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	var pattern []string
	for _, part := range strings.Split(t.Name(), "/") {
		pattern = append(pattern, "^"+part+"$")
	}
	cmd := exec.Command("unshare", "-n", "--", os.Args[0], "-test.run="+strings.Join(pattern, "/"), "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), inNetnsEnv+"="+self)
	out, err := cmd.CombinedOutput()
	t.Logf("in a private network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("test in private network namespace failed: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS")) {
		t.Fatal("the child ran no test")
	}
	return false
}

// backend is one iptables implementation on this machine.
type backend struct {
	name string
	ipt  iptables.Exec
}

func backends() []backend {
	bs := []backend{{name: "default", ipt: iptables.Exec{}}}
	if _, err := exec.LookPath("iptables-legacy"); err == nil {
		bs = append(bs, backend{name: "legacy", ipt: iptables.Exec{
			IptablesBin: "iptables-legacy", SaveBin: "iptables-legacy-save", RestoreBin: "iptables-legacy-restore"}})
	}
	return bs
}

// TestIptablesIntegration runs the base rules and teardown against the real
// iptables tools (nft and legacy backends) in a private network namespace.
func TestIptablesIntegration(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			if !inPrivateNetns(t) {
				return
			}
			ctx := t.Context()
			ipt := b.ipt
			sh := func(args ...string) {
				t.Helper()
				bin := ipt.IptablesBin
				if bin == "" {
					bin = "iptables"
				}
				if out, err := exec.Command(bin, append([]string{"-w"}, args...)...).CombinedOutput(); err != nil {
					t.Fatalf("iptables %v: %v\n%s", args, err, out)
				}
			}
			save := func() string {
				t.Helper()
				var all strings.Builder
				for _, table := range TeardownTables() {
					out, err := ipt.Save(ctx, table)
					if err != nil {
						t.Fatal(err)
					}
					for _, line := range strings.Split(string(out), "\n") {
						if !strings.HasPrefix(line, "#") { // drop the timestamped comments
							all.WriteString(line + "\n")
						}
					}
				}
				return all.String()
			}

			// Foreign rules: a DROP forward policy, a user chain, a nat rule.
			sh("-P", "FORWARD", "DROP")
			sh("-N", "FOREIGN")
			sh("-A", "FOREIGN", "-j", "RETURN")
			sh("-A", "FORWARD", "-j", "FOREIGN")
			sh("-A", "FORWARD", "-s", "192.0.2.0/24", "-m", "comment", "--comment", "foreign rule", "-j", "ACCEPT")
			sh("-t", "nat", "-A", "POSTROUTING", "-s", "198.51.100.0/24", "-j", "MASQUERADE")
			baseline := save()

			base, err := netfilter.BaseFromSpec(testSpec(1))
			if err != nil {
				t.Fatal(err)
			}
			if err := EnsureBaseRules(ctx, ipt, base); err != nil {
				t.Fatal(err)
			}
			first := save()
			if err := EnsureBaseRules(ctx, ipt, base); err != nil {
				t.Fatal(err)
			}
			second := save()
			if first != second {
				t.Errorf("ensuring twice changed the rules:\n--- first\n%s--- second\n%s", first, second)
			}
			for _, want := range []string{
				":CLUSTERCTL-FORWARD - [0:0]",
				"-A FORWARD -m comment --comment clusterctl -j CLUSTERCTL-FORWARD\n-A FORWARD -j FOREIGN", // our jump first
				`-A CLUSTERCTL-FORWARD -s 10.244.0.0/16 -m comment --comment "clusterctl: from pods" -j ACCEPT`,
				`-A CLUSTERCTL-FORWARD -d 10.244.0.0/16 -m comment --comment "clusterctl: to pods" -j ACCEPT`,
				`-A FORWARD -s 192.0.2.0/24 -m comment --comment "foreign rule" -j ACCEPT`,
				"-A FOREIGN -j RETURN",
				"-A POSTROUTING -s 198.51.100.0/24 -j MASQUERADE",
				":FORWARD DROP",
			} {
				if !strings.Contains(second, want) {
					t.Errorf("missing %q in:\n%s", want, second)
				}
			}
			// The daemon's cheap check sees the rules as in place.
			filter, err := ipt.Save(ctx, "filter")
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := netfilter.BaseInPlace(filter, base); !ok || err != nil {
				t.Errorf("BaseInPlace after ensure = %v, %v", ok, err)
			}

			// Someone flushes our chain: the check notices, ensuring repairs it.
			sh("-F", netfilter.ForwardChain)
			filter, _ = ipt.Save(ctx, "filter")
			if ok, _ := netfilter.BaseInPlace(filter, base); ok {
				t.Error("BaseInPlace missed a flushed chain")
			}
			if err := EnsureBaseRules(ctx, ipt, base); err != nil {
				t.Fatal(err)
			}
			if got := save(); got != second {
				t.Errorf("repair differs:\n%s", got)
			}

			// Add a foreign rule after ours, then tear down: exactly the
			// baseline plus that rule remains.
			sh("-A", "FORWARD", "-d", "203.0.113.0/24", "-j", "ACCEPT")
			paths := Paths{Root: t.TempDir()}
			res, err := Teardown(ctx, ipt, paths, TeardownTables())
			if err != nil {
				t.Fatal(err)
			}
			if res.Payload == nil {
				t.Fatal("teardown found nothing to remove")
			}
			want := strings.Replace(baseline, "-A FORWARD -s 192.0.2.0/24 -m comment --comment \"foreign rule\" -j ACCEPT\n",
				"-A FORWARD -s 192.0.2.0/24 -m comment --comment \"foreign rule\" -j ACCEPT\n-A FORWARD -d 203.0.113.0/24 -j ACCEPT\n", 1)
			if got := save(); got != want {
				t.Errorf("after teardown:\n%s\nwant:\n%s", got, want)
			}
			res, err = Teardown(ctx, ipt, paths, TeardownTables())
			if err != nil || res.Payload != nil {
				t.Errorf("second teardown = %q, %v; want nothing to do", res.Payload, err)
			}
		})
	}
}
