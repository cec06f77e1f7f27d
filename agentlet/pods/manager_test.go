package pods

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/agentlet/probe"
	"github.com/clusterctl/clusterctl/nodeapi"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) add(level, msg string, kv []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf("%s %s %v", level, msg, kv))
}
func (l *testLog) Info(msg string, kv ...any)  { l.add("INFO", msg, kv) }
func (l *testLog) Warn(msg string, kv ...any)  { l.add("WARN", msg, kv) }
func (l *testLog) Error(msg string, kv ...any) { l.add("ERROR", msg, kv) }

// fakeHooks records preStop hooks.
type fakeHooks struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeHooks) Do(_ context.Context, id, ip string, h nodeapi.Handler, timeout time.Duration) (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s %v %s", id, ip, h.Exec, timeout))
	return true, ""
}

type mh struct {
	t        *testing.T
	m        *Manager
	rt       *cri.Fake
	clock    *clock
	root     string
	layout   Layout
	hooks    *fakeHooks
	log      *testLog
	mounter  *fakeMounter
	cgroups  []string
	statfs   [2]uint64
	mu       sync.Mutex
	runner   probe.Runner
	gate     Gate
	lastSync []nodeapi.PodStatus
}

func newMH(t *testing.T, rt *cri.Fake, root string, runner probe.Runner, clk *clock) *mh {
	t.Helper()
	if clk == nil {
		clk = &clock{now: t0}
	}
	h := &mh{t: t, rt: rt, clock: clk, root: root, hooks: &fakeHooks{}, log: &testLog{}, mounter: &fakeMounter{},
		runner: runner, gate: Gate{SandboxOK: true}, statfs: [2]uint64{1000, 900}}
	now := h.clock.Now
	if runner != nil {
		now = time.Now // the prober's timers run on real time
	}
	if rt.Clock == nil {
		rt.Clock = now
	}
	h.layout = Layout{PodsDir: filepath.Join(root, "pods"), LogsDir: filepath.Join(root, "logs")}
	h.m = NewManager(Config{
		Runtime: rt, ProbeRunner: runner, Hooks: h.hooks, Mounter: h.mounter, Layout: h.layout,
		Cgroups: Cgroups{Driver: DriverCgroupfs, Root: "/lab"},
		RemoveCgroup: func(_ context.Context, cg string) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.cgroups = append(h.cgroups, cg)
			return nil
		},
		Backoff: testPolicy, PauseImage: "localhost/clusterctl/pause:1",
		Statfs: func(string) (uint64, uint64, error) { return h.statfs[0], h.statfs[1], nil },
		Now:    now, Log: h.log,
	})
	t.Cleanup(h.m.Close)
	return h
}

func newFakeRuntime() *cri.Fake {
	rt := cri.NewFake()
	rt.SetImage("busybox:1", true)
	rt.SetImage("localhost/clusterctl/pause:1", true)
	return rt
}

// sync runs Sync and waits for the workers it started, rounds times.
func (h *mh) sync(rounds int, desired ...nodeapi.PodSpec) []nodeapi.PodStatus {
	h.t.Helper()
	var out []nodeapi.PodStatus
	for i := 0; i < rounds; i++ {
		var err error
		out, err = h.m.Sync(context.Background(), desired, h.gate)
		if err != nil {
			h.t.Fatalf("Sync: %v", err)
		}
		h.m.Wait()
	}
	h.lastSync = out
	return out
}

func containerOf(st []nodeapi.PodStatus, pod, name string) nodeapi.ContainerStatus {
	for _, p := range st {
		if p.Name != pod {
			continue
		}
		for _, c := range append(append([]nodeapi.ContainerStatus{}, p.ContainerStatuses...), p.InitContainerStatuses...) {
			if c.Name == name {
				return c
			}
		}
	}
	return nodeapi.ContainerStatus{}
}

