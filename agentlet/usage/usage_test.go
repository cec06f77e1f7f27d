package usage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/nodeapi"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// stat is one container's sample: pod uid, container name and ID, seconds
// after t0 and cumulative CPU in milliseconds, working set in MiB.
func stat(uid, name, id string, at float64, cpuMillis uint64, memMiB uint64) cri.ContainerStats {
	ts := t0.Add(time.Duration(at * float64(time.Second)))
	return cri.ContainerStats{ID: id, Name: name, Labels: map[string]string{nodeapi.LabelPodUID: uid}, Usage: cri.Usage{
		HasCPU: true, CPUAt: ts, CPUCoreNanos: cpuMillis * 1e6, HasMemory: true, MemoryAt: ts, WorkingSetBytes: memMiB << 20}}
}

func TestPodTracker(t *testing.T) {
	noLabel := stat("", "x", "other", 0, 1, 1)
	noLabel.Labels = nil
	noMemory := stat("u3", "m", "m1", 10, 500, 1)
	noMemory.HasMemory = false
	noTime := stat("u4", "t", "t1", 0, 0, 1)
	noTime.CPUAt = time.Time{}
	noTime2 := stat("u4", "t", "t1", 0, 2500, 1)
	noTime2.CPUAt = time.Time{}
	for _, tc := range []struct {
		name  string
		steps [][]cri.ContainerStats
		at    []time.Time // sample times (default t0 + 10 s per step)
		want  map[string]*nodeapi.PodUsage
		kept  int
	}{
		{
			name:  "first sample is only a baseline",
			steps: [][]cri.ContainerStats{{stat("u1", "web", "c1", 0, 100, 5)}},
			want:  map[string]*nodeapi.PodUsage{},
			kept:  1,
		},
		{
			name: "rate over the window, summed over the containers",
			steps: [][]cri.ContainerStats{
				{stat("u1", "web", "c1", 0, 100, 5), stat("u1", "side", "c2", 0.01, 0, 1), stat("u2", "db", "c3", 0, 0, 50)},
				// web: 2.5 s of CPU in 10 s; side: 0.1 s in 10 s; db: 15 s in 10 s.
				{stat("u1", "web", "c1", 10, 2600, 6), stat("u1", "side", "c2", 10.01, 100, 2), stat("u2", "db", "c3", 10, 15000, 60)},
			},
			want: map[string]*nodeapi.PodUsage{
				"u1": {CPUMillis: 260, MemoryWorkingSetBytes: 8 << 20, Timestamp: t0.Add(10 * time.Second), WindowMillis: 10000,
					Containers: []nodeapi.ContainerUsage{{Name: "side", CPUMillis: 10, MemoryWorkingSetBytes: 2 << 20},
						{Name: "web", CPUMillis: 250, MemoryWorkingSetBytes: 6 << 20}}},
				"u2": {CPUMillis: 1500, MemoryWorkingSetBytes: 60 << 20, Timestamp: t0.Add(10 * time.Second), WindowMillis: 10000,
					Containers: []nodeapi.ContainerUsage{{Name: "db", CPUMillis: 1500, MemoryWorkingSetBytes: 60 << 20}}},
			},
			kept: 3,
		},
		{
			name: "restarted container (new ID) leaves its pod without usage for one window",
			steps: [][]cri.ContainerStats{
				{stat("u1", "web", "c1", 0, 100, 5), stat("u1", "side", "c2", 0, 0, 1)},
				{stat("u1", "web", "c1b", 10, 30, 5), stat("u1", "side", "c2", 10, 100, 1)},
			},
			want: map[string]*nodeapi.PodUsage{},
			kept: 2, // c1 is gone and forgotten
		},
		{
			name: "after a restart the new instance's rate counts from its own baseline",
			steps: [][]cri.ContainerStats{
				{stat("u1", "web", "c1", 0, 100, 5)},
				{stat("u1", "web", "c1b", 10, 30, 5)},
				{stat("u1", "web", "c1b", 20, 1030, 7)},
			},
			want: map[string]*nodeapi.PodUsage{"u1": {CPUMillis: 100, MemoryWorkingSetBytes: 7 << 20, Timestamp: t0.Add(20 * time.Second),
				WindowMillis: 10000, Containers: []nodeapi.ContainerUsage{{Name: "web", CPUMillis: 100, MemoryWorkingSetBytes: 7 << 20}}}},
			kept: 1,
		},
		{
			name: "a counter going backwards under the same ID is a new baseline, not a negative rate",
			steps: [][]cri.ContainerStats{
				{stat("u1", "web", "c1", 0, 5000, 5)},
				{stat("u1", "web", "c1", 10, 200, 5)},
			},
			want: map[string]*nodeapi.PodUsage{},
			kept: 1,
		},
		{
			name: "no fresh reading keeps the old baseline",
			steps: [][]cri.ContainerStats{
				{stat("u1", "web", "c1", 0, 0, 5)},
				{stat("u1", "web", "c1", 0, 0, 5)},
				{stat("u1", "web", "c1", 4, 1000, 5)},
			},
			want: map[string]*nodeapi.PodUsage{"u1": {CPUMillis: 250, MemoryWorkingSetBytes: 5 << 20, Timestamp: t0.Add(4 * time.Second),
				WindowMillis: 4000, Containers: []nodeapi.ContainerUsage{{Name: "web", CPUMillis: 250, MemoryWorkingSetBytes: 5 << 20}}}},
			kept: 1,
		},
		{
			name: "gone containers and pods are dropped",
			steps: [][]cri.ContainerStats{
				{stat("u1", "web", "c1", 0, 0, 5), stat("u2", "db", "c3", 0, 0, 5)},
				{stat("u2", "db", "c3", 10, 10, 5)},
			},
			want: map[string]*nodeapi.PodUsage{"u2": {CPUMillis: 1, MemoryWorkingSetBytes: 5 << 20, Timestamp: t0.Add(10 * time.Second),
				WindowMillis: 10000, Containers: []nodeapi.ContainerUsage{{Name: "db", CPUMillis: 1, MemoryWorkingSetBytes: 5 << 20}}}},
			kept: 1,
		},
		{
			name: "containers not agentlet's, or without memory, give no usage",
			steps: [][]cri.ContainerStats{
				{noLabel, stat("u3", "m", "m1", 0, 0, 1)},
				{noLabel, noMemory},
			},
			want: map[string]*nodeapi.PodUsage{},
			kept: 1,
		},
		{
			name:  "readings without a timestamp use the sample's time",
			steps: [][]cri.ContainerStats{{noTime}, {noTime2}},
			at:    []time.Time{t0, t0.Add(5 * time.Second)},
			want: map[string]*nodeapi.PodUsage{"u4": {CPUMillis: 500, MemoryWorkingSetBytes: 1 << 20, Timestamp: t0.Add(5 * time.Second),
				WindowMillis: 5000, Containers: []nodeapi.ContainerUsage{{Name: "t", CPUMillis: 500, MemoryWorkingSetBytes: 1 << 20}}}},
			kept: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr PodTracker
			var got map[string]*nodeapi.PodUsage
			for i, s := range tc.steps {
				at := t0.Add(time.Duration(i) * 10 * time.Second)
				if tc.at != nil {
					at = tc.at[i]
				}
				got = tr.Update(s, at)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
			if tr.Tracked() != tc.kept {
				t.Errorf("tracked %d containers, want %d", tr.Tracked(), tc.kept)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	data := []byte("cpu  1000 20 300 99999 55 7 8 9 100 0\ncpu0 500 10 150 50000 20 3 4 5 50 0\nintr 1 2 3\n")
	busy, err := ParseProcStat(data)
	if want := 1335 * 10 * time.Millisecond; err != nil || busy != want {
		t.Errorf("ParseProcStat = %s, %v; want %s", busy, err, want)
	}
	for _, bad := range []string{"", "cpu 1 2 3\n", "cpu a b c d e f g h\n", "intr 1\n"} {
		if _, err := ParseProcStat([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "parse /proc/stat: ") {
			t.Errorf("ParseProcStat(%q) = %v, want an error", bad, err)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	data := []byte("MemTotal:       16000000 kB\nMemFree:         4000000 kB\nMemAvailable:    9000000 kB\n" +
		"Active(file):    2000000 kB\nInactive(file):  3000000 kB\n")
	ws, err := ParseMeminfo(data)
	if want := int64(9000000) << 10; err != nil || ws != want {
		t.Errorf("ParseMeminfo = %d, %v; want %d", ws, err, want)
	}
	_, err = ParseMeminfo([]byte("MemTotal: 1 kB\n"))
	if err == nil || err.Error() != "parse /proc/meminfo: no Inactive(file), MemFree" {
		t.Errorf("missing lines: %v", err)
	}
	if _, err := ParseMeminfo([]byte("MemTotal: 1 MB\nMemFree: 0 kB\nInactive(file): 0 kB\n")); err == nil {
		t.Error("unit MB accepted")
	}
}

func TestNodeTracker(t *testing.T) {
	var tr NodeTracker
	if u := tr.Update(NodeSample{At: t0, CPUBusy: 100 * time.Second, MemoryWorkingSetBytes: 1}); u != nil {
		t.Errorf("first sample = %+v, want nil", u)
	}
	// 1.5 CPU-seconds busy in 2 s: 750m.
	u := tr.Update(NodeSample{At: t0.Add(2 * time.Second), CPUBusy: 101500 * time.Millisecond, MemoryWorkingSetBytes: 7 << 30})
	want := &nodeapi.NodeUsage{CPUMillis: 750, MemoryWorkingSetBytes: 7 << 30, Timestamp: t0.Add(2 * time.Second), WindowMillis: 2000,
		Source: nodeapi.UsageSourceProc}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	if u := tr.Update(NodeSample{At: t0.Add(4 * time.Second), CPUBusy: time.Second}); u != nil { // rebooted?
		t.Errorf("counter going backwards = %+v, want nil", u)
	}
	if u := tr.Update(NodeSample{At: t0.Add(4 * time.Second), CPUBusy: 2 * time.Second}); u != nil {
		t.Errorf("no time passed = %+v, want nil", u)
	}
}

// fakePod runs a pod with the given containers in the fake runtime and
// returns their IDs.
func fakePod(t testing.TB, f *cri.Fake, uid string, names ...string) []string {
	t.Helper()
	ctx := context.Background()
	sb, err := f.RunPodSandbox(ctx, &cri.SandboxConfig{Name: uid, Namespace: "default", UID: uid})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range names {
		id, err := f.CreateContainer(ctx, sb, &cri.ContainerConfig{Name: n, Image: "busybox",
			Labels: map[string]string{nodeapi.LabelPodUID: uid}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func use(at time.Time, cpu time.Duration, mem uint64) cri.Usage {
	return cri.Usage{HasCPU: true, CPUAt: at, CPUCoreNanos: uint64(cpu), HasMemory: true, MemoryAt: at, WorkingSetBytes: mem}
}

func TestSamplerWithFakeRuntime(t *testing.T) {
	f := cri.NewFake()
	f.SetImage("busybox", true)
	s := &Sampler{Runtime: f}
	ctx := context.Background()
	web := fakePod(t, f, "u1", "web")[0]
	f.TakeCalls()

	f.SetUsage(web, use(t0, time.Second, 10<<20))
	if got, err := s.SamplePods(ctx, t0); err != nil || len(got) != 0 {
		t.Fatalf("first sample = %v, %v; want no usage", got, err)
	}
	f.SetUsage(web, use(t0.Add(10*time.Second), 4*time.Second, 12<<20)) // 3 s in 10 s
	got, err := s.SamplePods(ctx, t0.Add(10*time.Second))
	if err != nil || got["u1"] == nil || got["u1"].CPUMillis != 300 || got["u1"].MemoryWorkingSetBytes != 12<<20 {
		t.Fatalf("second sample = %+v, %v; want 300m, 12 MiB", got["u1"], err)
	}
	if calls := f.TakeCalls(); len(calls) != 2 || calls[0] != "ListContainerStats" {
		t.Errorf("calls = %v, want one ListContainerStats per sample", calls)
	}

	// The container crashes and is restarted: the new instance's counter
	// starts from zero; the pod has no usage for one window, then again.
	f.Exit(web, 1, "Error")
	web2 := fakePod(t, f, "u1", "web")[0]
	f.SetUsage(web2, use(t0.Add(20*time.Second), 100*time.Millisecond, 3<<20))
	if got, err := s.SamplePods(ctx, t0.Add(20*time.Second)); err != nil || got["u1"] != nil {
		t.Errorf("sample after the restart = %+v, %v; want no usage", got["u1"], err)
	}
	if s.pods.Tracked() != 1 {
		t.Errorf("tracked %d containers after the restart, want 1 (the exited one dropped)", s.pods.Tracked())
	}
	f.SetUsage(web2, use(t0.Add(30*time.Second), 2100*time.Millisecond, 4<<20))
	if got, err := s.SamplePods(ctx, t0.Add(30*time.Second)); err != nil || got["u1"] == nil || got["u1"].CPUMillis != 200 {
		t.Errorf("sample after the restart's window = %+v, %v; want 200m", got["u1"], err)
	}

	// Gone pods are dropped.
	for _, sb := range f.Sandboxes() {
		if err := f.RemovePodSandbox(ctx, sb.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.SamplePods(ctx, t0.Add(40*time.Second)); err != nil || len(got) != 0 || s.pods.Tracked() != 0 {
		t.Errorf("no containers: %v, %v, %d tracked", got, err, s.pods.Tracked())
	}

	f.StatsErr = errors.New("rpc error: code = Unavailable")
	if _, err := s.SamplePods(ctx, t0.Add(50*time.Second)); err == nil || !strings.HasPrefix(err.Error(), "sample pod usage: ") {
		t.Errorf("runtime error: %v", err)
	}
}

func TestSamplerNode(t *testing.T) {
	proc := t.TempDir()
	write := func(stat, meminfo string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(proc, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, "meminfo"), []byte(meminfo), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mem := "MemTotal: 2000 kB\nMemFree: 500 kB\nInactive(file): 500 kB\n"
	s := &Sampler{Proc: proc}
	write("cpu 100 0 100 5000 0 0 0 0 0 0\n", mem)
	if u, err := s.SampleNode(t0); err != nil || u != nil {
		t.Fatalf("first node sample = %+v, %v", u, err)
	}
	write("cpu 250 0 150 5100 0 0 0 0 0 0\n", mem) // 200 ticks = 2 s busy in 4 s
	u, err := s.SampleNode(t0.Add(4 * time.Second))
	if err != nil || u == nil || u.CPUMillis != 500 || u.MemoryWorkingSetBytes != 1000<<10 || u.Source != nodeapi.UsageSourceProc {
		t.Errorf("node sample = %+v, %v", u, err)
	}
	if err := os.Remove(filepath.Join(proc, "meminfo")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SampleNode(t0.Add(8 * time.Second)); err == nil || !strings.HasPrefix(err.Error(), "sample node usage: ") {
		t.Errorf("missing meminfo: %v", err)
	}
}

func TestSamplerRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat: not Linux")
	}
	s := &Sampler{}
	start := time.Now()
	if _, err := s.SampleNode(start); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	u, err := s.SampleNode(time.Now())
	if err != nil || u == nil || u.CPUMillis < 0 || u.MemoryWorkingSetBytes <= 0 || u.WindowMillis < 200 {
		t.Errorf("node usage = %+v, %v", u, err)
	}
}

func BenchmarkSample(b *testing.B) {
	// 30 pods of two containers in the fake runtime: what agentlet spends
	// per sample besides the runtime's own work.
	f := cri.NewFake()
	f.SetImage("busybox", true)
	var ids []string
	for i := 0; i < 30; i++ {
		ids = append(ids, fakePod(b, f, "u"+string(rune('a'+i)), "a", "b")...)
	}
	s := &Sampler{Runtime: f}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		for _, id := range ids {
			f.SetUsage(id, use(at, time.Duration(i)*time.Millisecond, 1<<20))
		}
		if _, err := s.SamplePods(ctx, at); err != nil {
			b.Fatal(err)
		}
		if _, err := s.SampleNode(at); err != nil {
			b.Fatal(err)
		}
	}
}
