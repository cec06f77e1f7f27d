package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// BenchmarkPodStartup measures pod startup latency for 30 pods over 3 lab
// hosts: `clusterctl apply` → container running (start times as agentlet
// publishes them, nanosecond precision, same clock), p50 and p99, beside the
// floor measured in the same run: the same 30 pods created with direct CRI
// calls (RunPodSandbox + CreateContainer + StartContainer, 10 per host at
// once) against the hosts' own containerd. It also reports agentlet's RSS
// with the pods running.
func BenchmarkPodStartup(b *testing.B) {
	const perHost = 10
	hosts := []string{"h1", "h2", "h3"}
	l := podLab(b, len(hosts))
	var floor, apply []time.Duration
	var rss float64
	for i := 0; i < b.N; i++ {
		floor = append(floor, criFloor(b, l, hosts, perHost, i)...)
		lat, kb := applyLatency(b, l, hosts, perHost*len(hosts), i)
		apply = append(apply, lat...)
		rss = max(rss, kb)
	}
	fp50, fp99 := percentile(floor, 50), percentile(floor, 99)
	ap50, ap99 := percentile(apply, 50), percentile(apply, 99)
	b.ReportMetric(ms(fp50), "floor-p50-ms")
	b.ReportMetric(ms(fp99), "floor-p99-ms")
	b.ReportMetric(ms(ap50), "apply-p50-ms")
	b.ReportMetric(ms(ap99), "apply-p99-ms")
	b.ReportMetric(float64(ap99)/float64(fp99), "p99/floor-p99")
	b.ReportMetric(rss/1024, "agentlet-rss-MiB")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

// hostCRI connects to a lab host's containerd through its mount namespace.
func hostCRI(b *testing.B, l *lab, host string) *cri.Client {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("/var/tmp/clusterctl-lab", l.name, "hosts", host, "pid1.json"))
	if err != nil {
		b.Fatal(err)
	}
	var rec struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		b.Fatal(err)
	}
	c, err := cri.Dial(fmt.Sprintf("unix:///proc/%d/root/run/containerd/containerd.sock", rec.PID))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// criFloor starts perHost pods on every host at once with direct CRI calls
// and returns each pod's latency, then removes them.
func criFloor(b *testing.B, l *lab, hosts []string, perHost, round int) []time.Duration {
	b.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for hi, h := range hosts {
		c := hostCRI(b, l, h)
		defer c.Close()
		for p := 0; p < perHost; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				uid := fmt.Sprintf("floor-%d-%d-%d", round, hi, p)
				sc := &cri.SandboxConfig{Name: uid, Namespace: "floor", UID: uid, Hostname: "floor",
					LogDirectory: "/var/log/pods/floor_" + uid, CgroupParent: fmt.Sprintf("/ccl-%s-%s/floor/%s", l.name, h, uid)}
				id, err := c.RunPodSandbox(ctx, sc)
				if err != nil {
					b.Errorf("%s: run sandbox: %v", h, err)
					return
				}
				cid, err := c.CreateContainer(ctx, id, &cri.ContainerConfig{Name: "c", Image: busyboxRef,
					Command: []string{"sleep", "600"}, LogPath: "c.log"}, sc)
				if err == nil {
					err = c.StartContainer(ctx, cid)
				}
				d := time.Since(start)
				if err != nil {
					b.Errorf("%s: container: %v", h, err)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	b.StopTimer()
	for _, h := range hosts {
		c := hostCRI(b, l, h)
		sbs, err := c.ListPodSandbox(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range sbs {
			if s.Namespace == "floor" {
				c.StopPodSandbox(ctx, s.ID)
				c.RemovePodSandbox(ctx, s.ID)
			}
		}
		c.Close()
	}
	b.StartTimer()
	return lat
}

// applyLatency applies n pods in one manifest and returns, per pod, the time
// from the start of `clusterctl apply` to its container running, and the
// largest agentlet RSS (KiB) seen with them running; then deletes them.
func applyLatency(b *testing.B, l *lab, hosts []string, n, round int) ([]time.Duration, float64) {
	b.Helper()
	var m strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&m, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: bench-%d-%d}\nspec:\n  terminationGracePeriodSeconds: 1\n"+
			"  containers:\n    - {name: c, image: IMAGE, imagePullPolicy: Never, command: [sleep, \"600\"], resources: {requests: {cpu: 10m}}}\n", round, i)
	}
	path := writeManifest(b, "bench.yaml", m.String())
	start := time.Now()
	mustOK(b, "apply", "-f", path, "-i", l.inv)
	started := map[string]time.Time{}
	deadline := time.Now().Add(2 * time.Minute)
	var rss float64
	for len(started) < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d pods running after 2m", len(started), n)
		}
		time.Sleep(200 * time.Millisecond)
		for _, h := range hosts {
			var st nodeapi.NodeStatus
			if err := json.Unmarshal([]byte(l.exec(b, h, "cat /run/agentlet/status.json")), &st); err != nil {
				b.Fatal(err)
			}
			for _, p := range st.Pods {
				if !strings.HasPrefix(p.Name, fmt.Sprintf("bench-%d-", round)) || len(p.ContainerStatuses) == 0 {
					continue
				}
				if r := p.ContainerStatuses[0].State.Running; r != nil {
					started[p.Name] = r.StartedAt
				}
			}
		}
	}
	b.StopTimer()
	for _, h := range hosts {
		rss = max(rss, agentletRSSOn(b, l, h))
	}
	var lat []time.Duration
	for _, t := range started {
		lat = append(lat, t.Sub(start))
	}
	mustOK(b, "delete", "-f", path, "-i", l.inv, "--wait", "--timeout", "2m")
	b.StartTimer()
	return lat, rss
}

func agentletRSSOn(tb testing.TB, l *lab, host string) float64 {
	out := l.exec(tb, host, `grep VmRSS /proc/$(cat /run/agentlet/agentlet.pid)/status`)
	var kb float64
	fmt.Sscanf(strings.TrimPrefix(strings.TrimSpace(out), "VmRSS:"), "%f", &kb)
	return kb
}
