package agentlet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/agentlet/iptables"
	"github.com/clusterctl/clusterctl/agentlet/netfilter"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeImporter records imports and injects errors; OnImport runs after a
// successful import (e.g. to make the fake runtime report the image).
type fakeImporter struct {
	Archives [][]byte
	Err      error
	OnImport func()
}

func (f *fakeImporter) Import(_ context.Context, archive []byte) error {
	if f.Err != nil {
		return f.Err
	}
	f.Archives = append(f.Archives, archive)
	if f.OnImport != nil {
		f.OnImport()
	}
	return nil
}

type harness struct {
	t     *testing.T
	d     *Daemon
	rt    *cri.Fake
	ipt   *iptables.Fake
	imp   *fakeImporter
	clock *fakeClock
	log   *bytes.Buffer
	paths Paths
	cni   string
}

var testArchive = []byte("pause-archive-bytes")

func newHarness(t *testing.T) *harness {
	t.Helper()
	root := t.TempDir()
	h := &harness{
		t:     t,
		rt:    cri.NewFake(),
		ipt:   iptables.NewFake(),
		imp:   &fakeImporter{},
		clock: &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)},
		log:   &bytes.Buffer{},
		paths: Paths{Root: root},
		cni:   filepath.Join(root, "etc/cni/net.d"),
	}
	h.imp.OnImport = func() { h.rt.SetImage(version.PauseImage, true) }
	h.d = &Daemon{
		Paths:      h.paths,
		CNIConfDir: h.cni,
		Endpoint:   "unix:///run/containerd/containerd.sock",
		Interval:   2 * time.Second,
		Arch:       "amd64",
		Runtime:    h.rt,
		Importer:   h.imp,
		Iptables:   h.ipt,
		Archive: func(arch string) ([]byte, error) {
			if arch != "amd64" {
				return nil, errors.New("no archive for " + arch)
			}
			return testArchive, nil
		},
		Facts: func() (HostFacts, error) {
			return HostFacts{Hostname: "h1", Kernel: "6.1.0", OS: "Test OS", CgroupVersion: 2, CPUs: 2, MemTotalBytes: 4 << 30}, nil
		},
		Now: h.clock.Now,
		Log: NewLogger(h.log, h.clock.Now),
	}
	return h
}

func (h *harness) writeCNI() {
	h.t.Helper()
	if err := os.MkdirAll(h.cni, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.cni, "10-clusterctl.conflist"), []byte("{}"), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) apply(spec *nodeapi.NodeSpec) {
	h.t.Helper()
	if _, err := (Applier{Paths: h.paths, ProcRoot: "/proc"}).Apply(specJSON(h.t, spec)); err != nil {
		h.t.Fatal(err)
	}
}

// tick runs one tick and checks that the published file equals the result.
func (h *harness) tick() *nodeapi.NodeStatus {
	h.t.Helper()
	st, err := h.d.Tick(context.Background())
	if err != nil {
		h.t.Fatalf("tick: %v", err)
	}
	data, err := os.ReadFile(h.paths.StatusPath())
	if err != nil {
		h.t.Fatalf("status not published: %v", err)
	}
	pub, err := nodeapi.DecodeNodeStatus(data)
	if err != nil {
		h.t.Fatal(err)
	}
	if diff := cmp.Diff(st, pub); diff != "" {
		h.t.Errorf("published status differs from the tick's (-tick +file):\n%s", diff)
	}
	return st
}

func cond(t *testing.T, st *nodeapi.NodeStatus, typ string) nodeapi.Condition {
	t.Helper()
	c, ok := st.Condition(typ)
	if !ok {
		t.Fatalf("no %s condition", typ)
	}
	return c
}

