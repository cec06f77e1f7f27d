package agentlet

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func publishedStatus(hb time.Time, ready bool) *nodeapi.NodeStatus {
	status := nodeapi.False
	if ready {
		status = nodeapi.True
	}
	t0 := hb.Add(-time.Hour)
	return &nodeapi.NodeStatus{
		APIVersion:              nodeapi.APIVersion,
		NodeName:                "h1",
		HeartbeatAt:             hb,
		HeartbeatIntervalMillis: 2000,
		DaemonRunning:           true,
		Conditions: []nodeapi.Condition{
			{Type: nodeapi.ConditionReady, Status: status, Reason: ReasonReady, LastTransitionTime: t0},
			{Type: nodeapi.ConditionRuntimeReady, Status: nodeapi.True, Reason: ReasonRuntimeReady, LastTransitionTime: t0},
		},
	}
}

func TestViewStatus(t *testing.T) {
	hb := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		alive       bool
		age         time.Duration
		interval    int64
		wantRunning bool
		wantReason  string
	}{
		{name: "alive and fresh", alive: true, age: time.Second, interval: 2000, wantRunning: true, wantReason: ReasonReady},
		{name: "alive, exactly 3 intervals", alive: true, age: 6 * time.Second, interval: 2000, wantRunning: true, wantReason: ReasonReady},
		{name: "alive but stale", alive: true, age: 7 * time.Second, interval: 2000, wantReason: ReasonHeartbeatStale},
		{name: "dead, fresh file", alive: false, age: time.Second, interval: 2000, wantReason: ReasonNotRunning},
		{name: "dead and stale", alive: false, age: time.Hour, interval: 2000, wantReason: ReasonNotRunning},
		{name: "no interval recorded: default", alive: true, age: 5 * time.Second, interval: 0, wantRunning: true, wantReason: ReasonReady},
		{name: "longer interval", alive: true, age: 25 * time.Second, interval: 10000, wantRunning: true, wantReason: ReasonReady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := publishedStatus(hb, true)
			pub.HeartbeatIntervalMillis = tt.interval
			pub.Usage = &nodeapi.NodeUsage{CPUMillis: 10, Timestamp: hb}
			pub.Pods = []nodeapi.PodStatus{{UID: "u1", Usage: &nodeapi.PodUsage{CPUMillis: 5, Timestamp: hb}}}
			orig := *pub
			origConds := append([]nodeapi.Condition(nil), pub.Conditions...)
			got := viewStatus(pub, tt.alive, hb.Add(tt.age))
			if got.DaemonRunning != tt.wantRunning {
				t.Errorf("DaemonRunning = %v, want %v", got.DaemonRunning, tt.wantRunning)
			}
			ready, _ := got.Condition(nodeapi.ConditionReady)
			if ready.Reason != tt.wantReason {
				t.Errorf("Ready reason = %s, want %s", ready.Reason, tt.wantReason)
			}
			if !tt.wantRunning {
				if got.Ready() || !ready.LastTransitionTime.Equal(hb) {
					t.Errorf("Ready = %+v; want False since the last heartbeat", ready)
				}
				if rt, _ := got.Condition(nodeapi.ConditionRuntimeReady); rt.Status != nodeapi.True {
					t.Error("other conditions must be kept as last published")
				}
			}
			if hasUsage := got.Usage != nil && got.Pods[0].Usage != nil; hasUsage != tt.wantRunning {
				t.Errorf("usage reported = %v, want %v (only from a running daemon)", hasUsage, tt.wantRunning)
			}
			if !cmp.Equal(origConds, pub.Conditions) || orig.DaemonRunning != pub.DaemonRunning || pub.Usage == nil || pub.Pods[0].Usage == nil {
				t.Error("viewStatus modified its input")
			}
		})
	}
}

func TestViewStatusAddsMissingReady(t *testing.T) {
	hb := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	pub := publishedStatus(hb, true)
	pub.Conditions = pub.Conditions[1:]
	got := viewStatus(pub, false, hb)
	if got.Conditions[0].Type != nodeapi.ConditionReady || got.Conditions[0].Status != nodeapi.False {
		t.Errorf("conditions = %v", brief(got.Conditions))
	}
}

