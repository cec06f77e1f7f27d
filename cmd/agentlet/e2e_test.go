package main

// End-to-end test of the real agentlet binary against a real containerd.
//
// Everything runs in a private world: a containerd of our own (temp root,
// state, socket, opt and CNI directories) and the agentlet daemon, both in a
// network namespace ccagt-test-<pid> created here and deleted afterwards, so
// neither the machine's containerd nor its iptables are ever touched.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/pause"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

const containerdConfig = `version = 2
root = "{{dir}}/root"
state = "{{dir}}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{{dir}}/containerd.sock"
[ttrpc]
  address = "{{dir}}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{dir}}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{pause}}"
  netns_mounts_under_state_dir = true
  # this machine lacks CAP_SYS_RESOURCE
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{{dir}}/cni"
    max_conf_num = 1
`

const conflist = `{
  "cniVersion": "1.0.0",
  "name": "clusterctl",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

// world is one private containerd + agentlet setup.
type world struct {
	t        testing.TB
	dir      string // temp dir: containerd dirs, socket, agentlet root
	netns    string
	agentlet string // the built binary
	sock     string
	root     string // agentlet --root

	containerdPid int
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts a private containerd and network namespace")
	}
	for _, tool := range []string{"containerd", "ctr", "runc", "ip", "nsenter", "iptables", "iptables-save", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	return root
}

// goCmd runs the go tool in the repository root.
func goCmd(t testing.TB, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// buildAgentlet runs the `make build` sequence for this machine's
// architecture into dir: cmd/pause → tools/mkimage → pause tar → agentlet.
// The fresh tar is embedded through -overlay, so the source tree is not
// written to.
func buildAgentlet(t testing.TB, dir string) string {
	t.Helper()
	arch := runtime.GOARCH
	pauseBin := filepath.Join(dir, "pause-linux-"+arch)
	mkimage := filepath.Join(dir, "mkimage")
	tarball := filepath.Join(dir, pause.FileName(arch))
	bin := filepath.Join(dir, "agentlet") // comm must be "agentlet"
	goCmd(t, []string{"GOOS=linux", "GOARCH=" + arch}, "build", "-trimpath", "-ldflags", "-s -w", "-o", pauseBin, "./cmd/pause")
	goCmd(t, nil, "build", "-trimpath", "-o", mkimage, "./tools/mkimage")
	cmd := exec.Command(mkimage, "-ref", version.PauseImage, "-arch", arch, "-file", "/pause="+pauseBin+":0755",
		"-entrypoint", "/pause", "-o", tarball)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, out)
	}
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(repoRoot(t), "agentlet", "pause", "image", pause.FileName(arch)): tarball,
	}})
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd(t, []string{"GOOS=linux", "GOARCH=" + arch}, "build", "-trimpath", "-tags", "grpcnotrace", "-overlay", overlayFile,
		"-ldflags", "-s -w -X github.com/clusterctl/clusterctl/version.Version=e2e-test", "-o", bin, "./cmd/agentlet")
	return bin
}

func newWorld(t testing.TB) *world {
	t.Helper()
	requireRoot(t)
	dir, err := os.MkdirTemp("", "ccagt-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, dir: dir, netns: fmt.Sprintf("ccagt-test-%d", os.Getpid()), sock: filepath.Join(dir, "containerd.sock"),
		root: filepath.Join(dir, "agentlet-root")}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	w.agentlet = buildAgentlet(t, dir)

	if out, err := exec.Command("ip", "netns", "add", w.netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", w.netns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", w.netns, err, out)
		}
	})
	w.inNetns("ip", "link", "set", "lo", "up")

	for _, d := range []string{"root", "state", "opt", "cni"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := strings.NewReplacer("{{dir}}", dir, "{{pause}}", version.PauseImage).Replace(containerdConfig)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// containerd runs in the network namespace (nsenter, not `ip netns
	// exec`, which remounts /sys and hides the cgroup tree) and in a private
	// mount namespace with a tmpfs on /run, so the shim sockets, runc state
	// and fifos it and ctr create under /run/containerd never reach the
	// machine's /run. nsenter, unshare and sh exec: the PID is containerd's.
	ctrd := exec.Command("nsenter", "--net=/run/netns/"+w.netns, "--", "unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount -t tmpfs -o mode=0755 ccagt-run /run && exec containerd --config "$0"`, filepath.Join(dir, "config.toml"))
	ctrd.Stdout, ctrd.Stderr = log, log
	ctrd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := ctrd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop(t, ctrd, 10*time.Second)
		log.Close()
		if t.Failed() {
			data, _ := os.ReadFile(log.Name())
			t.Logf("containerd log:\n%s", tail(data, 40))
		}
	})
	w.waitFor("containerd to answer", 20*time.Second, func() bool {
		return exec.Command("ctr", "--address", w.sock, "version").Run() == nil
	})
	w.containerdPid = ctrd.Process.Pid
	return w
}