func TestDaemonConverges(t *testing.T) {
	h := newHarness(t)

	// A fresh host: no spec, no CNI config, no sandbox image.
	st := h.tick()
	if len(h.imp.Archives) != 1 || !bytes.Equal(h.imp.Archives[0], testArchive) {
		t.Fatalf("imports = %q, want the embedded archive once", h.imp.Archives)
	}
	wantCalls := []string{"Version", "Status", "ImageStatus " + version.PauseImage, "ImageStatus " + version.PauseImage}
	if diff := cmp.Diff(wantCalls, h.rt.TakeCalls()); diff != "" {
		t.Errorf("CRI calls (-want +got):\n%s", diff)
	}
	if calls := h.ipt.TakeCalls(); calls != nil {
		t.Errorf("iptables touched without a spec: %v", calls)
	}
	want := []string{"Ready=False/ConditionsNotMet", "ContainerRuntimeReady=True/RuntimeReady", "SandboxImageReady=True/ImagePresent",
		"NetworkReady=False/NoCNIConfig", "SpecApplied=False/NoSpec"}
	if diff := cmp.Diff(want, brief(st.Conditions)); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if !st.HeartbeatAt.Equal(h.clock.Now()) || st.HeartbeatIntervalMillis != 2000 || !st.DaemonRunning {
		t.Errorf("heartbeat = %s interval %d running %v", st.HeartbeatAt, st.HeartbeatIntervalMillis, st.DaemonRunning)
	}
	if st.Capacity.CPUMillis != 2000 || st.Allocatable.MemoryBytes != 4<<30-ReservedMemoryBytes || st.CgroupVersion != 2 {
		t.Errorf("capacity %+v allocatable %+v cgroup %d", st.Capacity, st.Allocatable, st.CgroupVersion)
	}
	if st.Runtime.Name != "containerd" || !st.Runtime.Reachable {
		t.Errorf("runtime = %+v", st.Runtime)
	}
	fi, err := os.Stat(h.paths.StatusPath())
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("status file mode = %v, %v; want 0644", fi.Mode(), err)
	}

	// The CNI config appears and a spec is applied: the base rules are loaded.
	h.writeCNI()
	h.apply(testSpec(3))
	h.clock.Advance(2 * time.Second)
	st = h.tick()
	if !st.Ready() {
		t.Fatalf("not ready: %v", brief(st.Conditions))
	}
	if st.SpecGeneration != 3 || st.NodeName != "h1" || st.PodCIDR != "10.244.1.0/24" || st.SpecWriter != "alice@laptop" {
		t.Errorf("spec fields: gen %d node %q podCIDR %q writer %q", st.SpecGeneration, st.NodeName, st.PodCIDR, st.SpecWriter)
	}
	jump := netfilter.BaseJumps()[0]
	jumpKey := "filter FORWARD " + strings.Join(jump.Rule, " ")
	wantIpt := []string{"save filter", "restore", "check " + jumpKey, "insert " + jumpKey}
	if diff := cmp.Diff(wantIpt, h.ipt.TakeCalls()); diff != "" {
		t.Errorf("iptables calls (-want +got):\n%s", diff)
	}
	b, _ := netfilter.BaseFromSpec(testSpec(3))
	if !bytes.Equal(h.ipt.Restored[0], netfilter.RenderBase(b)) {
		t.Errorf("restored payload:\n%s", h.ipt.Restored[0])
	}
	readySince := cond(t, st, nodeapi.ConditionReady).LastTransitionTime

	// Steady state: the rules are seen in place, nothing is reloaded or
	// imported, no line is logged, and transition times stay put.
	h.ipt.SetSave("filter", []byte("*filter\n:FORWARD ACCEPT [0:0]\n:CLUSTERCTL-FORWARD - [0:0]\n"+
		"-A FORWARD -m comment --comment clusterctl -j CLUSTERCTL-FORWARD\n"+
		strings.TrimPrefix(string(netfilter.RenderBase(b)), "*filter\n:CLUSTERCTL-FORWARD - [0:0]\n")))
	logLen := h.log.Len()
	for range 3 {
		h.clock.Advance(2 * time.Second)
		st = h.tick()
	}
	if diff := cmp.Diff([]string{"save filter", "save filter", "save filter"}, h.ipt.TakeCalls()); diff != "" {
		t.Errorf("steady-state iptables calls (-want +got):\n%s", diff)
	}
	if len(h.imp.Archives) != 1 {
		t.Errorf("re-imported in steady state: %d imports", len(h.imp.Archives))
	}
	if h.log.Len() != logLen {
		t.Errorf("steady state logged:\n%s", h.log.String()[logLen:])
	}
	if got := cond(t, st, nodeapi.ConditionReady).LastTransitionTime; !got.Equal(readySince) {
		t.Errorf("Ready transition time moved from %s to %s without a change", readySince, got)
	}
	if len(st.RecentErrors) != 0 {
		t.Errorf("recent errors in a healthy node: %+v", st.RecentErrors)
	}
}