func callsWith(calls []string, prefix string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func TestManagerRunsAPod(t *testing.T) {
	rt := newFakeRuntime()
	h := newMH(t, rt, t.TempDir(), nil, nil)
	p := podOf("web", nodeapi.RestartAlways, "web")
	p.Containers[0].Image = "registry.lab:5000/web:1"
	p.Containers[0].Env = []nodeapi.EnvVar{{Name: "IP", FieldPath: nodeapi.FieldPodIP}}
	p.RegistryAuth = []nodeapi.RegistryAuth{{Server: "registry.lab:5000", Username: "u", Password: "p"}}
	p.Volumes = []nodeapi.VolumeSpec{{Name: "cfg", Files: &nodeapi.FilesVolume{Items: []nodeapi.FileItem{{Path: "a", Data: []byte("1")}}}}}
	p.Containers[0].VolumeMounts = []nodeapi.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}

	st := h.sync(2, p)
	if len(st) != 1 || st[0].Phase != nodeapi.PodRunning || st[0].PodIP == "" {
		t.Fatalf("status: %+v", st)
	}
	sbs := rt.Sandboxes()
	if len(sbs) != 1 {
		t.Fatalf("sandboxes: %+v", sbs)
	}
	cfg, _ := rt.SandboxConfigOf(sbs[0].ID)
	if cfg.CgroupParent != "/lab/kubepods/poduid-web" || cfg.LogDirectory != filepath.Join(h.root, "logs", "default_web_uid-web") {
		t.Errorf("sandbox config: %+v", cfg)
	}
	ctrs := rt.Containers()
	cc, _ := rt.ContainerConfigOf(ctrs[0].ID)
	if cc.Env[0].Value != sbs[0].IP || cc.Mounts[0].HostPath != h.layout.VolumeDir(p.UID, "files", "cfg") {
		t.Errorf("container config: %+v", cc)
	}
	if pulls := callsWith(rt.Calls, "PullImage"); len(pulls) != 1 || pulls[0] != "PullImage registry.lab:5000/web:1 auth=registry.lab:5000" {
		t.Errorf("pulls: %v", pulls)
	}
	var reasons []string
	for _, e := range st[0].Events {
		reasons = append(reasons, e.Reason)
	}
	if diff := cmp.Diff([]string{"Pulling", "Pulled", "Created", "Started"}, reasons); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	hosts, err := os.ReadFile(h.layout.HostsFile(p.UID))
	if err != nil || !strings.Contains(string(hosts), sbs[0].IP+"\tweb") {
		t.Errorf("hosts file: %q %v", hosts, err)
	}
	if _, err := os.Stat(filepath.Join(h.layout.PodDir(p.UID), StateFile)); err != nil {
		t.Errorf("state.json: %v", err)
	}
	// Converged: another pass changes nothing.
	rt.TakeCalls()
	h.sync(1, p)
	for _, c := range rt.TakeCalls() {
		if !strings.HasPrefix(c, "List") && !strings.HasPrefix(c, "Image") {
			t.Errorf("converged pod got %s", c)
		}
	}
}