// stop ends a process we started: SIGTERM, then SIGKILL after timeout.
func stop(t testing.TB, cmd *exec.Cmd, timeout time.Duration) error {
	t.Helper()
	if cmd.Process == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop within %s", cmd.Path, timeout)
	}
}

func tail(data []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (w *world) inNetns(args ...string) string {
	w.t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=/run/netns/" + w.netns, "--"}, args...)...).CombinedOutput()
	if err != nil {
		w.t.Fatalf("%v in %s: %v\n%s", args, w.netns, err, out)
	}
	return string(out)
}

func (w *world) waitFor(what string, timeout time.Duration, ok func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// agentletCmd runs the agentlet binary inside the namespace.
func (w *world) agentletCmd(stdin []byte, args ...string) (int, string, string) {
	w.t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + w.netns, "--", w.agentlet}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	default:
		w.t.Fatalf("run agentlet %v: %v", args, err)
		return 0, "", ""
	}
}

func (w *world) status(extra ...string) *nodeapi.NodeStatus {
	w.t.Helper()
	code, out, errs := w.agentletCmd(nil, append([]string{"status", "--root", w.root}, extra...)...)
	if code != 0 {
		w.t.Fatalf("agentlet status exit %d: %s", code, errs)
	}
	st, err := nodeapi.DecodeNodeStatus([]byte(out))
	if err != nil {
		w.t.Fatalf("decode status: %v\n%s", err, out)
	}
	return st
}

func condStatus(st *nodeapi.NodeStatus, typ string) string {
	c, _ := st.Condition(typ)
	return c.Status + "/" + c.Reason
}