func TestDaemonRuntimeDown(t *testing.T) {
	h := newHarness(t)
	h.writeCNI()
	h.rt.SetImage(version.PauseImage, true)
	st := h.tick()
	if cond(t, st, nodeapi.ConditionRuntimeReady).Status != nodeapi.True {
		t.Fatal("runtime not ready at start")
	}
	h.rt.TakeCalls()

	h.rt.VersionErr = errors.New("rpc error: code = Unavailable desc = connection refused")
	for range 3 {
		h.clock.Advance(2 * time.Second)
		st = h.tick()
	}
	if diff := cmp.Diff([]string{"Version", "Version", "Version"}, h.rt.TakeCalls()); diff != "" {
		t.Errorf("calls while down (-want +got):\n%s", diff)
	}
	c := cond(t, st, nodeapi.ConditionRuntimeReady)
	if c.Status != nodeapi.False || c.Reason != ReasonRuntimeUnreachable || !strings.Contains(c.Message, "connection refused") {
		t.Errorf("runtime condition = %+v", c)
	}
	if st.Runtime.Reachable || !strings.Contains(st.Runtime.Error, "connection refused") {
		t.Errorf("runtime info = %+v", st.Runtime)
	}
	// The same error three times is one event counted three times.
	if len(st.RecentErrors) != 1 || st.RecentErrors[0].Count != 3 || st.RecentErrors[0].Reason != ReasonRuntimeUnreachable {
		t.Errorf("recent errors = %+v", st.RecentErrors)
	}
	if n := strings.Count(h.log.String(), "connection refused"); n != 2 { // the new error, the condition change
		t.Errorf("the error was logged %d times, want 2 (no repeats):\n%s", n, h.log)
	}
	downSince := cond(t, st, nodeapi.ConditionRuntimeReady).LastTransitionTime

	h.rt.VersionErr = nil
	h.clock.Advance(2 * time.Second)
	st = h.tick()
	c = cond(t, st, nodeapi.ConditionRuntimeReady)
	if c.Status != nodeapi.True || !c.LastTransitionTime.After(downSince) {
		t.Errorf("after recovery: %+v", c)
	}
	if len(st.RecentErrors) != 1 {
		t.Errorf("recent errors must outlive the recovery: %+v", st.RecentErrors)
	}
}

func TestDaemonImportBackoff(t *testing.T) {
	h := newHarness(t)
	h.imp.Err = errors.New("import sandbox image: ctr not found (ctr ships with containerd)")
	st := h.tick()
	c := cond(t, st, nodeapi.ConditionSandboxImage)
	if c.Status != nodeapi.False || c.Reason != ReasonImageImportFailed || !strings.Contains(c.Message, "ctr not found") {
		t.Fatalf("image condition = %+v", c)
	}
	attempts := func() int {
		n := 0
		for _, ev := range h.d.state.events {
			if ev.Reason == ReasonImageImportFailed {
				n = ev.Count
			}
		}
		return n
	}
	// Back-off: 2s, 4s, 8s ... between attempts; ticks in between do not run ctr.
	h.imp.OnImport = nil
	h.clock.Advance(time.Second)
	h.tick()
	if h.d.state.importFails != 1 {
		t.Errorf("retried inside the back-off: %d failures", h.d.state.importFails)
	}
	h.clock.Advance(time.Second)
	h.tick() // 2s after the first failure: retry
	if h.d.state.importFails != 2 {
		t.Errorf("no retry after the back-off: %d failures", h.d.state.importFails)
	}
	if attempts() != 3 {
		t.Errorf("event count = %d, want 3 (one per tick reporting it)", attempts())
	}

	// ctr works again: the next attempt imports.
	h.imp.Err = nil
	h.imp.OnImport = func() { h.rt.SetImage(version.PauseImage, true) }
	h.clock.Advance(4 * time.Second)
	st = h.tick()
	if c := cond(t, st, nodeapi.ConditionSandboxImage); c.Status != nodeapi.True {
		t.Errorf("after recovery: %+v", c)
	}
}

func TestDaemonArchiveMissing(t *testing.T) {
	h := newHarness(t)
	h.d.Arch = "riscv64"
	st := h.tick()
	c := cond(t, st, nodeapi.ConditionSandboxImage)
	if c.Status != nodeapi.False || !strings.Contains(c.Message, "no archive for riscv64") {
		t.Errorf("image condition = %+v", c)
	}
	if len(h.imp.Archives) != 0 {
		t.Error("imported something without an archive")
	}
}