func TestManagerCrashLoopAndAdoption(t *testing.T) {
	rt := newFakeRuntime()
	root := t.TempDir()
	h := newMH(t, rt, root, nil, nil)
	p := podOf("crash", nodeapi.RestartAlways, "c")
	p.Containers[0].TerminationMessagePath = "/dev/termination-log"
	h.sync(2, p)

	running := func() cri.ContainerStatus {
		for _, c := range rt.Containers() {
			if c.State == cri.ContainerRunning {
				return c
			}
		}
		t.Fatal("no running container")
		return cri.ContainerStatus{}
	}
	// The container writes its termination message and crashes: restarted at once.
	c0 := running()
	cc, _ := rt.ContainerConfigOf(c0.ID)
	if err := os.WriteFile(cc.Annotations[AnnotationTerminationFile], []byte("boom\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	rt.Exit(c0.ID, 1, "")
	st := h.sync(2, p)
	c := containerOf(st, "crash", "c")
	if c.RestartCount != 1 || c.State.Running == nil || c.LastTerminationState.Terminated == nil ||
		c.LastTerminationState.Terminated.Message != "boom" || c.LastTerminationState.Terminated.ExitCode != 1 {
		t.Fatalf("after the first crash: %+v", c)
	}
	// The second crash backs off 10s.
	h.clock.Advance(time.Second)
	rt.Exit(running().ID, 1, "")
	st = h.sync(2, p)
	c = containerOf(st, "crash", "c")
	if c.State.Waiting == nil || c.State.Waiting.Reason != nodeapi.ReasonCrashLoopBackOff || c.RestartCount != 1 {
		t.Fatalf("second crash: %+v", c)
	}
	h.clock.Advance(9 * time.Second)
	h.sync(2, p)
	if n := len(callsWith(rt.Calls, "StartContainer")); n != 2 {
		t.Errorf("started %d times before the back-off ended", n)
	}
	h.clock.Advance(time.Second)
	st = h.sync(2, p)
	if c = containerOf(st, "crash", "c"); c.RestartCount != 2 || c.State.Running == nil {
		t.Fatalf("after the back-off: %+v", c)
	}
	// Only the newest and the previous instance are kept.
	if n := len(rt.Containers()); n != 2 {
		t.Errorf("%d containers kept, want 2", n)
	}

	// A new agentlet (same disk, same runtime) adopts the pod: no new
	// containers, same restart count, the back-off remembered.
	h.m.Close()
	h2 := newMH(t, rt, root, nil, h.clock)
	rt.TakeCalls()
	st = h2.sync(2, p)
	if c = containerOf(st, "crash", "c"); c.RestartCount != 2 || c.State.Running == nil {
		t.Fatalf("adopted: %+v", c)
	}
	if creates := callsWith(rt.TakeCalls(), "Create"); len(creates) != 0 {
		t.Errorf("adoption created %v", creates)
	}
	h2.clock.Advance(time.Second)
	rt.Exit(running().ID, 1, "")
	st = h2.sync(2, p)
	if w := containerOf(st, "crash", "c").State.Waiting; w == nil || !strings.Contains(w.Message, "back-off 20s") {
		t.Errorf("back-off after adoption: %+v", w)
	}
}

func TestManagerDeletesAndReplaces(t *testing.T) {
	rt := newFakeRuntime()
	h := newMH(t, rt, t.TempDir(), nil, nil)
	p := podOf("web", nodeapi.RestartAlways, "web", "side")
	p.TerminationGracePeriodSeconds = 7
	p.Containers[0].PreStop = &nodeapi.Handler{Exec: []string{"drain"}}
	h.sync(2, p)
	if err := os.MkdirAll(h.layout.LogDir("default", "web", p.UID), 0o755); err != nil {
		t.Fatal(err)
	}

	// A new UID for the same name: the old pod is stopped and removed,
	// then the new one starts.
	q := p
	q.UID = "uid-web-2"
	rt.TakeCalls()
	st, err := h.m.Sync(context.Background(), []nodeapi.PodSpec{q}, h.gate)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].UID != q.UID || st[0].Reason != "Replacing" {
		t.Errorf("while replacing: %+v", st)
	}
	h.m.Wait()
	calls := rt.TakeCalls()
	if diff := cmp.Diff([]string{"StopContainer 7s", "StopContainer 7s"}, trimIDs(callsWith(calls, "StopContainer"))); diff != "" {
		t.Errorf("graceful stops (-want +got):\n%s", diff)
	}
	if len(h.hooks.calls) != 1 || !strings.Contains(h.hooks.calls[0], "[drain] 7s") {
		t.Errorf("preStop hooks: %v", h.hooks.calls)
	}
	if len(callsWith(calls, "RemovePodSandbox")) != 1 || len(callsWith(calls, "RunPodSandbox")) != 0 {
		t.Errorf("calls: %v", calls)
	}
	for _, d := range []string{h.layout.PodDir(p.UID), h.layout.LogDir("default", "web", p.UID)} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
	}
	if diff := cmp.Diff([]string{"/lab/kubepods/poduid-web"}, h.cgroups); diff != "" {
		t.Errorf("cgroups removed (-want +got):\n%s", diff)
	}
	st = h.sync(2, q)
	if len(st) != 1 || st[0].Phase != nodeapi.PodRunning || len(rt.Sandboxes()) != 1 || rt.Sandboxes()[0].UID != q.UID {
		t.Errorf("replacement: %+v", st)
	}

	// Removed from the spec: reported as terminating until gone.
	st, _ = h.m.Sync(context.Background(), nil, h.gate)
	if len(st) != 1 || st[0].Reason != "Terminating" {
		t.Errorf("terminating: %+v", st)
	}
	st = h.sync(2)
	if len(st) != 0 || len(rt.Sandboxes()) != 0 || len(rt.Containers()) != 0 {
		t.Errorf("after removal: %+v %+v", st, rt.Sandboxes())
	}
}

