package agentlet

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cron"
	"github.com/clusterctl/clusterctl/agentlet/pods"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

// phasePods is a pod runtime whose pods are in the phase the test sets
// (Running by default).
type phasePods struct {
	phase   map[string]string // by uid
	desired [][]nodeapi.PodSpec
}

func (f *phasePods) Sync(_ context.Context, desired []nodeapi.PodSpec, _ pods.Gate) ([]nodeapi.PodStatus, error) {
	f.desired = append(f.desired, desired)
	var out []nodeapi.PodStatus
	for _, p := range desired {
		phase := f.phase[p.UID]
		if phase == "" {
			phase = nodeapi.PodRunning
		}
		out = append(out, nodeapi.PodStatus{UID: p.UID, Namespace: p.Namespace, Name: p.Name, Phase: phase})
	}
	return out, nil
}

func (f *phasePods) Run(ctx context.Context) { <-ctx.Done() }

func (f *phasePods) last() []nodeapi.PodSpec { return f.desired[len(f.desired)-1] }

func cronSpec(gen int64, created time.Time, extra ...nodeapi.PodSpec) *nodeapi.NodeSpec {
	spec := testSpec(gen)
	spec.Pods = extra
	spec.CronJobs = []nodeapi.CronJobSpec{{UID: "cj-1", Namespace: "default", Name: "tick", CreationTimestamp: created,
		Schedule: "*/1 * * * *", ConcurrencyPolicy: nodeapi.ConcurrencyForbid, SuccessfulJobsHistoryLimit: 3, FailedJobsHistoryLimit: 1,
		PodsPerRun: 1, Templates: []nodeapi.PodSpec{{UID: nodeapi.CronPodUIDPlaceholder, Namespace: "default", Name: nodeapi.CronPodNamePlaceholder,
			Hostname: nodeapi.CronPodNamePlaceholder, RestartPolicy: nodeapi.RestartNever,
			Containers: []nodeapi.ContainerSpec{{Name: "c", Image: "busybox", Command: []string{"sleep", "90"}}}}}}}
	return spec
}

func runsOf(st *nodeapi.NodeStatus) []string {
	var out []string
	for _, cj := range st.CronJobs {
		for _, r := range cj.Runs {
			out = append(out, r.JobName+"="+r.Pods[0].Phase)
		}
	}
	return out
}

func eventReasons(st *nodeapi.NodeStatus) []string {
	var out []string
	for _, cj := range st.CronJobs {
		for _, e := range cj.Events {
			out = append(out, e.Reason)
		}
	}
	return out
}

