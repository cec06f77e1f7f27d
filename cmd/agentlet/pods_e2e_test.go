package main

// End-to-end tests of agentlet's pod runtime: the real daemon against a
// private containerd (see world), with busybox test images built here.
//
// The daemon runs in containerd's mount and network namespaces (as on a
// host), in a memory cgroup of its own (ccagt-<pid>), so pods' cgroups go
// below it and are all removed at the end.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

const (
	busyboxRef = "localhost/clusterctl-test/busybox:1"
	unusedRef  = "localhost/clusterctl-test/unused:1"
)

// podWorld is a world with a CNI config, a busybox image, a cgroup for the
// daemon and helpers to run pods.
type podWorld struct {
	*world
	cgroup string // e.g. /ccagt-1234
	cri    *cri.Client
	gen    int64
	daemon *exec.Cmd
	logf   *os.File
	// podSpecs are the pods last applied.
	podSpecs []nodeapi.PodSpec
}

func newPodWorld(t testing.TB) *podWorld {
	t.Helper()
	w := &podWorld{world: newWorld(t), cgroup: fmt.Sprintf("/ccagt-%d", os.Getpid())}
	if err := os.WriteFile(filepath.Join(w.dir, "cni", "10-clusterctl.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	w.importBusybox()
	if err := os.Mkdir("/sys/fs/cgroup/memory"+w.cgroup, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		t.Skipf("cannot create a memory cgroup (cgroup v1 needed): %v", err)
	}
	client, err := cri.Dial("unix://" + w.sock)
	if err != nil {
		t.Fatal(err)
	}
	w.cri = client
	// Runs before the world's cleanups (containerd, netns): LIFO.
	t.Cleanup(w.cleanup)
	return w
}

// importBusybox builds a busybox image with every applet linked and
// imports it, and an unused image for image GC.
func (w *podWorld) importBusybox() {
	w.t.Helper()
	unused := filepath.Join(w.dir, "unused.tar")
	if out, err := exec.Command(filepath.Join(w.dir, "mkimage"), "-ref", unusedRef, "-arch", runtime.GOARCH,
		"-file", "/bin/busybox=/usr/bin/busybox:0755", "-entrypoint", "/bin/busybox", "-o", unused).CombinedOutput(); err != nil {
		w.t.Fatalf("mkimage unused: %v\n%s", err, out)
	}
	if out, err := exec.Command("ctr", "--address", w.sock, "-n", "k8s.io", "images", "import", unused).CombinedOutput(); err != nil {
		w.t.Fatalf("import unused: %v\n%s", err, out)
	}
	list, err := exec.Command("busybox", "--list").Output()
	if err != nil {
		w.t.Skipf("busybox not installed: %v", err)
	}
	args := []string{"-ref", busyboxRef, "-arch", runtime.GOARCH, "-file", "/bin/busybox=/usr/bin/busybox:0755",
		"-dir", "/tmp:1777", "-dir", "/etc", "-dir", "/var/log", "-dir", "/root:0700",
		"-entrypoint", "/bin/sh", "-o", filepath.Join(w.dir, "busybox.tar")}
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" {
			args = append(args, "-link", "/bin/"+a+"=busybox")
		}
	}
	if out, err := exec.Command(filepath.Join(w.dir, "mkimage"), args...).CombinedOutput(); err != nil {
		w.t.Fatalf("mkimage busybox: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(w.dir, "busybox.tar"))
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	imp := exec.Command("ctr", "--address", w.sock, "-n", "k8s.io", "images", "import", "-")
	imp.Stdin = f
	if out, err := imp.CombinedOutput(); err != nil {
		w.t.Fatalf("import busybox: %v\n%s", err, out)
	}
}

// inHost runs args in containerd's mount and network namespaces.
func (w *podWorld) inHost(args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"-t", strconv.Itoa(w.containerdPid), "-m", "-n", "--"}, args...)...)
}

