package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// bin is the clusterctl binary under test: $CLUSTERCTL_BIN (set by make) or
// one built into a temp dir by TestMain.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin = os.Getenv("CLUSTERCTL_BIN")
	if bin == "" {
		dir, err := os.MkdirTemp("", "clusterctl-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "clusterctl")
		cmd := exec.Command("go", "build", "-o", bin, "../cmd/clusterctl")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build clusterctl:", err)
			return 1
		}
	}
	return m.Run()
}

// result is one clusterctl invocation.
type result struct {
	args   []string
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("clusterctl %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

func clusterctl(t testing.TB, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "CLUSTERCTL_INVENTORY=", "SSH_AUTH_SOCK=")
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run clusterctl %v: %v", args, err)
	}
	return r
}

func mustOK(t testing.TB, args ...string) result {
	t.Helper()
	r := clusterctl(t, args...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	return r
}

func needLab(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("skipping lab test: the local lab needs Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping lab test: the local lab needs root (network, mount and PID namespaces)")
	}
	for _, b := range []string{"containerd", "runc", "/usr/sbin/sshd", "iptables-restore", "nft", "nsenter", "unshare"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("skipping lab test: %s not installed (run make deps)", b)
		}
	}
}

// lab is one test lab with a unique name and subnet.
type lab struct {
	name, inv, subnet string
}

func newLab(t testing.TB, hosts int) *lab {
	t.Helper()
	needLab(t)
	id := os.Getpid() % 200
	l := &lab{
		name:   fmt.Sprintf("e2e%d", id),
		inv:    filepath.Join(t.TempDir(), "cluster.yaml"),
		subnet: fmt.Sprintf("10.251.%d.0/24", id),
	}
	t.Cleanup(func() {
		if r := clusterctl(t, l.labArgs("down")...); r.code != 0 {
			t.Errorf("lab down: %s", r)
		}
	})
	mustOK(t, l.labArgs("up", "--hosts", fmt.Sprint(hosts), "--inventory", l.inv)...)
	return l
}

func (l *lab) labArgs(args ...string) []string {
	return append([]string{"lab", args[0], "--name", l.name, "--subnet", l.subnet}, args[1:]...)
}

// exec runs a shell command inside a lab host.
func (l *lab) exec(t testing.TB, host, script string) string {
	t.Helper()
	return mustOK(t, append(l.labArgs("exec"), host, "--", "sh", "-c", script)...).stdout
}

type nodeJSON struct {
	Name        string            `json:"name"`
	Status      string            `json:"status"`
	Reason      string            `json:"reason"`
	PodCIDR     string            `json:"podCIDR"`
	Labels      map[string]string `json:"labels"`
	Agentlet    string            `json:"agentletVersion"`
	Containerd  string            `json:"containerdVersion"`
	Kernel      string            `json:"kernel"`
	Capacity    map[string]any    `json:"capacity"`
	Allocatable map[string]any    `json:"allocatable"`
}

