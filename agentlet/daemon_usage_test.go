package agentlet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

// fakeUsage records the samples the daemon takes and answers with what
// its fields say.
type fakeUsage struct {
	nodeCalls, podCalls []time.Time
	node                *nodeapi.NodeUsage
	pods                map[string]*nodeapi.PodUsage
	nodeErr, podErr     error
}

func (f *fakeUsage) SampleNode(now time.Time) (*nodeapi.NodeUsage, error) {
	f.nodeCalls = append(f.nodeCalls, now)
	return f.node, f.nodeErr
}

func (f *fakeUsage) SamplePods(_ context.Context, now time.Time) (map[string]*nodeapi.PodUsage, error) {
	f.podCalls = append(f.podCalls, now)
	return f.pods, f.podErr
}

func TestDaemonPublishesUsage(t *testing.T) {
	h := newHarness(t)
	fu := &fakeUsage{}
	h.d.Pods = &fakePods{}
	h.d.Usage, h.d.UsageInterval = fu, 10*time.Second
	h.rt.SetImage(version.PauseImage, true)
	h.writeCNI()
	spec := testSpec(2)
	for _, n := range []string{"web", "db"} {
		spec.Pods = append(spec.Pods, nodeapi.PodSpec{UID: "uid-" + n, Namespace: "default", Name: n, RestartPolicy: nodeapi.RestartAlways,
			Containers: []nodeapi.ContainerSpec{{Name: n, Image: "busybox"}}})
	}
	h.apply(spec)

	// The first sample is only a baseline.
	st := h.tick()
	if len(fu.nodeCalls) != 1 || len(fu.podCalls) != 1 || st.Usage != nil || podUsage(st, "web") != nil {
		t.Fatalf("first tick: %d/%d samples, node usage %+v, pod usage %+v", len(fu.nodeCalls), len(fu.podCalls), st.Usage, podUsage(st, "web"))
	}

	// Not due on the next ticks, a little early on the fifth (a wake).
	fu.node = &nodeapi.NodeUsage{CPUMillis: 1500, MemoryWorkingSetBytes: 3 << 30, Source: nodeapi.UsageSourceProc}
	web := &nodeapi.PodUsage{CPUMillis: 250, MemoryWorkingSetBytes: 10 << 20, WindowMillis: 9500,
		Containers: []nodeapi.ContainerUsage{{Name: "web", CPUMillis: 250, MemoryWorkingSetBytes: 10 << 20}}}
	fu.pods = map[string]*nodeapi.PodUsage{"uid-web": web, "uid-gone": {CPUMillis: 1}}
	for i := 0; i < 4; i++ {
		h.clock.Advance(2 * time.Second)
		if st = h.tick(); st.Usage != nil || len(fu.nodeCalls) != 1 {
			t.Fatalf("tick %d sampled (%d samples) or published usage %+v", i+2, len(fu.nodeCalls), st.Usage)
		}
	}
	h.clock.Advance(1500 * time.Millisecond) // 9.5 s after the first sample
	st = h.tick()
	if len(fu.nodeCalls) != 2 || len(fu.podCalls) != 2 {
		t.Fatalf("samples after 9.5 s: node %d pods %d, want 2 each", len(fu.nodeCalls), len(fu.podCalls))
	}
	if diff := cmp.Diff(fu.node, st.Usage); diff != "" {
		t.Errorf("node usage (-want +got):\n%s", diff)
	}
	got := map[string]*nodeapi.PodUsage{}
	for _, p := range st.Pods {
		got[p.Name] = p.Usage
	}
	if diff := cmp.Diff(map[string]*nodeapi.PodUsage{"db": nil, "web": web}, got); diff != "" {
		t.Errorf("pod usage (-want +got):\n%s", diff)
	}

	// Between samples the last usage stays published.
	h.clock.Advance(2 * time.Second)
	if st = h.tick(); st.Usage == nil || podUsage(st, "web") == nil || len(fu.nodeCalls) != 2 {
		t.Errorf("usage between samples: node %+v, web %+v", st.Usage, podUsage(st, "web"))
	}

	// A failed sample is an event and the usage is absent, never stale.
	fu.podErr = errors.New("sample pod usage: list container stats: unavailable")
	h.clock.Advance(10 * time.Second)
	st = h.tick()
	if st.Usage == nil || podUsage(st, "web") != nil {
		t.Errorf("after a failed pod sample: node %+v, web %+v", st.Usage, podUsage(st, "web"))
	}
	if e := st.RecentErrors; len(e) == 0 || e[len(e)-1].Reason != ReasonUsageFailed {
		t.Errorf("no %s event: %+v", ReasonUsageFailed, e)
	}

	// An unreachable runtime is not asked for container stats; the host's
	// usage is still measured.
	fu.podErr = nil
	h.rt.VersionErr = errors.New("connection refused")
	h.clock.Advance(10 * time.Second)
	n := len(fu.podCalls)
	st = h.tick()
	if len(fu.podCalls) != n || len(fu.nodeCalls) != 4 || st.Usage == nil || podUsage(st, "web") != nil {
		t.Errorf("runtime down: %d pod samples (want %d), %d node samples, node %+v, web %+v",
			len(fu.podCalls), n, len(fu.nodeCalls), st.Usage, podUsage(st, "web"))
	}
}

func TestDaemonUsageEveryTick(t *testing.T) {
	h := newHarness(t)
	fu := &fakeUsage{}
	h.d.Usage = fu // UsageInterval 0: every tick, once
	for i := 0; i < 3; i++ {
		h.tick()
		h.clock.Advance(time.Millisecond)
	}
	if len(fu.nodeCalls) != 3 || len(fu.podCalls) != 0 {
		t.Errorf("samples: node %d (want 3), pods %d (want 0: no pod runtime)", len(fu.nodeCalls), len(fu.podCalls))
	}
}

func podUsage(st *nodeapi.NodeStatus, name string) *nodeapi.PodUsage {
	for _, p := range st.Pods {
		if p.Name == name {
			return p.Usage
		}
	}
	return nil
}