// use makes the helpers report to t (a subtest) until the returned func runs.
func (w *podWorld) use(t testing.TB) func() {
	old := w.world.t
	w.world.t = t
	return func() { w.world.t = old }
}

// startDaemon starts `agentlet daemon` in the daemon's cgroup.
func (w *podWorld) startDaemon(extra ...string) {
	w.t.Helper()
	if w.logf == nil {
		f, err := os.Create(filepath.Join(w.dir, "agentlet.log"))
		if err != nil {
			w.t.Fatal(err)
		}
		w.logf = f
	}
	script := `echo $$ > /sys/fs/cgroup/memory` + w.cgroup + `/cgroup.procs && exec "$@"`
	args := []string{"sh", "-c", script, "sh", w.agentlet, "daemon", "--root", w.root,
		"--runtime-endpoint", "unix://" + w.sock, "--interval", "500ms", "--cni-conf-dir", filepath.Join(w.dir, "cni"),
		"--restart-backoff", "400ms", "--restart-backoff-max", "3s"}
	w.daemon = w.inHost(append(args, extra...)...)
	w.daemon.Stdout, w.daemon.Stderr = w.logf, w.logf
	w.daemon.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.daemon.Start(); err != nil {
		w.t.Fatal(err)
	}
}

// killDaemon kills the daemon hard, as a crash would.
func (w *podWorld) killDaemon() {
	w.t.Helper()
	if w.daemon == nil {
		return
	}
	_ = w.daemon.Process.Kill()
	_ = w.daemon.Wait()
	w.daemon = nil
}

func (w *podWorld) cleanup() {
	t := w.t
	if w.daemon != nil && len(w.podSpecs) > 0 && !t.Failed() {
		w.apply() // no pods: the daemon removes them
		w.waitFor("all pods removed", 60*time.Second, func() bool {
			sbs, err := w.cri.ListPodSandbox(context.Background())
			return err == nil && len(sbs) == 0
		})
	}
	if w.daemon != nil {
		_ = stop(t, w.daemon, 5*time.Second)
		w.daemon = nil
	}
	if (t.Failed() || testing.Verbose()) && w.logf != nil {
		data, _ := os.ReadFile(w.logf.Name())
		t.Logf("agentlet log:\n%s", tail(data, 150))
	}
	// Whatever is left (a failed test): kill every task through containerd,
	// so its shims exit, then remove our cgroups.
	if out, err := w.inHost("ctr", "--address", w.sock, "-n", "k8s.io", "tasks", "ls", "-q").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			_ = w.inHost("ctr", "--address", w.sock, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id).Run()
		}
		time.Sleep(300 * time.Millisecond)
		for _, id := range strings.Fields(string(out)) {
			_ = w.inHost("ctr", "--address", w.sock, "-n", "k8s.io", "tasks", "delete", "-f", id).Run()
		}
	}
	if w.cri != nil {
		w.cri.Close()
	}
	if w.logf != nil {
		w.logf.Close()
	}
	removeCgroupTree(t, w.cgroup)
}

// removeCgroupTree removes a cgroup directory of ours in every hierarchy,
// deepest first, killing what still runs in it (only processes inside our
// own cgroup, identified by membership, never by name).
func removeCgroupTree(t testing.TB, cg string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*" + cg)
	for attempt := 0; attempt < 50; attempt++ {
		var left []string
		for _, r := range roots {
			var dirs []string
			_ = filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
			for _, d := range dirs {
				if data, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
					for _, f := range strings.Fields(string(data)) {
						if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
							_ = syscall.Kill(pid, syscall.SIGKILL)
						}
					}
				}
				if err := syscall.Rmdir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
					left = append(left, d)
				}
			}
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
		if attempt == 49 {
			t.Errorf("cgroups left behind: %v", left)
		}
	}
}