// writeJSON publishes v at path the way the daemon does.
func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	if err := writeJSONFile(path, v); err != nil {
		t.Fatal(err)
	}
}

func writeJSONFile(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeAtomic(path, data, 0o644, false)
}

func newReader(t *testing.T, now time.Time) StatusReader {
	return StatusReader{
		Paths:    Paths{Root: t.TempDir()},
		ProcRoot: "/proc",
		Facts:    func() (HostFacts, error) { return HostFacts{Hostname: "h1", CPUs: 4, MemTotalBytes: 8 << 30}, nil },
		Now:      func() time.Time { return now },
	}
}

func TestStatusReaderNeverRan(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	r := newReader(t, now)
	st, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Ready=False/AgentletNotRunning", "ContainerRuntimeReady=Unknown/AgentletNotRunning", "SandboxImageReady=Unknown/AgentletNotRunning",
		"NetworkReady=Unknown/AgentletNotRunning", "SpecApplied=Unknown/AgentletNotRunning"}
	if diff := cmp.Diff(want, brief(st.Conditions)); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if st.DaemonRunning || st.Hostname != "h1" || st.Capacity.CPUMillis != 4000 || st.APIVersion != nodeapi.APIVersion {
		t.Errorf("status = %+v", st)
	}

	// With a held spec, its generation is reported.
	if _, err := (Applier{Paths: r.Paths}).Apply(specJSON(t, testSpec(7))); err != nil {
		t.Fatal(err)
	}
	st, _ = r.Read()
	if st.SpecGeneration != 7 || st.NodeName != "h1" {
		t.Errorf("spec generation = %d node %q", st.SpecGeneration, st.NodeName)
	}
}

func TestStatusReaderPublished(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	r := newReader(t, now)
	writeJSON(t, r.Paths.StatusPath(), publishedStatus(now.Add(-time.Second), true))

	// No pid file: not running, even with a fresh heartbeat.
	st, err := r.Read()
	if err != nil || st.DaemonRunning || st.Ready() {
		t.Fatalf("no pid file: running %v ready %v err %v", st.DaemonRunning, st.Ready(), err)
	}

	// Our own PID: a live process running this executable.
	if err := os.WriteFile(r.Paths.PidPath(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = r.Read()
	if err != nil || !st.DaemonRunning || !st.Ready() {
		t.Fatalf("live daemon: running %v ready %v err %v", st.DaemonRunning, st.Ready(), err)
	}

	// A PID that does not exist.
	if err := os.WriteFile(r.Paths.PidPath(), []byte("999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.Read(); st.DaemonRunning {
		t.Error("dead PID counted as running")
	}

	// A corrupt status file: a local status that says so.
	if err := os.WriteFile(r.Paths.StatusPath(), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = r.Read()
	if err != nil || st.DaemonRunning || len(st.RecentErrors) != 1 || st.RecentErrors[0].Reason != "StatusUnreadable" {
		t.Errorf("corrupt file: %+v, %v", st, err)
	}
}

func TestStatusReaderWait(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	r := newReader(t, now)
	if err := os.MkdirAll(r.Paths.RunDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.Paths.PidPath(), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, r.Paths.StatusPath(), publishedStatus(now, false))

	// Times out: the last status comes back, not an error.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	st, err := r.Wait(ctx, 10*time.Millisecond)
	cancel()
	if err != nil || st == nil || st.Ready() {
		t.Fatalf("wait timeout = %v, %v", st, err)
	}

	// Becomes ready while waiting.
	go func() {
		time.Sleep(50 * time.Millisecond)
		if err := writeJSONFile(r.Paths.StatusPath(), publishedStatus(now, true)); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err = r.Wait(ctx, 10*time.Millisecond)
	if err != nil || !st.Ready() {
		t.Fatalf("wait = ready %v, %v", st.Ready(), err)
	}
}

func TestStatusReaderDaemonStarting(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	r := newReader(t, now)
	if err := os.MkdirAll(r.Paths.RunDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.Paths.PidPath(), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := r.Read()
	if err != nil || !st.DaemonRunning || st.Ready() || st.Conditions[0].Reason != ReasonStarting {
		t.Errorf("starting daemon: %+v, %v", st, err)
	}
}
