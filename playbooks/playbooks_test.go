package playbooks

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/remote"
	"github.com/clusterctl/clusterctl/version"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "playbooks", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func TestRenderContainerdConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    ContainerdParams
	}{
		{"containerd-systemd.toml", ContainerdParams{SandboxImage: version.PauseImage, SystemdCgroup: true, CNIBinDir: "/opt/cni/bin", CNIConfDir: CNIConfDir}},
		{"containerd-lab.toml", ContainerdParams{SandboxImage: version.PauseImage, RestrictOOMScoreAdj: true, CNIBinDir: "/usr/lib/cni", CNIConfDir: CNIConfDir}},
	} {
		t.Run(tc.name, func(t *testing.T) { golden(t, tc.name, RenderContainerdConfig(tc.p)) })
	}
}

func TestRenderCNIConflist(t *testing.T) {
	got, err := RenderCNIConflist(netip.MustParsePrefix("10.244.3.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cni.conflist", got)
	for _, bad := range []string{"10.244.3.0/31", "fd00::/64"} {
		if _, err := RenderCNIConflist(netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("RenderCNIConflist(%s): want an error", bad)
		}
	}
}

func TestRenderUnitAndSysctl(t *testing.T) {
	golden(t, "agentlet.service", RenderAgentletUnit(nodeapi.BinaryPath))
	golden(t, "sysctl.conf", RenderSysctl())
}

// sampleFacts is what factsScript prints on a ready lab host.
func sampleFacts(over map[string]string) string {
	kv := map[string]string{
		"kernel": "6.18.44", "machine": "x86_64", "os": "Debian GNU/Linux 12 (bookworm)", "os_id": "debian",
		"init": "labinit", "cgroup": "1", "overlay": "1", "br_netfilter": "1", "capeff": "000001fffeffffff",
		"pkg": "apt-get", "cni_bin_dir": "/usr/lib/cni", "containerd_backup": "1", "containerd_managed": "1", "containerd_up": "1",
	}
	for _, b := range requiredBinaries() {
		kv["bin_"+b] = "/usr/bin/" + b
	}
	for _, f := range managedFiles() {
		kv["sum:"+f] = ""
	}
	for k, v := range over {
		kv[k] = v
	}
	var b strings.Builder
	for k, v := range kv {
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return b.String()
}

func TestParseFacts(t *testing.T) {
	f, err := ParseFacts([]byte(sampleFacts(map[string]string{"sum:" + CNIConfPath: "abc", "othercni": "/etc/cni/net.d/99-x.conf"})))
	if err != nil {
		t.Fatal(err)
	}
	if f.Init != "labinit" || f.CgroupVersion != 1 || !f.Overlay || f.CapSysResource || f.Sums[CNIConfPath] != "abc" ||
		f.Binaries["runc"] != "/usr/bin/runc" || len(f.OtherCNIConfs) != 1 {
		t.Errorf("ParseFacts: %+v", f)
	}
	if arch, err := f.Arch(); err != nil || arch != "amd64" {
		t.Errorf("Arch() = %q, %v", arch, err)
	}
	f2, _ := ParseFacts([]byte(sampleFacts(map[string]string{"capeff": "000001ffffffffff", "machine": "aarch64"})))
	if !f2.CapSysResource {
		t.Error("CAP_SYS_RESOURCE (bit 24) not detected")
	}
	if arch, _ := f2.Arch(); arch != "arm64" {
		t.Errorf("aarch64 → %q, want arm64", arch)
	}
	if _, err := ParseFacts([]byte("garbage\n")); err == nil {
		t.Error("ParseFacts(garbage): want an error")
	}
}

func TestEvaluatePreflight(t *testing.T) {
	for _, tc := range []struct {
		name     string
		over     map[string]string
		problems int
		missing  []string
		pkgs     []string
	}{
		{"ready", nil, 0, nil, nil},
		{"missing runtime", map[string]string{"bin_containerd": "", "bin_ctr": "", "bin_runc": "", "cni_bin_dir": ""}, 0,
			[]string{"containerd", "ctr", "runc", "CNI plugins (bridge, host-local, portmap, loopback)"}, []string{"containerd", "containernetworking-plugins", "runc"}},
		{"no init, no overlay", map[string]string{"init": "none", "overlay": "0"}, 2, nil, nil},
		{"unknown arch", map[string]string{"machine": "riscv64"}, 1, nil, nil},
		{"missing and no package manager", map[string]string{"bin_iptables": "", "pkg": ""}, 1, []string{"iptables"}, []string{"iptables"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFacts([]byte(sampleFacts(tc.over)))
			if err != nil {
				t.Fatal(err)
			}
			p := EvaluatePreflight(f)
			if len(p.Problems) != tc.problems {
				t.Errorf("problems = %q, want %d", p.Problems, tc.problems)
			}
			if diff := cmp.Diff(tc.missing, p.Missing); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.pkgs, p.Packages); diff != "" {
				t.Errorf("packages (-want +got):\n%s", diff)
			}
			if (p.Err() == nil) != (tc.problems == 0 && len(tc.missing) == 0) {
				t.Errorf("Err() = %v", p.Err())
			}
		})
	}
}

// fakeHost is a Host that answers commands from a script and records them.
type fakeHost struct {
	mu      sync.Mutex
	cmds    []string
	uploads []string
	answer  func(cmd string, stdin []byte) ([]byte, error)
}

func (h *fakeHost) Run(_ context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	var in []byte
	if stdin != nil {
		in, _ = io.ReadAll(stdin)
	}
	h.mu.Lock()
	h.cmds = append(h.cmds, cmd)
	h.mu.Unlock()
	return h.answer(cmd, in)
}

func (h *fakeHost) Upload(_ context.Context, r io.Reader, path string, _ os.FileMode) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.uploads = append(h.uploads, path)
	return nil
}
func (h *fakeHost) TempPath(prefix string) string { return "/tmp/" + prefix + "x" }
func (h *fakeHost) Close() error                  { return nil }