// apply holds a spec with pods (generation increases each time).
func (w *podWorld) apply(pods ...nodeapi.PodSpec) {
	w.t.Helper()
	w.gen++
	s := nodeapi.NodeSpec{
		APIVersion: nodeapi.APIVersion, NodeName: "h1",
		Cluster: nodeapi.ClusterInfo{Name: "e2e", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", Domain: "cluster.local"},
		PodCIDR: "10.244.1.0/24", Generation: w.gen, Writer: "e2e@test", WrittenAt: time.Now().UTC(),
		Pods: pods,
	}
	data, err := json.Marshal(s)
	if err != nil {
		w.t.Fatal(err)
	}
	code, out, errs := w.agentletCmd(data, "apply", "--root", w.root)
	if code != 0 {
		w.t.Fatalf("apply: exit %d %s %s", code, out, errs)
	}
	w.podSpecs = pods
}

// published reads the daemon's published status directly (fast polling).
func (w *podWorld) published() *nodeapi.NodeStatus {
	data, err := os.ReadFile(filepath.Join(w.root, nodeapi.StatusPath))
	if err != nil {
		return &nodeapi.NodeStatus{}
	}
	var st nodeapi.NodeStatus
	if json.Unmarshal(data, &st) != nil {
		return &nodeapi.NodeStatus{}
	}
	return &st
}

func (w *podWorld) pod(name string) *nodeapi.PodStatus {
	for _, p := range w.published().Pods {
		if p.Namespace == "default" && p.Name == name {
			return &p
		}
	}
	return nil
}

// waitPod polls the published status until ok holds for the pod.
func (w *podWorld) waitPod(name, what string, timeout time.Duration, ok func(p *nodeapi.PodStatus) bool) *nodeapi.PodStatus {
	w.t.Helper()
	var last *nodeapi.PodStatus
	deadline := time.Now().Add(timeout)
	for {
		last = w.pod(name)
		if last != nil && ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			data, _ := json.MarshalIndent(last, "", "  ")
			w.t.Fatalf("timed out after %s waiting for pod %s: %s; last status:\n%s", timeout, name, what, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs an agentlet command in the host namespaces.
func (w *podWorld) run(stdin string, args ...string) (int, string, string) {
	w.t.Helper()
	cmd := w.inHost(append([]string{w.agentlet}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
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

func (w *podWorld) logs(args ...string) (int, string, string) {
	return w.run("", append([]string{"logs"}, append(args, "--root", w.root)...)...)
}

func (w *podWorld) exec(stdin string, args ...string) (int, string, string) {
	return w.run(stdin, append([]string{"exec", "--root", w.root, "--runtime-endpoint", "unix://" + w.sock}, args...)...)
}

func container(p *nodeapi.PodStatus, name string) nodeapi.ContainerStatus {
	for _, c := range append(append([]nodeapi.ContainerStatus{}, p.ContainerStatuses...), p.InitContainerStatuses...) {
		if c.Name == name {
			return c
		}
	}
	return nodeapi.ContainerStatus{}
}

func cond(p *nodeapi.PodStatus, typ string) string {
	for _, c := range p.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

func hasEvent(p *nodeapi.PodStatus, reason, substr string) bool {
	for _, e := range p.Events {
		if e.Reason == reason && strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

func busybox(name string, script string) nodeapi.ContainerSpec {
	return nodeapi.ContainerSpec{Name: name, Image: busyboxRef, ImagePullPolicy: nodeapi.PullIfNotPresent,
		Command: []string{"sh", "-c", script}, TerminationMessagePath: "/dev/termination-log"}
}

func podSpec(name string, policy string, containers ...nodeapi.ContainerSpec) nodeapi.PodSpec {
	return nodeapi.PodSpec{UID: fmt.Sprintf("uid-%s-%d", name, time.Now().UnixNano()), Namespace: "default", Name: name,
		RestartPolicy: policy, TerminationGracePeriodSeconds: 5, Containers: containers}
}

// webPod is two containers sharing localhost: httpd serving a Files volume
// (with a readiness probe) and a client fetching from it; plus a secret
// volume on tmpfs, a memory emptyDir, a memory limit and a preStop hook
// writing to a hostPath.
func webPod(hostDir string) nodeapi.PodSpec {
	web := busybox("web", "exec httpd -f -p 8080 -h /www")
	web.Resources = nodeapi.ContainerResources{CPURequestMillis: 100, CPULimitMillis: 500, MemoryLimitBytes: 64 << 20}
	web.Ports = []nodeapi.ContainerPort{{Name: "http", ContainerPort: 8080, HostPort: 30080, Protocol: "TCP"}}
	web.VolumeMounts = []nodeapi.VolumeMount{{Name: "site", MountPath: "/www"}, {Name: "creds", MountPath: "/secret"},
		{Name: "scratch", MountPath: "/scratch"}, {Name: "host", MountPath: "/host"}}
	web.ReadinessProbe = &nodeapi.Probe{Handler: nodeapi.Handler{HTTPGet: &nodeapi.HTTPGetAction{Path: "/index.html", Port: 8080}},
		PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
	web.LivenessProbe = &nodeapi.Probe{Handler: nodeapi.Handler{TCPSocket: &nodeapi.TCPSocketAction{Port: 8080}},
		PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 3}
	web.PreStop = &nodeapi.Handler{Exec: []string{"sh", "-c", "echo prestop-ran > /host/prestop"}}
	web.Env = []nodeapi.EnvVar{{Name: "MY_IP", FieldPath: nodeapi.FieldPodIP}, {Name: "GREETING", Value: "hi"}}
	client := busybox("client", "while true; do timeout 2 wget -qO- http://127.0.0.1:8080/index.html || echo fetch-failed; sleep 1; done")
	uid := int64(1000)
	client.SecurityContext = &nodeapi.ContainerSecurityContext{RunAsUser: &uid}
	p := podSpec("web", nodeapi.RestartAlways, web, client)
	p.DNS = &nodeapi.DNSConfig{Nameservers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}}
	p.Volumes = []nodeapi.VolumeSpec{
		{Name: "site", Files: &nodeapi.FilesVolume{Items: []nodeapi.FileItem{{Path: "index.html", Data: []byte("hello from files\n")}}}},
		{Name: "creds", Files: &nodeapi.FilesVolume{Secret: true, Items: []nodeapi.FileItem{{Path: "token", Data: []byte("s3cret")}}}},
		{Name: "scratch", EmptyDir: &nodeapi.EmptyDirVolume{Medium: "Memory", SizeLimitBytes: 8 << 20}},
		{Name: "host", HostPath: &nodeapi.HostPathVolume{Path: hostDir, Type: "DirectoryOrCreate"}},
	}
	return p
}

func TestPodsEndToEnd(t *testing.T) {
	w := newPodWorld(t)
	hostDir := filepath.Join(w.dir, "hostpath")
	// Any usage is too much for image GC: unused images go at once.
	w.startDaemon("--image-gc-high-threshold", "1", "--image-gc-low-threshold", "0", "--image-minimum-age", "0s")

	web := webPod(hostDir)
	crash := podSpec("crash", nodeapi.RestartAlways, busybox("crash", "echo run-$(cut -d' ' -f1 /proc/uptime); echo bye > /dev/termination-log; exit 1"))
	live := podSpec("live", nodeapi.RestartAlways, busybox("live",
		"if [ -f /data/once ]; then touch /tmp/healthy; exec sleep 600; fi; touch /data/once /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 600"))
	live.Containers[0].LivenessProbe = &nodeapi.Probe{Handler: nodeapi.Handler{Exec: []string{"cat", "/tmp/healthy"}},
		PeriodSeconds: 1, TimeoutSeconds: 2, FailureThreshold: 1}
	live.Containers[0].VolumeMounts = []nodeapi.VolumeMount{{Name: "data", MountPath: "/data"}}
	live.Volumes = []nodeapi.VolumeSpec{{Name: "data", EmptyDir: &nodeapi.EmptyDirVolume{}}}
	job := podSpec("job", nodeapi.RestartNever, busybox("main", "cat /work/msg; echo done"))
	job.InitContainers = []nodeapi.ContainerSpec{busybox("prepare", "echo prepared-by-init > /work/msg")}
	job.InitContainers[0].VolumeMounts = []nodeapi.VolumeMount{{Name: "work", MountPath: "/work"}}
	job.Containers[0].VolumeMounts = []nodeapi.VolumeMount{{Name: "work", MountPath: "/work"}}
	job.Volumes = []nodeapi.VolumeSpec{{Name: "work", EmptyDir: &nodeapi.EmptyDirVolume{}}}

	start := time.Now()
	w.apply(web, crash, live, job)

	t.Run("web pod becomes ready", func(t *testing.T) {
		defer w.use(t)()
		p := w.waitPod("web", "Ready", 60*time.Second, func(p *nodeapi.PodStatus) bool { return cond(p, nodeapi.PodReady) == nodeapi.True })
		t.Logf("web Ready after %s, IP %s", time.Since(start).Round(time.Millisecond), p.PodIP)
		if p.Phase != nodeapi.PodRunning || p.PodIP == "" || p.StartTime == nil || !container(p, "web").Ready || !container(p, "web").Started {
			t.Errorf("web: %+v", p)
		}
		w.waitFor("client fetched the file", 20*time.Second, func() bool {
			_, out, _ := w.logs("default/web", "-c", "client")
			return strings.Contains(out, "hello from files")
		})
	})

	t.Run("image gc removes unused images only", func(t *testing.T) {
		defer w.use(t)()
		images := func() string {
			out, _ := exec.Command("ctr", "--address", w.sock, "-n", "k8s.io", "images", "ls", "-q").Output()
			return string(out)
		}
		w.waitFor("the unused image removed", 10*time.Second, func() bool { return !strings.Contains(images(), unusedRef) })
		if ls := images(); !strings.Contains(ls, busyboxRef) || !strings.Contains(ls, version.PauseImage) {
			t.Errorf("images in use or pinned removed:\n%s", ls)
		}
	})

	t.Run("exec", func(t *testing.T) {
		defer w.use(t)()
		if code, out, errs := w.exec("", "default/web", "-c", "web", "--", "cat", "/secret/token"); code != 0 || out != "s3cret" {
			t.Errorf("exec cat secret: %d %q %q", code, out, errs)
		}
		if code, out, _ := w.exec("", "default/web", "-c", "web", "--", "stat", "-L", "-c", "%a", "/secret/token"); code != 0 || strings.TrimSpace(out) != "600" {
			t.Errorf("secret file mode: %d %q", code, out)
		}
		if code, out, _ := w.exec("", "default/web", "-c", "web", "--", "sh", "-c", "grep -E ' /(secret|scratch) ' /proc/mounts | cut -d' ' -f3 | sort -u"); code != 0 || strings.TrimSpace(out) != "tmpfs" {
			t.Errorf("secret and memory emptyDir on tmpfs: %d %q", code, out)
		}
		if code, _, _ := w.exec("", "default/web", "-c", "web", "--", "sh", "-c", "exit 3"); code != 3 {
			t.Errorf("exec exit code = %d, want 3", code)
		}
		if code, _, errs := w.exec("", "default/web", "-c", "web", "--", "no-such-command"); code != 127 {
			t.Errorf("exec of a missing command = %d %q, want 127", code, errs)
		}
		code, out, _ := w.exec("", "default/web", "-c", "web", "--", "sh", "-c", `echo "$MY_IP $GREETING"; hostname`)
		if p := w.pod("web"); code != 0 || out != p.PodIP+" hi\nweb\n" {
			t.Errorf("env and hostname: %d %q (pod IP %s)", code, out, p.PodIP)
		}
		if code, out, _ := w.exec("", "default/web", "-c", "client", "--", "id", "-u"); code != 0 || out != "1000\n" {
			t.Errorf("runAsUser: %d %q", code, out)
		}
		code, out, _ = w.exec("", "default/web", "-c", "web", "--", "cat", "/etc/resolv.conf")
		for _, want := range []string{"nameserver 10.96.0.10", "search default.svc.cluster.local", "options ndots:5"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("resolv.conf lacks %q: %d %q", want, code, out)
			}
		}
		if out := w.inNetns("busybox", "timeout", "5", "busybox", "wget", "-qO-", "http://10.244.1.1:30080/index.html"); out != "hello from files\n" {
			t.Errorf("hostPort 30080: %q", out)
		}
		if code, out, errs := w.exec("piped input\n", "default/web", "-c", "client", "-i", "--", "cat"); code != 0 || out != "piped input\n" {
			t.Errorf("exec -i: %d %q %q", code, out, errs)
		}
		if code, _, _ := w.exec("", "default/web", "-i", "-c", "web", "--", "sh", "-c", "exit 5"); code != 5 {
			t.Errorf("exec -i exit code = %d, want 5", code)
		}
		if code, _, errs := w.exec("", "default/nope", "--", "true"); code != 1 || !strings.Contains(errs, "running pods: default/") {
			t.Errorf("exec in a missing pod: %d %q", code, errs)
		}
	})

	t.Run("memory limit in the cgroup", func(t *testing.T) {
		defer w.use(t)()
		p := w.pod("web")
		id := strings.TrimPrefix(container(p, "web").ContainerID, "containerd://")
		path := "/sys/fs/cgroup/memory" + w.cgroup + "/kubepods/pod" + web.UID + "/" + id + "/memory.limit_in_bytes"
		data, err := os.ReadFile(path)
		if err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(64<<20) {
			t.Errorf("%s = %q, %v", path, data, err)
		}
	})

	t.Run("crash loop backs off", func(t *testing.T) {
		defer w.use(t)()
		seen := map[int32]time.Time{}
		backoff := false
		deadline := time.Now().Add(30 * time.Second)
		for len(seen) < 5 && time.Now().Before(deadline) {
			if p := w.pod("crash"); p != nil {
				cs := container(p, "crash")
				if _, ok := seen[cs.RestartCount]; !ok && (cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil) {
					seen[cs.RestartCount] = time.Now()
				}
				if cs.State.Waiting != nil && cs.State.Waiting.Reason == nodeapi.ReasonCrashLoopBackOff {
					backoff = true
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		p := w.pod("crash")
		cs := container(p, "crash")
		lt := cs.LastTerminationState.Terminated
		if cs.RestartCount < 3 || lt == nil || lt.ExitCode != 1 || lt.Reason != nodeapi.ReasonError || lt.Message != "bye" || lt.FinishedAt.IsZero() {
			t.Fatalf("crash: restartCount %d lastState %+v", cs.RestartCount, lt)
		}
		if !backoff || !hasEvent(p, "BackOff", "Back-off restarting failed container crash") {
			t.Errorf("no CrashLoopBackOff seen (%v) or events missing: %+v", backoff, p.Events)
		}
		if p.Phase != nodeapi.PodRunning {
			t.Errorf("crash-looping pod phase %s, want Running", p.Phase)
		}
		var counts []int
		for c := range seen {
			counts = append(counts, int(c))
		}
		sort.Ints(counts)
		var gaps []time.Duration
		for i := 1; i < len(counts); i++ {
			gaps = append(gaps, seen[int32(counts[i])].Sub(seen[int32(counts[i-1])]))
		}
		t.Logf("restart counts seen %v, gaps %v", counts, gaps)
		if len(gaps) >= 3 && gaps[len(gaps)-1] <= gaps[0] {
			t.Errorf("back-off does not grow: gaps %v", gaps)
		}
		// Exited instances beyond the previous one are collected, with their logs.
		w.waitFor("old crash instances collected", 10*time.Second, func() bool {
			ctrs, err := w.cri.ListContainers(context.Background())
			n := 0
			for _, c := range ctrs {
				if err == nil && c.Labels[nodeapi.LabelPodUID] == crash.UID {
					n++
				}
			}
			logs, _ := filepath.Glob(filepath.Join(w.root, nodeapi.PodLogsDir, "default_crash_"+crash.UID, "crash", "*.log"))
			return n <= 2 && len(logs) <= 2 && n > 0
		})
		code, out, errs := w.logs("default/crash", "--previous")
		if code != 0 || !strings.HasPrefix(out, "run-") {
			t.Errorf("logs --previous: %d %q %q", code, out, errs)
		}
		code, out, _ = w.logs("default/crash", "--timestamps", "--tail", "1")
		if fields := strings.Fields(out); code != 0 || len(fields) != 2 || !strings.HasPrefix(fields[1], "run-") {
			t.Errorf("logs --timestamps --tail 1: %d %q", code, out)
		} else if _, err := time.Parse(time.RFC3339Nano, fields[0]); err != nil {
			t.Errorf("timestamp %q: %v", fields[0], err)
		}
	})

	t.Run("liveness failure restarts", func(t *testing.T) {
		defer w.use(t)()
		p := w.waitPod("live", "restarted after its liveness probe failed", 30*time.Second, func(p *nodeapi.PodStatus) bool {
			cs := container(p, "live")
			return cs.RestartCount >= 1 && cs.State.Running != nil
		})
		if !hasEvent(p, "Unhealthy", "Liveness probe failed") || !hasEvent(p, "Killing", "failed liveness probe") {
			t.Errorf("events: %+v", p.Events)
		}
		if lt := container(p, "live").LastTerminationState.Terminated; lt == nil || lt.ExitCode != 137 && lt.ExitCode != 143 {
			t.Errorf("lastState after the liveness kill: %+v", lt)
		}
	})

	t.Run("init container then Succeeded", func(t *testing.T) {
		defer w.use(t)()
		p := w.waitPod("job", "Succeeded", 30*time.Second, func(p *nodeapi.PodStatus) bool { return p.Phase == nodeapi.PodSucceeded })
		if cond(p, nodeapi.PodInitialized) != nodeapi.True || container(p, "prepare").State.Terminated == nil {
			t.Errorf("job: %+v", p)
		}
		code, out, _ := w.logs("default/job", "-c", "main")
		if code != 0 || out != "prepared-by-init\ndone\n" {
			t.Errorf("job logs: %d %q", code, out)
		}
	})

	t.Run("logs errors", func(t *testing.T) {
		defer w.use(t)()
		if code, _, errs := w.logs("default/web", "-c", "nope"); code != 1 || !strings.Contains(errs, "containers: web, client") {
			t.Errorf("unknown container: %d %q", code, errs)
		}
		if code, _, errs := w.logs("default/nope"); code != 1 || !strings.Contains(errs, "pods here: default/web") {
			t.Errorf("unknown pod: %d %q", code, errs)
		}
		if code, _, errs := w.logs("default/web", "-c", "web", "--previous"); code != 1 || !strings.Contains(errs, "previous terminated container") {
			t.Errorf("no previous: %d %q", code, errs)
		}
	})

	t.Run("logs follow stops when the container exits", func(t *testing.T) {
		defer w.use(t)()
		// The crash container exits within a second; -f returns with it.
		done := make(chan struct{})
		var code int
		var out string
		go func() {
			defer close(done)
			code, out, _ = w.logs("default/crash", "-f")
		}()
		select {
		case <-done:
			if code != 0 || !strings.Contains(out, "run-") {
				t.Errorf("logs -f: %d %q", code, out)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("logs -f did not return after the container exited")
		}
	})

	t.Run("restarted daemon adopts running pods", func(t *testing.T) {
		defer w.use(t)()
		before := w.pod("live")
		webBefore := w.pod("web")
		w.killDaemon()
		time.Sleep(time.Second)
		if st, _ := os.Stat(filepath.Join(w.root, nodeapi.PodsDir, web.UID, "state.json")); st == nil || st.Mode().Perm() != 0o600 {
			t.Errorf("state.json of web: %v", st)
		}
		w.startDaemon()
		time.Sleep(2 * time.Second)
		p := w.waitPod("live", "adopted", 20*time.Second, func(p *nodeapi.PodStatus) bool {
			return p.ContainerStatuses[0].State.Running != nil
		})
		a, b := container(before, "live"), container(p, "live")
		if a.ContainerID != b.ContainerID || a.RestartCount != b.RestartCount {
			t.Errorf("live after daemon restart: id %s→%s restarts %d→%d", a.ContainerID, b.ContainerID, a.RestartCount, b.RestartCount)
		}
		pw := w.waitPod("web", "Ready again", 20*time.Second, func(p *nodeapi.PodStatus) bool { return cond(p, nodeapi.PodReady) == nodeapi.True })
		for _, name := range []string{"web", "client"} {
			if x, y := container(webBefore, name), container(pw, name); x.ContainerID != y.ContainerID || y.RestartCount != 0 {
				t.Errorf("%s after daemon restart: %s→%s restarts %d", name, x.ContainerID, y.ContainerID, y.RestartCount)
			}
		}
	})

	t.Run("files volume update reaches the running pod", func(t *testing.T) {
		defer w.use(t)()
		before := container(w.pod("web"), "web").ContainerID
		web.Volumes[0].Files.Items[0].Data = []byte("hello v2\n")
		w.apply(web, crash, live, job)
		w.waitFor("new file content in the container", 20*time.Second, func() bool {
			_, out, _ := w.exec("", "default/web", "-c", "web", "--", "cat", "/www/index.html")
			return out == "hello v2\n"
		})
		if after := container(w.pod("web"), "web"); after.ContainerID != before || after.RestartCount != 0 {
			t.Errorf("web restarted for a files update: %s → %s", before, after.ContainerID)
		}
	})

	t.Run("removed pod stops gracefully and leaves nothing", func(t *testing.T) {
		defer w.use(t)()
		w.apply(crash, live, job)
		w.waitFor("web gone from the status", 30*time.Second, func() bool { return w.pod("web") == nil })
		data, err := os.ReadFile(filepath.Join(hostDir, "prestop"))
		if err != nil || string(data) != "prestop-ran\n" {
			t.Errorf("preStop hook: %q %v", data, err)
		}
		sbs, err := w.cri.ListPodSandbox(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sbs {
			if s.UID == web.UID {
				t.Errorf("sandbox of web left: %+v", s)
			}
		}
		ctrs, _ := w.cri.ListContainers(context.Background())
		for _, c := range ctrs {
			if c.Labels[nodeapi.LabelPodUID] == web.UID {
				t.Errorf("container of web left: %+v", c)
			}
		}
		for _, p := range []string{
			filepath.Join(w.root, nodeapi.PodsDir, web.UID),
			filepath.Join(w.root, nodeapi.PodLogsDir, "default_web_"+web.UID),
			"/sys/fs/cgroup/memory" + w.cgroup + "/kubepods/pod" + web.UID,
		} {
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s left behind: %v", p, err)
			}
		}
		if out, _ := exec.Command("grep", "-c", web.UID, "/proc/"+strconv.Itoa(w.containerdPid)+"/mountinfo").Output(); strings.TrimSpace(string(out)) != "0" {
			t.Errorf("mounts of web left: %s", out)
		}
	})
}
