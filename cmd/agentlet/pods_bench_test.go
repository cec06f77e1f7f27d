package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// BenchmarkPodStart compares the CRI floor — RunPodSandbox +
// CreateContainer + StartContainer done directly — with a pod started
// through agentlet: `agentlet apply` of a spec with one more pod until the
// published status shows its container running. Both are reported as
// medians in milliseconds (direct-ms, agentlet-ms).
//
//	go test -run '^$' -bench PodStart -benchtime 10x ./cmd/agentlet/
func BenchmarkPodStart(b *testing.B) {
	w := newPodWorld(b)
	w.startDaemon()
	ctx := context.Background()
	w.apply()
	w.waitFor("node ready", 30*time.Second, func() bool { return w.published().Ready() })

	var direct, through []time.Duration
	for i := 0; i < b.N; i++ {
		// Directly, as kubelet's CRI calls would be, in the same cgroup layout.
		uid := fmt.Sprintf("bench-direct-%d-%d", i, time.Now().UnixNano())
		sc := &cri.SandboxConfig{Name: "direct", Namespace: "default", UID: uid, Hostname: "direct",
			LogDirectory: filepath.Join(w.dir, "bench-logs", uid), CgroupParent: w.cgroup + "/kubepods/pod" + uid,
			Labels: map[string]string{"bench": "direct"}}
		cc := &cri.ContainerConfig{Name: "c", Image: busyboxRef, Command: []string{"sleep", "600"}, LogPath: "c.log"}
		start := time.Now()
		id, err := w.cri.RunPodSandbox(ctx, sc)
		if err != nil {
			b.Fatal(err)
		}
		cid, err := w.cri.CreateContainer(ctx, id, cc, sc)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.cri.StartContainer(ctx, cid); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, time.Since(start))
		if err := w.cri.StopPodSandbox(ctx, id); err != nil {
			b.Fatal(err)
		}
		if err := w.cri.RemovePodSandbox(ctx, id); err != nil {
			b.Fatal(err)
		}

		// Through agentlet.
		p := podSpec(fmt.Sprintf("bench-%d", i), nodeapi.RestartAlways, busybox("c", "trap 'exit 0' TERM; sleep 600 & wait"))
		start = time.Now()
		w.apply(p)
		deadline := time.Now().Add(30 * time.Second)
		for {
			if s := w.pod(p.Name); s != nil && len(s.ContainerStatuses) == 1 && s.ContainerStatuses[0].State.Running != nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("pod %s not running after 30s", p.Name)
			}
			time.Sleep(2 * time.Millisecond)
		}
		through = append(through, time.Since(start))
		w.apply()
		w.waitFor("bench pod removed", 30*time.Second, func() bool {
			sbs, err := w.cri.ListPodSandbox(ctx)
			return err == nil && len(sbs) == 0
		})
	}
	b.ReportMetric(ms(median(direct)), "direct-ms")
	b.ReportMetric(ms(median(through)), "agentlet-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDaemon30Pods runs 30 pods (busybox httpd with an HTTP readiness
// probe every 2 s) and reports the daemon's resident memory (rss-MiB) once
// all are Ready and a few ticks passed, and how long they took to get
// there (ready-s). It is a measurement, not an assertion.
//
//	go test -run '^$' -bench Daemon30Pods -benchtime 1x ./cmd/agentlet/
func BenchmarkDaemon30Pods(b *testing.B) {
	w := newPodWorld(b)
	w.startDaemon()
	w.apply()
	w.waitFor("node ready", 30*time.Second, func() bool { return w.published().Ready() })
	var pods []nodeapi.PodSpec
	for i := 0; i < 30; i++ {
		c := busybox("web", "echo ok > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")
		c.ReadinessProbe = &nodeapi.Probe{Handler: nodeapi.Handler{HTTPGet: &nodeapi.HTTPGetAction{Path: "/index.html", Port: 8080}},
			PeriodSeconds: 2, TimeoutSeconds: 1}
		c.Resources = nodeapi.ContainerResources{MemoryLimitBytes: 32 << 20}
		p := podSpec(fmt.Sprintf("web-%02d", i), nodeapi.RestartAlways, c)
		p.TerminationGracePeriodSeconds = 2 // httpd as PID 1 ignores SIGTERM
		pods = append(pods, p)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 { // each round starts from no pods, with new UIDs
			w.apply()
			w.waitFor("pods removed", 60*time.Second, func() bool { return len(w.published().Pods) == 0 })
			for j := range pods {
				pods[j].UID = fmt.Sprintf("%s-%d", pods[j].UID, i)
			}
		}
		start := time.Now()
		w.apply(pods...)
		w.waitFor("30 pods ready", 120*time.Second, func() bool {
			n := 0
			for _, p := range w.published().Pods {
				for _, c := range p.Conditions {
					if c.Type == nodeapi.PodReady && c.Status == nodeapi.True {
						n++
					}
				}
			}
			return n == 30
		})
		ready := time.Since(start)
		time.Sleep(5 * time.Second) // a few ticks and probe rounds
		rss := vmRSS(b, w.daemon.Process.Pid)
		kb, _ := strconv.Atoi(strings.Fields(rss)[0])
		b.ReportMetric(float64(kb)/1024, "rss-MiB")
		b.ReportMetric(ready.Seconds(), "ready-s")
		b.Logf("30 pods ready after %s; daemon VmRSS %s; containerd VmRSS %s", ready.Round(time.Millisecond), rss, vmRSS(b, w.containerdPid))
	}
	b.ReportMetric(0, "ns/op")
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