func readyStatus() []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":%q,"daemonRunning":true,"conditions":[{"type":"Ready","status":"True"}]}`, nodeapi.APIVersion))
}

func testSpec(host string) nodeapi.NodeSpec {
	return nodeapi.NodeSpec{APIVersion: nodeapi.APIVersion, NodeName: host, Generation: 1, PodCIDR: "10.244.1.0/24",
		Cluster: nodeapi.ClusterInfo{Name: "t", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", Domain: "cluster.local"}}
}

// TestUpConvergedHostIsTwoRoundTrips checks that a host already in the
// desired state gets exactly two commands (facts; apply+status), and reports no change.
func TestUpConvergedHostIsTwoRoundTrips(t *testing.T) {
	bin := []byte("agentlet-binary")
	conflist, _ := RenderCNIConflist(netip.MustParsePrefix("10.244.1.0/24"))
	registries := []RegistryHost{{Host: "10.250.0.2:5000", Insecure: true, Mirrors: []string{"docker.io"}}}
	converged := map[string]string{
		"sum:" + ContainerdConfigPath: sha256Hex(RenderContainerdConfig(ContainerdParams{SandboxImage: version.PauseImage,
			RestrictOOMScoreAdj: true, CNIBinDir: "/usr/lib/cni", CNIConfDir: CNIConfDir})),
		"sum:" + CNIConfPath:        sha256Hex(conflist),
		"sum:" + SysctlPath:         sha256Hex(RenderSysctl()),
		"sum:" + LabinitUnitPath:    sha256Hex(RenderAgentletUnit(nodeapi.BinaryPath)),
		"sum:" + nodeapi.BinaryPath: sha256Hex(bin),
		"agentlet_running":          "1", "sysctl:net.ipv4.ip_forward": "1", "sysctl:net.bridge.bridge-nf-call-iptables": "1", "sysctl:net.bridge.bridge-nf-call-ip6tables": "1",
	}
	for p, data := range RenderRegistryHosts(registries) { // the registry's and docker.io's hosts.toml
		converged["regsum:"+p] = sha256Hex(data)
	}
	facts := sampleFacts(converged)
	h := &fakeHost{answer: func(cmd string, stdin []byte) ([]byte, error) {
		switch {
		case cmd == "sh -s":
			return []byte(facts), nil
		case strings.Contains(cmd, " apply && echo "+statusMarker):
			return append([]byte("unchanged generation 1\n"+statusMarker+"\n"), readyStatus()...), nil
		}
		return nil, fmt.Errorf("unexpected command %q", cmd)
	}}
	var events []Event
	var mu sync.Mutex
	res := Up(context.Background(), UpOptions{
		Specs: staticSpecs(map[string]nodeapi.NodeSpec{"h1": testSpec("h1")}), Hosts: []string{"h1"},
		Dial:       func(context.Context, string) (Host, error) { return h, nil },
		Agentlet:   func(string) ([]byte, string, error) { return bin, sha256Hex(bin), nil },
		Registries: registries,
		Progress:   func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() },
	})
	if res[0].Err != nil || len(res[0].Changes) != 0 {
		t.Fatalf("converged host: err=%v changes=%v", res[0].Err, res[0].Changes)
	}
	if len(h.uploads) != 0 {
		t.Errorf("converged host got uploads: %v", h.uploads)
	}
	if len(h.cmds) != 2 { // facts; apply + status
		t.Errorf("commands on a converged host = %d, want 2:\n%s", len(h.cmds), strings.Join(h.cmds, "\n---\n"))
	}
	if last := events[len(events)-1]; last.State != HostDone || last.Message != "no changes" {
		t.Errorf("last event = %+v", last)
	}
}

func TestUpReportsFailedStepAndFinishesOthers(t *testing.T) {
	dialErr := &remote.DialError{Host: "h2", Op: remote.OpConnect, Address: "10.0.0.2:22", Err: errors.New("i/o timeout")}
	failing := &fakeHost{answer: func(cmd string, _ []byte) ([]byte, error) {
		if cmd == "sh -s" {
			return []byte(sampleFacts(map[string]string{"bin_runc": ""})), nil
		}
		return nil, nil
	}}
	res := Up(context.Background(), UpOptions{
		Specs: staticSpecs(map[string]nodeapi.NodeSpec{"h1": testSpec("h1"), "h2": testSpec("h2")}), Hosts: []string{"h1", "h2"},
		Dial: func(_ context.Context, name string) (Host, error) {
			if name == "h2" {
				return nil, dialErr
			}
			return failing, nil
		},
		Agentlet: func(string) ([]byte, string, error) { return nil, "", errors.New("not reached") },
	})
	var se *StepError
	if !errors.As(res[0].Err, &se) || se.Step != "preflight" || !strings.Contains(se.Error(), "missing: runc (install runc") {
		t.Errorf("h1: want a preflight StepError naming runc, got %v", res[0].Err)
	}
	if !errors.As(res[1].Err, &se) || se.Step != "connect" || !IsUnreachable(res[1].Err) {
		t.Errorf("h2: want an unreachable connect StepError, got %v", res[1].Err)
	}
	if time.Duration(0) > res[0].Elapsed {
		t.Error("elapsed not recorded")
	}
}

func TestSummarize(t *testing.T) {
	st, err := nodeapi.DecodeNodeStatus(readyStatus())
	if err != nil {
		t.Fatal(err)
	}
	notReady := *st
	notReady.Conditions = []nodeapi.Condition{{Type: "Ready", Status: "False"}, {Type: nodeapi.ConditionSandboxImage, Status: "False", Reason: "ImportFailed", Message: "ctr: not found"}}
	for _, tc := range []struct {
		name   string
		o      Observation
		status string
		reason string
	}{
		{"ready", Observation{Installed: true, Status: st}, StatusReady, ""},
		{"unreachable", Observation{Err: &remote.DialError{Op: remote.OpConnect, Err: errors.New("timeout")}}, StatusUnreachable, "timeout"},
		{"not installed", Observation{}, StatusNotReady, "AgentletNotInstalled"},
		{"condition false", Observation{Installed: true, Status: &notReady}, StatusNotReady, "SandboxImageReady=False (ImportFailed: ctr: not found)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := Summarize(tc.o)
			if s != tc.status || !strings.Contains(r, tc.reason) {
				t.Errorf("Summarize = %q, %q; want %q, …%q…", s, r, tc.status, tc.reason)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"/usr/local/bin/agentlet": "/usr/local/bin/agentlet", "a b": "'a b'", "it's": `'it'\''s'`, "": "''"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// staticSpecs is an UpOptions.Specs that ignores the facts.
func staticSpecs(specs map[string]nodeapi.NodeSpec) func(map[string]*Facts) (map[string]nodeapi.NodeSpec, error) {
	return func(map[string]*Facts) (map[string]nodeapi.NodeSpec, error) { return specs, nil }
}