func (w *world) specJSON(gen int64) []byte {
	s := nodeapi.NodeSpec{
		APIVersion: nodeapi.APIVersion,
		NodeName:   "h1",
		Cluster:    nodeapi.ClusterInfo{Name: "e2e", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", Domain: "cluster.local"},
		PodCIDR:    "10.244.1.0/24",
		Generation: gen,
		Writer:     "e2e@test",
		WrittenAt:  time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
	}
	data, err := json.Marshal(s)
	if err != nil {
		w.t.Fatal(err)
	}
	return data
}

func saveRules(w *world) string {
	var b strings.Builder
	for _, table := range []string{"filter", "nat"} {
		for _, line := range strings.Split(w.inNetns("iptables-save", "-t", table), "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

func TestDaemonEndToEnd(t *testing.T) {
	w := newWorld(t)
	cniDir := filepath.Join(w.dir, "cni")

	// The node has never run agentlet: status answers anyway.
	st := w.status()
	if st.DaemonRunning || st.Ready() || condStatus(st, nodeapi.ConditionReady) != "False/AgentletNotRunning" {
		t.Fatalf("before the daemon: running %v, Ready %s", st.DaemonRunning, condStatus(st, nodeapi.ConditionReady))
	}

	// Start the daemon.
	logFile := filepath.Join(w.dir, "agentlet.log")
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	daemon := exec.Command("nsenter", "--net=/run/netns/"+w.netns, "--", w.agentlet, "daemon", "--root", w.root,
		"--runtime-endpoint", "unix://"+w.sock, "--interval", "500ms", "--cni-conf-dir", cniDir)
	daemon.Stdout, daemon.Stderr = log, log
	daemon.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = stop(t, daemon, 5*time.Second)
		}
		if t.Failed() {
			data, _ := os.ReadFile(logFile)
			t.Logf("agentlet log:\n%s", tail(data, 60))
		}
	})

	// The sandbox image gets imported with ctr.
	w.waitFor("SandboxImageReady=True", 30*time.Second, func() bool {
		st = w.status()
		return condStatus(st, nodeapi.ConditionSandboxImage) == "True/ImagePresent"
	})
	images := w.inNetns("ctr", "--address", w.sock, "-n", "k8s.io", "images", "ls", "-q")
	if !strings.Contains(images, version.PauseImage) {
		t.Errorf("ctr images ls lacks %s:\n%s", version.PauseImage, images)
	}
	if !st.DaemonRunning || condStatus(st, nodeapi.ConditionRuntimeReady) != "True/RuntimeReady" ||
		condStatus(st, nodeapi.ConditionNetworkReady) != "False/NoCNIConfig" || condStatus(st, nodeapi.ConditionSpecApplied) != "False/NoSpec" ||
		st.Ready() || st.Runtime.Name != "containerd" || st.AgentletVersion != "e2e-test" || st.Capacity.CPUMillis < 1000 {
		t.Errorf("after import: %+v", st)
	}
	pidData, err := os.ReadFile(filepath.Join(w.root, nodeapi.PidPath))
	if err != nil || strings.TrimSpace(string(pidData)) != strconv.Itoa(daemon.Process.Pid) {
		t.Errorf("pid file = %q, %v; want %d", pidData, err, daemon.Process.Pid)
	}
	if fi, err := os.Stat(filepath.Join(w.root, nodeapi.StatusPath)); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("status file: %v %v", fi, err)
	}

	// A second daemon is refused.
	code, _, errs := w.agentletCmd(nil, "daemon", "--root", w.root, "--runtime-endpoint", "unix://"+w.sock)
	if code != 1 || !strings.Contains(errs, fmt.Sprintf("another agentlet daemon (pid %d)", daemon.Process.Pid)) {
		t.Errorf("second daemon: exit %d %q", code, errs)
	}

	// containerd's CRI sees a CNI config: NetworkReady.
	if err := os.WriteFile(filepath.Join(cniDir, "10-clusterctl.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	w.waitFor("NetworkReady=True", 20*time.Second, func() bool {
		return condStatus(w.status(), nodeapi.ConditionNetworkReady) == "True/NetworkReady"
	})

	// A foreign rule and a DROP policy exist before our rules arrive.
	w.inNetns("iptables", "-w", "-P", "FORWARD", "DROP")
	w.inNetns("iptables", "-w", "-A", "FORWARD", "-s", "192.0.2.0/24", "-j", "ACCEPT")

	// Apply: written 0600, the daemon is woken (SIGHUP) and converges.
	code, out, errs := w.agentletCmd(w.specJSON(2), "apply", "--root", w.root)
	if code != 0 || out != "applied generation 2\n" {
		t.Fatalf("apply: exit %d %q %q", code, out, errs)
	}
	fi, err := os.Stat(filepath.Join(w.root, nodeapi.SpecPath))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("spec file mode: %v %v", fi, err)
	}
	if di, err := os.Stat(filepath.Join(w.root, nodeapi.StateDir)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode: %v %v", di, err)
	}
	w.waitFor("Ready=True", 10*time.Second, func() bool {
		st = w.status()
		return st.Ready()
	})
	if st.SpecGeneration != 2 || st.NodeName != "h1" || st.SpecWriter != "e2e@test" || !st.DaemonRunning {
		t.Errorf("ready status: gen %d node %q writer %q running %v", st.SpecGeneration, st.NodeName, st.SpecWriter, st.DaemonRunning)
	}
	code, out, _ = w.agentletCmd(nil, "status", "--root", w.root, "--wait", "5s")
	if code != 0 || !strings.Contains(out, `"daemonRunning": true`) {
		t.Errorf("status --wait: exit %d", code)
	}

	// Rules: our chain and jump, the foreign rule kept, stable across ticks.
	rules := saveRules(w)
	for _, want := range []string{
		":FORWARD DROP",
		"-A FORWARD -m comment --comment clusterctl -j CLUSTERCTL-FORWARD",
		"-A FORWARD -s 192.0.2.0/24 -j ACCEPT",
		`-A CLUSTERCTL-FORWARD -s 10.244.0.0/16 -m comment --comment "clusterctl: from pods" -j ACCEPT`,
		`-A CLUSTERCTL-FORWARD -d 10.244.0.0/16 -m comment --comment "clusterctl: to pods" -j ACCEPT`,
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q:\n%s", want, rules)
		}
	}
	time.Sleep(1500 * time.Millisecond) // three ticks
	if again := saveRules(w); again != rules {
		t.Errorf("rules changed between ticks:\n%s\n---\n%s", rules, again)
	}
	// Someone flushes our chain: the next tick restores it.
	w.inNetns("iptables", "-w", "-F", "CLUSTERCTL-FORWARD")
	w.waitFor("rules restored", 5*time.Second, func() bool { return saveRules(w) == rules })

	// Idempotent re-apply; fenced older generation; invalid input.
	code, out, _ = w.agentletCmd(w.specJSON(2), "apply", "--root", w.root)
	if code != 0 || out != "unchanged generation 2\n" {
		t.Errorf("re-apply: exit %d %q", code, out)
	}
	code, out, errs = w.agentletCmd(w.specJSON(1), "apply", "--root", w.root)
	if code != 4 || out != "" || !strings.Contains(errs, "refuse node spec generation 1 on h1: it holds generation 2 written by e2e@test") {
		t.Errorf("stale apply: exit %d %q %q", code, out, errs)
	}
	code, _, _ = w.agentletCmd([]byte(`{"apiVersion":"nope"}`), "apply", "--root", w.root)
	if code != 2 {
		t.Errorf("invalid apply: exit %d, want 2", code)
	}
	if st := w.status(); st.SpecGeneration != 2 || !st.Ready() {
		t.Errorf("after refused applies: gen %d ready %v", st.SpecGeneration, st.Ready())
	}

	// Idle footprint.
	time.Sleep(5 * time.Second)
	rss := vmRSS(t, daemon.Process.Pid)
	binSize := fileSize(t, w.agentlet)
	t.Logf("agentlet %s: binary %.2f MiB (stripped, with pause image), idle VmRSS %s after ~5 s", runtime.GOARCH, float64(binSize)/(1<<20), rss)

	// SIGTERM: exit 0, pid file removed; status then reports not running.
	stopped = true
	if err := stop(t, daemon, 5*time.Second); err != nil {
		t.Errorf("daemon exit after SIGTERM: %v, want 0", err)
	}
	if _, err := os.Stat(filepath.Join(w.root, nodeapi.PidPath)); !os.IsNotExist(err) {
		t.Errorf("pid file left after SIGTERM: %v", err)
	}
	st = w.status()
	if st.DaemonRunning || condStatus(st, nodeapi.ConditionReady) != "False/AgentletNotRunning" || st.SpecGeneration != 2 {
		t.Errorf("after stop: running %v Ready %s gen %d", st.DaemonRunning, condStatus(st, nodeapi.ConditionReady), st.SpecGeneration)
	}

	// Teardown: our chains go, the foreign rule and policy stay.
	code, out, errs = w.agentletCmd(nil, "teardown", "--root", w.root)
	if code != 0 || !strings.Contains(out, "filter/CLUSTERCTL-FORWARD") {
		t.Fatalf("teardown: exit %d %q %q", code, out, errs)
	}
	rules = saveRules(w)
	if strings.Contains(rules, "CLUSTERCTL") || !strings.Contains(rules, "-A FORWARD -s 192.0.2.0/24 -j ACCEPT") || !strings.Contains(rules, ":FORWARD DROP") {
		t.Errorf("after teardown:\n%s", rules)
	}
	if _, err := os.Stat(filepath.Join(w.root, nodeapi.RunDir)); !os.IsNotExist(err) {
		t.Errorf("run dir left after teardown: %v", err)
	}
	code, out, _ = w.agentletCmd(nil, "teardown", "--root", w.root)
	if code != 0 || !strings.Contains(out, "no clusterctl iptables chains") {
		t.Errorf("second teardown: exit %d %q", code, out)
	}
}