func getNodes(t *testing.T, inv string) map[string]nodeJSON {
	t.Helper()
	r := clusterctl(t, "get", "nodes", "-i", inv, "-o", "json")
	var list struct {
		Items []nodeJSON `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("decode get nodes -o json: %v\n%s", err, r)
	}
	m := map[string]nodeJSON{}
	for _, n := range list.Items {
		m[n.Name] = n
	}
	return m
}

func TestBringUp(t *testing.T) {
	l := newLab(t, 3)
	hosts := []string{"h1", "h2", "h3"}

	// A user comment in the inventory must survive every save.
	orig, err := os.ReadFile(l.inv)
	if err != nil {
		t.Fatal(err)
	}
	const comment = "# my own note: keep me"
	if err := os.WriteFile(l.inv, append([]byte(comment+"\n"), orig...), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("up", func(t *testing.T) {
		r := mustOK(t, "up", "-i", l.inv)
		for _, h := range hosts {
			if !regexp.MustCompile(`(?m)^` + h + `\s+done: \d+ changed`).MatchString(r.stdout) {
				t.Errorf("first up: no change summary for %s:\n%s", h, r)
			}
		}
		nodes := getNodes(t, l.inv)
		cidrs := map[string]bool{}
		for _, h := range hosts {
			n := nodes[h]
			if n.Status != "Ready" {
				t.Errorf("%s: status %q (%s), want Ready", h, n.Status, n.Reason)
			}
			if n.PodCIDR == "" || cidrs[n.PodCIDR] {
				t.Errorf("%s: pod CIDR %q missing or duplicated", h, n.PodCIDR)
			}
			cidrs[n.PodCIDR] = true
			if !strings.Contains(n.Containerd, "1.") || n.Kernel == "" || n.Agentlet == "" {
				t.Errorf("%s: incomplete node info %+v", h, n)
			}
		}
		data, _ := os.ReadFile(l.inv)
		if !strings.Contains(string(data), comment) {
			t.Errorf("user comment lost after up:\n%s", data)
		}
		if !strings.Contains(string(data), "podCIDR: 10.244.") {
			t.Errorf("pod CIDRs not recorded in the inventory:\n%s", data)
		}
	})

	t.Run("up again changes nothing", func(t *testing.T) {
		before, _ := os.ReadFile(l.inv)
		r := mustOK(t, "up", "-i", l.inv)
		for _, h := range hosts {
			if !regexp.MustCompile(`(?m)^` + h + `\s+done: no changes`).MatchString(r.stdout) {
				t.Errorf("second up: %s not reported unchanged:\n%s", h, r)
			}
		}
		after, _ := os.ReadFile(l.inv)
		if !bytes.Equal(before, after) {
			t.Errorf("second up rewrote the inventory:\n--- before\n%s\n--- after\n%s", before, after)
		}
	})

	t.Run("output formats", func(t *testing.T) {
		wide := mustOK(t, "get", "nodes", "-i", l.inv, "-o", "wide").stdout
		for _, col := range []string{"NAME", "STATUS", "POD-CIDR", "AGENTLET", "CONTAINERD", "KERNEL"} {
			if !strings.Contains(wide, col) {
				t.Errorf("get nodes -o wide lacks column %s:\n%s", col, wide)
			}
		}
		if y := mustOK(t, "get", "nodes", "-i", l.inv, "-o", "yaml").stdout; !strings.Contains(y, "name: h1") {
			t.Errorf("get nodes -o yaml:\n%s", y)
		}
		d := mustOK(t, "describe", "node", "h1", "-i", l.inv).stdout
		for _, want := range []string{"ContainerRuntimeReady", "SandboxImageReady", "Capacity", "Allocatable"} {
			if !strings.Contains(d, want) {
				t.Errorf("describe node lacks %q:\n%s", want, d)
			}
		}
		if r := clusterctl(t, "describe", "node", "nope", "-i", l.inv); r.code != 2 {
			t.Errorf("describe unknown node: want exit 2: %s", r)
		}
	})

	t.Run("upgrade replaces a different agentlet", func(t *testing.T) {
		// An agentlet that differs from the embedded one (a trailing byte keeps the ELF runnable).
		l.exec(t, "h1", "cp /usr/local/bin/agentlet /tmp/a && printf x >> /tmp/a && mv /tmp/a /usr/local/bin/agentlet")
		r := mustOK(t, "up", "-i", l.inv)
		if !regexp.MustCompile(`(?m)^h1\s+done: .*agentlet upgraded`).MatchString(r.stdout) {
			t.Errorf("h1 agentlet not upgraded:\n%s", r)
		}
		if !regexp.MustCompile(`(?m)^h2\s+done: no changes`).MatchString(r.stdout) {
			t.Errorf("h2 should be unchanged:\n%s", r)
		}
		if n := getNodes(t, l.inv)["h1"]; n.Status != "Ready" {
			t.Errorf("h1 after upgrade: %+v", n)
		}
	})

	t.Run("host key mismatch is refused", func(t *testing.T) {
		kh := knownHostsPath(t, l.inv)
		orig, err := os.ReadFile(kh)
		if err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(kh, orig, 0o600)
		// Swap h3's key for h1's: a perfect impostor.
		lines := strings.Split(strings.TrimSpace(string(orig)), "\n")
		keyOf := func(addr string) string {
			for _, ln := range lines {
				if f := strings.Fields(ln); len(f) == 3 && f[0] == addr {
					return f[1] + " " + f[2]
				}
			}
			t.Fatalf("no known_hosts line for %s in\n%s", addr, orig)
			return ""
		}
		h1, h3 := hostAddr(t, l.inv, "h1"), hostAddr(t, l.inv, "h3")
		var forged []string
		for _, ln := range lines {
			if strings.HasPrefix(ln, h3+" ") {
				ln = h3 + " " + keyOf(h1)
			}
			forged = append(forged, ln)
		}
		os.WriteFile(kh, []byte(strings.Join(forged, "\n")+"\n"), 0o600)
		before := l.exec(t, "h3", "stat -c %Y /usr/local/bin/agentlet /etc/containerd/config.toml")
		r := clusterctl(t, "up", "-i", l.inv)
		if r.code != 4 {
			t.Errorf("want exit 4 for a host key mismatch: %s", r)
		}
		if n := strings.Count(r.stdout+r.stderr, "SHA256:"); n < 2 {
			t.Errorf("mismatch error should name both fingerprints:\n%s", r)
		}
		if after := l.exec(t, "h3", "stat -c %Y /usr/local/bin/agentlet /etc/containerd/config.toml"); after != before {
			t.Errorf("h3 changed despite the mismatch: %q → %q", before, after)
		}
	})

	t.Run("one dead host does not stop the others", func(t *testing.T) {
		mustOK(t, l.labArgs("kill", "h2")...)
		start := time.Now()
		r := clusterctl(t, "up", "-i", l.inv)
		if r.code != 3 {
			t.Errorf("want exit 3 with one host down: %s", r)
		}
		if !strings.Contains(r.stdout+r.stderr, "h2") || !strings.Contains(r.stdout+r.stderr, "connect") {
			t.Errorf("error should name h2 and the connect step:\n%s", r)
		}
		for _, h := range []string{"h1", "h3"} {
			if !regexp.MustCompile(`(?m)^` + h + `\s+done: no changes`).MatchString(r.stdout) {
				t.Errorf("%s should have finished:\n%s", h, r)
			}
		}
		t.Logf("up with one dead host took %s", time.Since(start).Round(time.Millisecond))
		nodes := getNodes(t, l.inv)
		if nodes["h2"].Status != "Unreachable" || nodes["h2"].Reason == "" {
			t.Errorf("h2 should be Unreachable with a reason: %+v", nodes["h2"])
		}
		mustOK(t, l.labArgs("boot", "h2")...)
		// agentlet is a service: it comes back by itself after the reboot.
		deadline := time.Now().Add(60 * time.Second)
		for {
			if n := getNodes(t, l.inv)["h2"]; n.Status == "Ready" {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("h2 not Ready 60s after boot: %+v", n)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	t.Run("reset undoes up", func(t *testing.T) {
		mustOK(t, "reset", "--yes", "-i", l.inv)
		for _, h := range hosts {
			out := l.exec(t, h, `
ls /usr/local/bin/agentlet /var/lib/agentlet /etc/cni/net.d/10-clusterctl.conflist /etc/labinit/agentlet.service 2>/dev/null
iptables-save | grep -c CLUSTERCTL- || true
grep -c 'managed by clusterctl' /etc/containerd/config.toml || true
timeout 3 ctr version >/dev/null && echo containerd-up`)
			if want := "0\n0\ncontainerd-up\n"; out != want {
				t.Errorf("%s after reset: got %q, want %q (no agentlet, no chains, original containerd config, containerd running)", h, out, want)
			}
		}
		nodes := getNodes(t, l.inv)
		for _, h := range hosts {
			if n := nodes[h]; n.Status != "NotReady" || !strings.Contains(n.Reason, "AgentletNotInstalled") {
				t.Errorf("%s after reset: %+v", h, n)
			}
		}
		data, _ := os.ReadFile(l.inv)
		if strings.Contains(string(data), "podCIDR: 10.244.") {
			t.Errorf("reset left host state in the inventory:\n%s", data)
		}
	})
}

func TestInventoryValidate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: clusterctl.dev/v1alpha1\nkind: Inventory\ncluster:\n  name: x\n  podCIDR: 10.0.0.0/33\nhosts:\n  - name: a\n    adress: 10.0.0.1\n"), 0o600)
	r := clusterctl(t, "inventory", "validate", "-i", bad)
	if r.code != 2 {
		t.Errorf("want exit 2: %s", r)
	}
	for _, want := range []string{"bad.yaml:5: cluster.podCIDR", "bad.yaml:8: hosts[0].adress"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("validate output lacks %q:\n%s", want, r)
		}
	}
	if r := clusterctl(t, "get", "nodes", "-i", filepath.Join(dir, "missing.yaml")); r.code != 2 {
		t.Errorf("missing inventory: want exit 2: %s", r)
	}
}

// TestUpOnInventory brings up whatever CLUSTERCTL_E2E_INVENTORY points at
// (e.g. the Vagrant VMs) and checks every node is Ready.
func TestUpOnInventory(t *testing.T) {
	inv := os.Getenv("CLUSTERCTL_E2E_INVENTORY")
	if inv == "" {
		t.Skip("skipping: set CLUSTERCTL_E2E_INVENTORY to run against real hosts (see README, Vagrant)")
	}
	mustOK(t, "up", "-i", inv, "--install-missing")
	r := mustOK(t, "up", "-i", inv)
	if strings.Contains(r.stdout, "changed") {
		t.Errorf("second up changed something:\n%s", r)
	}
	for name, n := range getNodes(t, inv) {
		if n.Status != "Ready" {
			t.Errorf("%s: %s (%s)", name, n.Status, n.Reason)
		}
	}
}

func knownHostsPath(t *testing.T, inv string) string {
	t.Helper()
	data, _ := os.ReadFile(inv)
	m := regexp.MustCompile(`(?m)^\s*knownHosts:\s*(\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no knownHosts in %s", inv)
	}
	return string(m[1])
}

func hostAddr(t *testing.T, inv, host string) string {
	t.Helper()
	data, _ := os.ReadFile(inv)
	m := regexp.MustCompile(`(?m)-\s*name:\s*` + host + `\s*\n\s*address:\s*(\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no address for %s in %s", host, inv)
	}
	return string(m[1])
}