// TestDaemonFiresCronJobs follows a Forbid CronJob through the daemon: it
// fires on time with the run persisted before its pod is run, skips while
// the run is active, survives a restart without losing or repeating the
// run, fires the skipped time once the run finished, and hands the run over
// when the spec adopts its pod.
func TestDaemonFiresCronJobs(t *testing.T) {
	h := newHarness(t)
	fp := &phasePods{phase: map[string]string{}}
	h.d.Pods = fp
	h.rt.SetImage(version.PauseImage, true)
	h.writeCNI()
	t0 := h.clock.Now() // 12:00:00
	h.apply(cronSpec(1, t0.Add(-30*time.Second)))

	h.clock.Advance(time.Second)
	st := h.tick()
	first := nodeapi.CronRunName("tick", t0)
	if got := runsOf(st); !slices.Equal(got, []string{first + "=Running"}) {
		t.Fatalf("runs after 12:00:01 = %v, want %s running", got, first)
	}
	if len(fp.last()) != 1 || !strings.HasPrefix(fp.last()[0].Name, first+"-") {
		t.Fatalf("pods run = %+v, want the run's pod", fp.last())
	}
	runPod := fp.last()[0]
	saved, err := cron.Load(filepath.Join(h.paths.StateDir(), "cronjobs.json"))
	if err != nil || len(saved.Runs) != 1 || saved.Runs[0].Pods[0].Spec.UID != runPod.UID {
		t.Fatalf("persisted state = %+v, %v; want the run", saved.Runs, err)
	}
	if fi, err := os.Stat(filepath.Join(h.paths.StateDir(), "cronjobs.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v %v, want mode 0600", fi, err)
	}

	// 12:01:01: the run still runs, Forbid skips.
	h.clock.Advance(time.Minute)
	st = h.tick()
	if got := runsOf(st); len(got) != 1 || !slices.Contains(eventReasons(st), cron.ReasonJobAlreadyActive) {
		t.Fatalf("runs %v events %v, want one run and JobAlreadyActive", got, eventReasons(st))
	}

	// agentlet restarts: the run is neither lost nor repeated.
	h2 := newHarness(t)
	h2.paths, h2.d.Paths = h.paths, h.paths
	h2.clock.now = h.clock.Now().Add(5 * time.Second)
	h2.d.Pods = fp
	h2.rt.SetImage(version.PauseImage, true)
	h2.cni, h2.d.CNIConfDir = h.cni, h.cni
	h2.d.restore()
	st = h2.tick()
	if got := runsOf(st); len(got) != 1 || len(fp.last()) != 1 || fp.last()[0].UID != runPod.UID {
		t.Fatalf("after a restart: runs %v pods %+v, want the same single run", got, fp.last())
	}

	// The run finishes: the skipped 12:01 time fires late, as Kubernetes.
	fp.phase[runPod.UID] = nodeapi.PodSucceeded
	h2.clock.Advance(2 * time.Second)
	h2.tick() // observes the finished pod
	h2.clock.Advance(2 * time.Second)
	st = h2.tick()
	second := nodeapi.CronRunName("tick", t0.Add(time.Minute))
	if got := runsOf(st); !slices.Equal(got, []string{first + "=Succeeded", second + "=Running"}) {
		t.Fatalf("runs = %v, want %s done and %s running", got, first, second)
	}

	// The CLI adopts the first run: its pod comes in the spec, same uid.
	cliLast := t0
	adopted := cronSpec(2, t0.Add(-30*time.Second), runPod)
	adopted.CronJobs[0].LastScheduleTime = &cliLast
	h2.apply(adopted)
	h2.clock.Advance(2 * time.Second)
	st = h2.tick()
	if got := runsOf(st); !slices.Equal(got, []string{second + "=Running"}) {
		t.Errorf("runs after adoption = %v, want only %s", got, second)
	}
	var uids []string
	for _, p := range fp.last() {
		uids = append(uids, p.UID)
	}
	if len(uids) != 2 || !slices.Contains(uids, runPod.UID) {
		t.Errorf("pods run after adoption = %v, want the adopted pod once and the second run", uids)
	}
}

// TestDaemonCronSaveFailure: when the state cannot be saved nothing new
// starts, and the failure is reported.
func TestDaemonCronSaveFailure(t *testing.T) {
	h := newHarness(t)
	fp := &phasePods{phase: map[string]string{}}
	h.d.Pods = fp
	h.rt.SetImage(version.PauseImage, true)
	h.writeCNI()
	h.apply(cronSpec(1, h.clock.Now().Add(-30*time.Second)))
	// A non-empty directory where the state file goes: the rename fails.
	blocker := filepath.Join(h.paths.StateDir(), "cronjobs.json", "x")
	if err := os.MkdirAll(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	st := h.tick()
	if len(fp.last()) != 0 || len(runsOf(st)) != 0 {
		t.Errorf("a run started without being saved: pods %+v", fp.last())
	}
	found := false
	for _, e := range st.RecentErrors {
		found = found || e.Reason == ReasonCronStateFailed && strings.Contains(e.Message, "save cron state")
	}
	if !found {
		t.Errorf("no %s error: %+v", ReasonCronStateFailed, st.RecentErrors)
	}
	// Fixed: the time, still due, fires.
	if err := os.RemoveAll(filepath.Dir(blocker)); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Second)
	if st := h.tick(); len(runsOf(st)) != 1 || len(fp.last()) != 1 {
		t.Errorf("after the fix: runs %v pods %d", runsOf(st), len(fp.last()))
	}
}
