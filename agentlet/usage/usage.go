// Package usage measures the resource usage agentlet publishes: every
// pod's CPU and memory from the runtime's container statistics (CRI
// ListContainerStats, one call per sample) and the whole host's from
// /proc/stat and /proc/meminfo.
//
// CPU counters are cumulative, so a rate needs two samples: PodTracker
// keeps the previous sample of each running container (NodeTracker the
// host's) and reports the average over the window between the two, as
// metrics-server does. A container seen for the first time, or whose
// counter went backwards, only sets a new baseline, and its pod gets no
// usage for that window rather than a partial sum. Containers missing from
// a sample are forgotten, so the state is bounded by what runs.
//
// The trackers and the /proc parsers are pure; Sampler is the edge that
// reads the runtime and /proc.
package usage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

// point is one cumulative CPU reading of a container.
type point struct {
	at  time.Time
	cpu uint64 // core-nanoseconds
}

// PodTracker turns samples of cumulative container counters into pod
// usage. The zero value is ready to use; it is not safe for concurrent use.
type PodTracker struct {
	prev map[string]point // by container ID, from the last sample
}

// podAcc collects one pod's containers during Update.
type podAcc struct {
	containers []nodeapi.ContainerUsage
	at         time.Time
	window     time.Duration
	incomplete bool
}

// Update folds in one sample of the running containers (at is when it was
// taken, the timestamp of readings the runtime gives none) and returns the
// usage of every pod, by UID (nodeapi.LabelPodUID), whose running
// containers all have a rate. Containers without the label are not
// agentlet's and ignored.
func (t *PodTracker) Update(stats []cri.ContainerStats, at time.Time) map[string]*nodeapi.PodUsage {
	next := make(map[string]point, len(stats))
	pods := map[string]*podAcc{}
	for _, s := range stats {
		uid := s.Labels[nodeapi.LabelPodUID]
		if uid == "" {
			continue
		}
		acc := pods[uid]
		if acc == nil {
			acc = &podAcc{}
			pods[uid] = acc
		}
		if !s.HasCPU {
			acc.incomplete = true
			continue
		}
		cur := point{at: s.CPUAt, cpu: s.CPUCoreNanos}
		if cur.at.IsZero() {
			cur.at = at
		}
		prev, ok := t.prev[s.ID]
		switch {
		case !ok, cur.cpu < prev.cpu: // new, or its counter was reset
			next[s.ID] = cur
			acc.incomplete = true
			continue
		case !cur.at.After(prev.at): // no fresh reading: keep the baseline
			next[s.ID] = prev
			acc.incomplete = true
			continue
		}
		next[s.ID] = cur
		if !s.HasMemory {
			acc.incomplete = true
			continue
		}
		window := cur.at.Sub(prev.at)
		acc.containers = append(acc.containers, nodeapi.ContainerUsage{
			Name:                  s.Name,
			CPUMillis:             millicores(cur.cpu-prev.cpu, window),
			MemoryWorkingSetBytes: int64(min(s.WorkingSetBytes, math.MaxInt64)),
		})
		if acc.at.IsZero() || cur.at.Before(acc.at) {
			acc.at, acc.window = cur.at, window
		}
	}
	t.prev = next
	out := make(map[string]*nodeapi.PodUsage, len(pods))
	for uid, acc := range pods {
		if acc.incomplete || len(acc.containers) == 0 {
			continue
		}
		u := &nodeapi.PodUsage{Timestamp: acc.at.UTC(), WindowMillis: acc.window.Round(time.Millisecond).Milliseconds(),
			Containers: acc.containers}
		sort.SliceStable(u.Containers, func(i, j int) bool { return u.Containers[i].Name < u.Containers[j].Name })
		for _, c := range u.Containers {
			u.CPUMillis += c.CPUMillis
			u.MemoryWorkingSetBytes += c.MemoryWorkingSetBytes
		}
		out[uid] = u
	}
	return out
}

// Tracked is how many containers the tracker holds a baseline for.
func (t *PodTracker) Tracked() int { return len(t.prev) }

// millicores is the average rate of used core-nanoseconds over window,
// rounded to the nearest millicore.
func millicores(used uint64, window time.Duration) int64 {
	if window <= 0 {
		return 0
	}
	return int64(math.Round(float64(used) * 1000 / float64(window.Nanoseconds())))
}

// NodeSample is one reading of the host's counters.
type NodeSample struct {
	At time.Time
	// CPUBusy is the CPU time spent busy since boot, summed over CPUs
	// (cumulative).
	CPUBusy time.Duration
	// MemoryWorkingSetBytes is the memory in use at At.
	MemoryWorkingSetBytes int64
}

