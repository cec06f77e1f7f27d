package main

import (
	"context"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/usage"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// TestUsageEndToEnd runs a pod with a container spinning under a 200m CPU
// limit next to an idle one against the private containerd, and checks
// that the daemon publishes the pod's CPU and memory (measured through CRI
// ListContainerStats) and the host's, then measures what one sample costs.
func TestUsageEndToEnd(t *testing.T) {
	w := newPodWorld(t) // skips unless root, with cgroup v1, containerd and busybox
	w.startDaemon("--usage-interval", "1s")
	spin := busybox("spin", "while :; do :; done")
	spin.Resources = nodeapi.ContainerResources{CPURequestMillis: 100, CPULimitMillis: 200, MemoryLimitBytes: 32 << 20}
	busy := podSpec("busy", nodeapi.RestartAlways, spin, busybox("idle", "exec sleep 600"))
	w.apply(busy)

	w.waitPod("busy", "running", 60*time.Second, func(p *nodeapi.PodStatus) bool { return p.Phase == nodeapi.PodRunning })
	// Skip the first window (it may include the container's start), then
	// read a few.
	first := w.waitPod("busy", "usage published", 20*time.Second, func(p *nodeapi.PodStatus) bool { return p.Usage != nil })
	var seen []int64
	last := first.Usage
	for len(seen) < 4 {
		p := w.waitPod("busy", "a newer usage sample", 10*time.Second, func(p *nodeapi.PodStatus) bool {
			return p.Usage != nil && p.Usage.Timestamp.After(last.Timestamp)
		})
		last = p.Usage
		seen = append(seen, last.CPUMillis)
	}
	u := last
	t.Logf("busy pod CPU per ~1 s window: %v millicores (limit 200m); last: %d m over %d ms, memory %d KiB, containers %+v",
		seen, u.CPUMillis, u.WindowMillis, u.MemoryWorkingSetBytes>>10, u.Containers)
	if u.CPUMillis <= 0 || u.CPUMillis > 400 {
		t.Errorf("busy pod CPU %d m, want > 0 and about its 200m limit", u.CPUMillis)
	}
	if u.MemoryWorkingSetBytes <= 0 {
		t.Errorf("busy pod memory working set %d, want > 0", u.MemoryWorkingSetBytes)
	}
	if u.WindowMillis < 500 || u.WindowMillis > 5000 || time.Since(u.Timestamp) > 10*time.Second {
		t.Errorf("window %d ms at %s, want about 1 s, recent", u.WindowMillis, u.Timestamp)
	}
	if len(u.Containers) != 2 || u.Containers[0].Name != "idle" || u.Containers[1].Name != "spin" ||
		u.Containers[1].CPUMillis < u.Containers[0].CPUMillis || u.Containers[0].CPUMillis+u.Containers[1].CPUMillis != u.CPUMillis {
		t.Errorf("containers %+v", u.Containers)
	}
	st := w.published()
	if n := st.Usage; n == nil || n.CPUMillis <= 0 || n.MemoryWorkingSetBytes <= 0 || n.Source != nodeapi.UsageSourceProc {
		t.Errorf("node usage %+v", n)
	} else {
		t.Logf("node usage: %d m CPU, %d MiB working set over %d ms (whole machine, /proc)", n.CPUMillis, n.MemoryWorkingSetBytes>>20, n.WindowMillis)
	}

	// What one sample costs: the CRI call (most of it, in containerd) and
	// the rest (reading /proc, the rates).
	s := &usage.Sampler{Runtime: w.cri}
	ctx := context.Background()
	var pods, node []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		if _, err := s.SamplePods(ctx, start); err != nil {
			t.Fatal(err)
		}
		mid := time.Now()
		if _, err := s.SampleNode(mid); err != nil {
			t.Fatal(err)
		}
		pods, node = append(pods, mid.Sub(start)), append(node, time.Since(mid))
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("one usage sample (2 containers), median of 20: ListContainerStats + rates %s, /proc %s", median(pods), median(node))
}