func trimIDs(calls []string) []string {
	var out []string
	for _, c := range calls {
		f := strings.Fields(c)
		out = append(out, f[0]+" "+f[len(f)-1])
	}
	return out
}

func TestManagerImageFailures(t *testing.T) {
	rt := newFakeRuntime()
	rt.PullErr = map[string]error{"missing:1": errors.New("not found")}
	h := newMH(t, rt, t.TempDir(), nil, nil)
	p := podOf("img", nodeapi.RestartAlways, "a", "b", "c")
	p.Containers[0].Image = "missing:1"
	p.Containers[1].Image, p.Containers[1].ImagePullPolicy = "absent:1", nodeapi.PullNever
	st := h.sync(2, p)
	if w := containerOf(st, "img", "a").State.Waiting; w == nil || w.Reason != nodeapi.ReasonErrImagePull {
		t.Errorf("a: %+v", w)
	}
	if w := containerOf(st, "img", "b").State.Waiting; w == nil || w.Reason != nodeapi.ReasonErrImageNeverPull {
		t.Errorf("b: %+v", w)
	}
	if containerOf(st, "img", "c").State.Running == nil || st[0].Phase != nodeapi.PodPending {
		t.Errorf("c: %+v, phase %s", containerOf(st, "img", "c"), st[0].Phase)
	}
	h.clock.Advance(5 * time.Second)
	st = h.sync(2, p)
	if w := containerOf(st, "img", "a").State.Waiting; w == nil || w.Reason != nodeapi.ReasonImagePullBackOff {
		t.Errorf("a while backing off: %+v", w)
	}
	if n := len(callsWith(rt.Calls, "PullImage missing:1")); n != 1 {
		t.Errorf("pulled %d times during the back-off", n)
	}
	// The image arrives (e.g. imported): the next try succeeds.
	rt.PullErr = nil
	h.clock.Advance(10 * time.Second)
	st = h.sync(2, p)
	if containerOf(st, "img", "a").State.Running == nil {
		t.Errorf("a after the back-off: %+v", containerOf(st, "img", "a"))
	}
}

func TestManagerImageGC(t *testing.T) {
	rt := newFakeRuntime()
	rt.SetImage("old:1", true)
	rt.FsInfo = []cri.FsUsage{{Mountpoint: "/var/lib/containerd"}}
	h := newMH(t, rt, t.TempDir(), nil, nil)
	h.statfs = [2]uint64{1000, 100} // 90% used
	p := podOf("web", nodeapi.RestartAlways, "web")
	h.sync(1, p)
	if rm := callsWith(rt.Calls, "RemoveImage"); len(rm) != 0 {
		t.Errorf("removed images younger than MinAge: %v", rm)
	}
	h.clock.Advance(3 * time.Minute)
	h.sync(1, p)
	if diff := cmp.Diff([]string{"RemoveImage sha256:fake-old:1"}, callsWith(rt.Calls, "RemoveImage")); diff != "" {
		t.Errorf("image gc (-want +got):\n%s", diff)
	}
}