// NodeTracker turns samples of the host's counters into node usage. The
// zero value is ready to use.
type NodeTracker struct {
	prev *NodeSample
}

// Update folds in a sample and returns the host's usage over the window
// since the previous one; nil for the first sample, or when the counters
// went backwards or the clock did not advance.
func (t *NodeTracker) Update(s NodeSample) *nodeapi.NodeUsage {
	prev := t.prev
	t.prev = &s
	if prev == nil || s.CPUBusy < prev.CPUBusy || !s.At.After(prev.At) {
		return nil
	}
	window := s.At.Sub(prev.At)
	return &nodeapi.NodeUsage{
		CPUMillis:             millicores(uint64(s.CPUBusy-prev.CPUBusy), window),
		MemoryWorkingSetBytes: s.MemoryWorkingSetBytes,
		Timestamp:             s.At.UTC(),
		WindowMillis:          window.Round(time.Millisecond).Milliseconds(),
		Source:                nodeapi.UsageSourceProc,
	}
}

// userHZ is the unit of /proc/stat's times: USER_HZ, 100 on every
// architecture agentlet is built for (amd64, arm64), whatever the kernel's HZ.
const userHZ = 100

// ParseProcStat returns the busy CPU time of /proc/stat's aggregate cpu
// line: user + nice + system + irq + softirq. Guest time is already part
// of user and nice; idle, iowait and steal are not busy time of this host.
func ParseProcStat(data []byte) (time.Duration, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 8 {
			return 0, fmt.Errorf("parse /proc/stat: cpu line has %d fields, want at least 8", len(f))
		}
		var busy uint64
		for _, i := range []int{1, 2, 3, 6, 7} { // user nice system (idle iowait) irq softirq
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse /proc/stat: cpu field %d: %w", i, err)
			}
			busy += n
		}
		return time.Duration(busy) * (time.Second / userHZ), nil
	}
	return 0, errors.New("parse /proc/stat: no cpu line")
}

// ParseMeminfo returns the host's memory working set from /proc/meminfo:
// MemTotal − MemFree − Inactive(file).
func ParseMeminfo(data []byte) (int64, error) {
	want := map[string]int64{"MemTotal": -1, "MemFree": -1, "Inactive(file)": -1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if _, wanted := want[key]; !ok || !wanted {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse /proc/meminfo: %s %q: want a number of kB", key, strings.TrimSpace(rest))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("parse /proc/meminfo: %s %q: want a number of kB", key, strings.TrimSpace(rest))
		}
		want[key] = n << 10
	}
	var missing []string
	for k, v := range want {
		if v < 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return 0, fmt.Errorf("parse /proc/meminfo: no %s", strings.Join(missing, ", "))
	}
	return max(want["MemTotal"]-want["MemFree"]-want["Inactive(file)"], 0), nil
}

// Stats is the runtime as the sampler uses it. *cri.Client is the real
// one, *cri.Fake the fake.
type Stats interface {
	ListContainerStats(ctx context.Context) ([]cri.ContainerStats, error)
}

// Sampler reads the runtime's container statistics and the host's /proc
// and keeps the trackers. Not safe for concurrent use: the daemon loop
// owns it.
type Sampler struct {
	Runtime Stats
	Proc    string // "/proc" when empty

	pods PodTracker
	node NodeTracker
}

// SamplePods takes one sample of every running container (one CRI call)
// and returns the pods' usage by UID (see PodTracker.Update).
func (s *Sampler) SamplePods(ctx context.Context, now time.Time) (map[string]*nodeapi.PodUsage, error) {
	stats, err := s.Runtime.ListContainerStats(ctx)
	if err != nil {
		return nil, fmt.Errorf("sample pod usage: %w", err)
	}
	return s.pods.Update(stats, now), nil
}

// SampleNode reads /proc/stat and /proc/meminfo and returns the host's
// usage since the last call (nil for the first).
func (s *Sampler) SampleNode(now time.Time) (*nodeapi.NodeUsage, error) {
	proc := s.Proc
	if proc == "" {
		proc = "/proc"
	}
	stat, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return nil, fmt.Errorf("sample node usage: %w", err)
	}
	busy, err := ParseProcStat(stat)
	if err != nil {
		return nil, fmt.Errorf("sample node usage: %w", err)
	}
	mem, err := os.ReadFile(filepath.Join(proc, "meminfo"))
	if err != nil {
		return nil, fmt.Errorf("sample node usage: %w", err)
	}
	ws, err := ParseMeminfo(mem)
	if err != nil {
		return nil, fmt.Errorf("sample node usage: %w", err)
	}
	return s.node.Update(NodeSample{At: now, CPUBusy: busy, MemoryWorkingSetBytes: ws}), nil
}