func TestDaemonImportedButAbsent(t *testing.T) {
	h := newHarness(t)
	h.imp.OnImport = nil // ctr says yes, the runtime still has no image
	st := h.tick()
	if c := cond(t, st, nodeapi.ConditionSandboxImage); c.Status != nodeapi.False || !strings.Contains(c.Message, "does not report it") {
		t.Errorf("image condition = %+v", c)
	}
}

func TestDaemonRulesFail(t *testing.T) {
	h := newHarness(t)
	h.writeCNI()
	h.rt.SetImage(version.PauseImage, true)
	h.apply(testSpec(1))
	h.ipt.RestoreErr = errors.New("iptables-restore exited with status 1: iptables-restore: line 3 failed")
	st := h.tick()
	c := cond(t, st, nodeapi.ConditionSpecApplied)
	if c.Status != nodeapi.False || c.Reason != ReasonRulesFailed || !strings.Contains(c.Message, "line 3 failed") {
		t.Errorf("spec condition = %+v", c)
	}
	if st.Ready() {
		t.Error("ready although the rules failed")
	}
	if len(st.RecentErrors) != 1 || st.RecentErrors[0].Reason != ReasonRulesFailed {
		t.Errorf("recent errors = %+v", st.RecentErrors)
	}
}

func TestDaemonInvalidHeldSpecLeaksNothing(t *testing.T) {
	h := newHarness(t)
	const secret = "s3cr3t-token-value"
	if err := os.MkdirAll(h.paths.StateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	held := `{"apiVersion":"` + nodeapi.APIVersion + `","nodeName":"h1","generation":"` + secret + `","password":"` + secret + `"}`
	if err := os.WriteFile(h.paths.SpecPath(), []byte(held), 0o600); err != nil {
		t.Fatal(err)
	}
	st := h.tick()
	c := cond(t, st, nodeapi.ConditionSpecApplied)
	if c.Status != nodeapi.False || c.Reason != ReasonSpecInvalid {
		t.Errorf("spec condition = %+v", c)
	}
	data, _ := os.ReadFile(h.paths.StatusPath())
	if bytes.Contains(data, []byte(secret)) || strings.Contains(h.log.String(), secret) {
		t.Errorf("spec content leaked into the status or the log:\n%s\n%s", data, h.log)
	}
	if calls := h.ipt.TakeCalls(); calls != nil {
		t.Errorf("iptables touched with an invalid spec: %v", calls)
	}
}

func TestDaemonRunWakesAndStops(t *testing.T) {
	h := newHarness(t)
	h.rt.SetImage(version.PauseImage, true)
	h.d.Interval = time.Hour // only the first tick and wakes run
	ctx, cancel := context.WithCancel(context.Background())
	wake := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx, wake) }()

	ticks := 0
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for ticks < n {
			for _, c := range h.rt.TakeCalls() {
				if c == "Version" {
					ticks++
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("saw %d ticks, want %d", ticks, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(1)
	wake <- struct{}{}
	waitFor(2)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestDaemonRestartKeepsTransitionTimes(t *testing.T) {
	h := newHarness(t)
	h.rt.VersionErr = errors.New("connection refused")
	st := h.tick()
	since := cond(t, st, nodeapi.ConditionRuntimeReady).LastTransitionTime

	// A new daemon process on the same host: same files, fresh memory.
	h.clock.Advance(time.Minute)
	h.d.state = daemonState{}
	h.d.restore()
	h.log.Reset()
	st = h.tick()
	if got := cond(t, st, nodeapi.ConditionRuntimeReady).LastTransitionTime; !got.Equal(since) {
		t.Errorf("transition time after restart = %s, want %s", got, since)
	}
	if len(st.RecentErrors) != 1 || st.RecentErrors[0].Count != 2 {
		t.Errorf("recent errors after restart = %+v, want the old one counted twice", st.RecentErrors)
	}
	// The first tick of a daemon logs every condition once.
	if n := strings.Count(h.log.String(), " condition "); n != 5 {
		t.Errorf("first tick logged %d conditions, want 5:\n%s", n, h.log)
	}
}