// probeScript answers probes from a table by container name.
type probeScript struct {
	mu  sync.Mutex
	ok  map[string]bool
	ran []string
}

func (s *probeScript) Run(_ context.Context, t probe.Target, _ time.Duration) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ran = append(s.ran, t.Container+" "+t.Kind.String())
	if s.ok[t.Container] {
		return true, ""
	}
	return false, "cat: /tmp/healthy: No such file or directory"
}

func TestManagerLivenessKills(t *testing.T) {
	rt := newFakeRuntime()
	script := &probeScript{ok: map[string]bool{"good": true}}
	h := newMH(t, rt, t.TempDir(), script, nil)
	wake := make(chan struct{}, 1)
	h.m.cfg.Wake = func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	p := podOf("live", nodeapi.RestartAlways, "good", "bad")
	for i := range p.Containers {
		p.Containers[i].LivenessProbe = &nodeapi.Probe{Handler: nodeapi.Handler{Exec: []string{"cat", "/tmp/healthy"}},
			PeriodSeconds: 1, FailureThreshold: 1}
		p.Containers[i].ReadinessProbe = &nodeapi.Probe{Handler: nodeapi.Handler{Exec: []string{"true"}}, PeriodSeconds: 1}
	}
	deadline := time.Now().Add(10 * time.Second)
	var st []nodeapi.PodStatus
	for time.Now().Before(deadline) {
		st = h.sync(1, p)
		if containerOf(st, "live", "bad").RestartCount >= 1 {
			break
		}
		select {
		case <-wake:
		case <-time.After(200 * time.Millisecond):
		}
	}
	bad, good := containerOf(st, "live", "bad"), containerOf(st, "live", "good")
	if bad.RestartCount < 1 || good.RestartCount != 0 {
		t.Fatalf("bad %+v good %+v", bad, good)
	}
	found := false
	for _, e := range st[0].Events {
		if e.Reason == "Unhealthy" && e.Message == "Liveness probe failed: cat: /tmp/healthy: No such file or directory" {
			found = true
		}
	}
	if !found {
		t.Errorf("events: %+v", st[0].Events)
	}
	// The good container becomes ready; the pod does not (bad is not ready).
	for time.Now().Before(deadline) && !good.Ready {
		time.Sleep(100 * time.Millisecond)
		st = h.sync(1, p)
		good = containerOf(st, "live", "good")
	}
	if !good.Ready || containerOf(st, "live", "bad").Ready {
		t.Errorf("readiness: good %v bad %v", good.Ready, containerOf(st, "live", "bad").Ready)
	}
}

func TestManagerReplacesADeadSandbox(t *testing.T) {
	rt := newFakeRuntime()
	h := newMH(t, rt, t.TempDir(), nil, nil)
	p := podOf("web", nodeapi.RestartAlways, "web")
	h.sync(2, p)
	old := rt.Sandboxes()[0]
	// A host reboot: the sandbox is NotReady, its container exited.
	rt.StopPodSandbox(context.Background(), old.ID)
	st := h.sync(3, p)
	sbs := rt.Sandboxes()
	if len(sbs) != 1 || sbs[0].ID == old.ID || sbs[0].Attempt != 1 {
		t.Fatalf("sandboxes after the replacement: %+v", sbs)
	}
	if c := containerOf(st, "web", "web"); c.State.Running == nil || c.RestartCount != 1 || c.LastTerminationState.Terminated == nil {
		t.Errorf("container after the replacement: %+v", c)
	}
	rt.SetSandboxState(sbs[0].ID, cri.SandboxNotReady) // e.g. its network went away
	h.sync(3, p)
	if sbs := rt.Sandboxes(); len(sbs) != 1 || sbs[0].Attempt != 2 {
		t.Errorf("second replacement: %+v", sbs)
	}
}