// TestPauseImageRuns starts the imported pause image as a container with
// ctr and stops it: the image is runnable and pause exits 0 on SIGTERM.
func TestPauseImageRuns(t *testing.T) {
	w := newWorld(t)
	archive, err := os.ReadFile(filepath.Join(w.dir, pause.FileName(runtime.GOARCH)))
	if err != nil {
		t.Fatal(err)
	}
	imp := exec.Command("ctr", "--address", w.sock, "-n", "k8s.io", "images", "import", "-")
	imp.Stdin = bytes.NewReader(archive)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	id := fmt.Sprintf("ccagt-pause-%d", os.Getpid())
	// ctr joins containerd's mount namespace: the fifos it creates must be
	// the ones the shim opens, in the private /run.
	ctr := func(args ...string) (string, error) {
		full := append([]string{"-t", strconv.Itoa(w.containerdPid), "-m", "-n", "--", "ctr", "--address", w.sock, "-n", "k8s.io"}, args...)
		out, err := exec.Command("nsenter", full...).CombinedOutput()
		return string(out), err
	}
	// A one-level cgroup of our own, removed by runc with the container.
	if out, err := ctr("run", "-d", "--cgroup", "/"+id, version.PauseImage, id); err != nil {
		t.Fatalf("ctr run: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_, _ = ctr("task", "kill", "-s", "SIGKILL", id)
		time.Sleep(200 * time.Millisecond)
		_, _ = ctr("task", "delete", "-f", id)
		if out, err := ctr("container", "delete", id); err != nil {
			t.Logf("container delete: %v %s", err, out)
		}
		if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + id); len(left) > 0 {
			t.Errorf("cgroups left behind: %v", left)
		}
	})
	w.waitFor("pause running", 10*time.Second, func() bool {
		out, _ := ctr("task", "ls")
		return strings.Contains(out, id) && strings.Contains(out, "RUNNING")
	})
	if out, err := ctr("task", "kill", "-s", "SIGTERM", id); err != nil {
		t.Fatalf("kill: %v %s", err, out)
	}
	w.waitFor("pause stopped", 10*time.Second, func() bool {
		out, _ := ctr("task", "ls")
		return strings.Contains(out, "STOPPED")
	})
	out, err := ctr("task", "delete", id) // prints the exit status
	if err != nil {
		t.Fatalf("task delete: %v %s", err, out)
	}
	if !strings.Contains(out, "exit status 0") && strings.TrimSpace(out) != "" {
		t.Errorf("pause exit: %q, want exit status 0", out)
	}
}

func vmRSS(t testing.TB, pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func fileSize(t testing.TB, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
